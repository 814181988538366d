//! "Log in with the card" inside `jpki serve` (docs/LOGIN.md): the OpenID Connect provider
//! (`jpki-oidc`) over the platform's relying-party registry, its signing keys kept encrypted in the
//! data directory, and the card's proof checked by the platform; plus `jpki card agent`, the
//! person's side that has the card sign.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use jpki_oidc::{
    Client, ClientAuth, Clients, Logins, Provider, SigningAlg, SigningKeys, Subject, UserClaims,
};
use jpki_platform::api::{Pairwise, PersonRefs};
use jpki_platform::{Api, CardProof, Recorder, Seen};
use jpki_server::{CardPrompt, ConsentPrompt, LOGIN_CARD_PATH, LoginStep, OIDC_PREFIX};
use time::OffsetDateTime;

use crate::lookups::RegistryLookups;
use crate::{Failure, secrets};

/// The ID-token signing keys, encrypted under the authority passphrase.
const ES256_KEY_FILE: &str = "oidc-es256-key.pem";
/// See [`ES256_KEY_FILE`].
const RS256_KEY_FILE: &str = "oidc-rs256-key.pem";

/// The provider's signing keys from DATA (made on first use).
pub(crate) fn signing_keys(data: &Path, passphrase: &[u8], iterations: u32) -> Result<SigningKeys, Failure> {
    let (es, rs) = (data.join(ES256_KEY_FILE), data.join(RS256_KEY_FILE));
    if !es.is_file() || !rs.is_file() {
        let (ec, rsa) = jpki_oidc::generate_pkcs8().map_err(|e| Failure::Failed(e.to_string()))?;
        for (path, der) in [(&es, ec.as_ref()), (&rs, rsa.as_ref())] {
            let pem = jpki_pki::encrypt_pkcs8_pem(der, passphrase, iterations)?;
            jpki_authority::write_atomically(path, pem.as_bytes(), 0o600)?;
        }
    }
    let open = |path: &PathBuf| -> Result<zeroize::Zeroizing<Vec<u8>>, Failure> {
        let pem =
            std::fs::read_to_string(path).map_err(|e| Failure::Failed(format!("{}: {e}", path.display())))?;
        jpki_pki::decrypt_pkcs8_pem(&pem, passphrase)
            .map_err(|e| Failure::Failed(format!("{}: {e}", path.display())))
    };
    SigningKeys::from_pkcs8(&open(&es)?, &open(&rs)?).map_err(|e| Failure::Failed(e.to_string()))
}

/// Relying parties' JWKS fetched from their `jwks_uri`, kept this long.
const JWKS_CACHE_FOR: Duration = Duration::from_secs(300);
/// A JWKS that could not be fetched is not asked for again for this long (an unreachable URL
/// must not hold a thread for every request).
const JWKS_RETRY_AFTER: Duration = Duration::from_secs(30);

/// How a client registration is read (the registry, through its thread on PostgreSQL).
pub(crate) type ClientLookup = Box<dyn Fn(&str) -> Option<jpki_platform::OidcClient> + Send + Sync>;

/// OpenID Connect clients from the relying-party registry.
pub(crate) struct RegistryClients {
    lookup: ClientLookup,
    /// By URL: when fetched, and the keys (`None`: the fetch failed).
    fetched: Mutex<HashMap<String, (Instant, Option<jpki_oidc::JwkSet>)>>,
}

impl RegistryClients {
    pub(crate) fn new(lookup: ClientLookup) -> Self {
        Self {
            lookup,
            fetched: Mutex::new(HashMap::new()),
        }
    }

    fn fetch_jwks(&self, url: &str) -> Option<jpki_oidc::JwkSet> {
        if let Some((at, set)) = self.fetched.lock().ok()?.get(url) {
            let fresh = if set.is_some() {
                JWKS_CACHE_FOR
            } else {
                JWKS_RETRY_AFTER
            };
            if at.elapsed() < fresh {
                return set.clone();
            }
        }
        let set = match jpki_server::get_text(url, 256 * 1024, Duration::from_secs(5)) {
            Ok(text) => match jpki_oidc::check_client_jwks(&text) {
                Ok(set) => Some(set),
                Err(e) => {
                    tracing::warn!(%url, error = %e, "a relying party's JWKS is unusable");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch a relying party's JWKS");
                None
            }
        };
        if let Ok(mut f) = self.fetched.lock() {
            if f.len() >= 10_000 {
                f.clear();
            }
            f.insert(url.to_owned(), (Instant::now(), set.clone()));
        }
        set
    }
}

impl Clients for RegistryClients {
    fn client(&self, id: &str) -> Option<Client> {
        let c = (self.lookup)(id)?;
        let auth = if let Some(jwks) = &c.jwks {
            ClientAuth::PrivateKeyJwt(jpki_oidc::check_client_jwks(jwks).ok()?)
        } else if let Some(url) = &c.jwks_uri {
            // Unreachable keys leave the client unable to authenticate, never open.
            ClientAuth::PrivateKeyJwt(self.fetch_jwks(url).unwrap_or(jpki_oidc::JwkSet { keys: vec![] }))
        } else {
            ClientAuth::SecretBasic(c.secret_sha256?)
        };
        Some(Client {
            id: c.client_id,
            name: c.name,
            redirect_uris: c.redirect_uris,
            auth,
            id_token_alg: SigningAlg::parse(&c.id_token_alg).unwrap_or(SigningAlg::RS256),
        })
    }
}

/// The provider as `jpki serve` runs it. Its issuer is known once the server listens (the port may
/// be picked then): [`PlatformOidc::start`] makes the provider; until then the endpoints answer 503.
pub(crate) struct PlatformOidc {
    provider: OnceLock<Provider>,
    /// This provider's origin (what the card signs for).
    origin: OnceLock<String>,
    /// The signing keys and clients, until [`PlatformOidc::start`] takes them.
    parts: Mutex<Option<(SigningKeys, RegistryClients)>>,
    logins: Logins,
    signing: jpki_oidc::SignTransactions,
    api: Arc<Api>,
    lookups: Arc<RegistryLookups>,
    recorder: Arc<Recorder>,
    /// The card agent's base URL.
    agent: String,
}

/// What the JSON endpoints answer before the provider has started.
const STARTING: &str =
    r#"{"error":"temporarily_unavailable","error_description":"the provider is starting"}"#;

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn refused(status: u16, message: impl Into<String>) -> LoginStep {
    LoginStep::Refused {
        status,
        message: message.into(),
    }
}

/// The sex on the card as OpenID Connect's `gender` (Core §5.1: "female", "male", or another
/// value).
fn gender(sex: &str) -> String {
    match sex {
        "male" | "female" => sex.to_owned(),
        _ => "other".to_owned(),
    }
}

impl PlatformOidc {
    fn subject(
        &self,
        form: &[(String, String)],
        request: &jpki_oidc::AuthorizationRequest,
        challenge: &[u8],
        now: OffsetDateTime,
    ) -> Result<Subject, String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let decode = |name: &str| -> Result<Option<Vec<u8>>, String> {
            field(form, name)
                .map(|v| b64.decode(v).map_err(|_| format!("{name}: not base64")))
                .transpose()
        };
        let (Some(auth_cert), Some(auth_sig)) = (decode("auth_cert")?, decode("auth_sig")?) else {
            return Err("the card agent sent no authentication certificate or signature".into());
        };
        let sign = match (decode("sign_cert")?, decode("sign_sig")?) {
            (Some(c), Some(s)) => Some((c, s)),
            _ => None,
        };
        if request.wants_personal_data() && sign.is_none() {
            return Err(format!(
                "{} asks for your basic facts: the signature certificate and its password are needed",
                request.client_name
            ));
        }
        let origin = self.origin.get().ok_or("the provider is starting")?;
        let statement = jpki_oidc::statement(origin, challenge);
        let login = self.api.card_login(
            &statement,
            CardProof {
                certificate: &auth_cert,
                signature: &auth_sig,
            },
            sign.as_ref().map(|(c, s)| CardProof {
                certificate: c,
                signature: s,
            }),
            self.lookups.as_ref() as &dyn PersonRefs,
            now,
        )?;
        for c in &login.checked {
            self.recorder.push(Seen {
                at: now,
                rp_id: request.client_id.clone(),
                kind: c.kind,
                serial: c.serial.clone(),
                check: c.check.clone(),
                purpose: Some("OpenID Connect login".into()),
                result: c.result.clone(),
            });
        }
        let sub = self
            .lookups
            .pairwise_id(&login.auth_serial, &request.client_id)
            .ok_or("the registry does not know this card's certificate")?;
        let mut claims = UserClaims::default();
        if let Some(f) = login.facts {
            use jpki_oidc::Scope;
            let wants = |s: Scope| request.scopes.contains(&s);
            claims.name = f.name.filter(|_| wants(Scope::Name));
            claims.address = f.address.filter(|_| wants(Scope::Address));
            claims.birthdate = f.birth_date.filter(|_| wants(Scope::Birthdate));
            claims.gender = f.sex.map(|s| gender(&s)).filter(|_| wants(Scope::Gender));
        }
        Ok(Subject {
            sub,
            claims,
            auth_time: now,
        })
    }
}

impl jpki_server::OidcEndpoints for PlatformOidc {
    fn discovery(&self) -> String {
        self.ready()
            .map_or_else(String::new, |(p, _)| p.discovery().to_string())
    }

    fn jwks(&self) -> String {
        self.ready()
            .map_or_else(String::new, |(p, _)| p.jwks().to_string())
    }

    fn token(&self, form: &[(String, String)], authorization: Option<&str>) -> jpki_server::JsonAnswer {
        let Some((provider, _)) = self.ready() else {
            return (503, STARTING.into());
        };
        match provider.token(form, authorization, OffsetDateTime::now_utc()) {
            Ok(v) => (200, v.to_string()),
            Err(e) => (e.status, e.body().to_string()),
        }
    }

    fn userinfo(&self, access_token: Option<&str>) -> jpki_server::JsonAnswer {
        let Some((provider, _)) = self.ready() else {
            return (503, STARTING.into());
        };
        match provider.userinfo(access_token, OffsetDateTime::now_utc()) {
            Ok(v) => (200, v.to_string()),
            Err(e) => (e.status, e.body().to_string()),
        }
    }

    fn authorize(&self, params: &[(String, String)]) -> LoginStep {
        let Some((provider, _)) = self.ready() else {
            return refused(503, "the provider is starting");
        };
        let request = match provider.authorize(params) {
            Ok(r) => r,
            Err(e) => {
                return match provider.error_location(&e) {
                    Some(to) => LoginStep::Redirect(to),
                    None => refused(400, e.to_string()),
                };
            }
        };
        let now = OffsetDateTime::now_utc();
        let redirect_origin = jpki_oidc::origin_of(&request.redirect_uri).unwrap_or_default();
        let (client_name, scopes, personal) = (
            request.client_name.clone(),
            request.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            request.wants_personal_data(),
        );
        match self.logins.begin(request, now) {
            Ok(c) => LoginStep::Card(CardPrompt {
                tx: c.tx,
                challenge: c.challenge,
                client_name,
                scopes,
                personal,
                agent: self.agent.clone(),
                return_to: format!("{}{LOGIN_CARD_PATH}", provider.config().issuer),
                redirect_origin,
            }),
            Err(e) => refused(503, e.to_string()),
        }
    }

    fn card(&self, form: &[(String, String)]) -> LoginStep {
        let now = OffsetDateTime::now_utc();
        let Some(tx) = field(form, "tx") else {
            return refused(400, "the card's answer names no login (tx)");
        };
        let Some((request, challenge)) = self.logins.take_challenge(tx, now) else {
            return refused(
                400,
                "this login has expired or was already answered: start again at the service you came from",
            );
        };
        let subject = match self.subject(form, &request, &challenge, now) {
            Ok(s) => s,
            Err(why) => {
                // The relying party learns of it too (RFC 6749 §4.1.2.1), through the link back.
                let back = self.ready().and_then(|(provider, _)| {
                    provider.error_location(&jpki_oidc::AuthorizeError::Redirect {
                        redirect_uri: request.redirect_uri.clone(),
                        error: "access_denied",
                        description: "the card could not be used to log in".into(),
                        state: Some(request.state.clone()),
                    })
                });
                return match back {
                    Some(back) => LoginStep::RefusedBack {
                        status: 422,
                        message: why,
                        back,
                    },
                    None => refused(422, why),
                };
            }
        };
        let mut claims = Vec::new();
        for s in &request.scopes {
            use jpki_oidc::Scope;
            let value = match s {
                Scope::OpenId => Some(subject.sub.clone()),
                Scope::Name => subject.claims.name.clone(),
                Scope::Address => subject.claims.address.clone(),
                Scope::Birthdate => subject.claims.birthdate.clone(),
                Scope::Gender => subject.claims.gender.clone(),
                Scope::Sign => Some("署名を求められたときに、その都度確認します / asked each time".into()),
            };
            claims.push((
                s.as_str().to_owned(),
                value.unwrap_or_else(|| "(not on the card)".into()),
            ));
        }
        let mut prompt = ConsentPrompt {
            tx: String::new(),
            client_name: request.client_name.clone(),
            claims,
            redirect_origin: jpki_oidc::origin_of(&request.redirect_uri).unwrap_or_default(),
        };
        match self.logins.await_consent(request, subject, now) {
            Ok(consent) => {
                prompt.tx = consent;
                LoginStep::Consent(prompt)
            }
            Err(e) => refused(503, e.to_string()),
        }
    }

    fn sign_open(&self, form: &[(String, String)], authorization: Option<&str>) -> jpki_server::JsonAnswer {
        let now = OffsetDateTime::now_utc();
        let (provider, client) = match self.client_of(form, authorization, now) {
            Ok(x) => x,
            Err(answer) => return answer,
        };
        let bad = |why: String| {
            (
                400,
                serde_json::json!({ "error": "invalid_request", "error_description": why }).to_string(),
            )
        };
        let one = |name: &str| -> Result<Option<&str>, String> {
            let mut all = form.iter().filter(|(k, v)| k == name && !v.is_empty());
            let first = all.next().map(|(_, v)| v.as_str());
            if all.next().is_some() {
                return Err(format!("{name} given more than once"));
            }
            Ok(first)
        };
        let fields = (|| -> Result<jpki_oidc::SignRequest, String> {
            let digest = one("digest")?
                .and_then(jpki_oidc::sign::parse_digest)
                .ok_or("digest: the base64url of a SHA-256 digest (32 bytes) is required")?;
            let description = one("description")?.ok_or("description is required")?;
            jpki_oidc::sign::check_description(description)?;
            let redirect_uri = one("redirect_uri")?.ok_or("redirect_uri is required")?;
            if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
                return Err(format!(
                    "redirect_uri {redirect_uri:?} is not registered for this client"
                ));
            }
            let state = one("state")?.ok_or("state is required")?;
            if !(1..=255).contains(&state.len()) || !state.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err("state: 1 to 255 printable ASCII characters".into());
            }
            Ok(jpki_oidc::SignRequest {
                client_id: client.id.clone(),
                client_name: client.name.clone(),
                redirect_uri: redirect_uri.to_owned(),
                state: state.to_owned(),
                digest,
                description: description.to_owned(),
                sub: one("sub")?.map(str::to_owned),
            })
        })();
        let request = match fields {
            Ok(r) => r,
            Err(why) => return bad(why),
        };
        match self.signing.open(request, now) {
            Ok(id) => (
                201,
                serde_json::json!({
                    "transaction_id": id,
                    "sign_url": format!("{}{}/tx/{id}", provider.config().issuer, jpki_server::SIGN_PATH),
                    "expires_in": jpki_oidc::sign::TRANSACTION_LIFETIME.whole_seconds(),
                })
                .to_string(),
            ),
            Err(e) => (
                503,
                serde_json::json!({ "error": "temporarily_unavailable", "error_description": e.to_string() })
                    .to_string(),
            ),
        }
    }

    fn sign_result(&self, form: &[(String, String)], authorization: Option<&str>) -> jpki_server::JsonAnswer {
        let now = OffsetDateTime::now_utc();
        let (_, client) = match self.client_of(form, authorization, now) {
            Ok(x) => x,
            Err(answer) => return answer,
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        let outcome = field(form, "transaction_id").and_then(|id| self.signing.outcome(id, &client.id, now));
        let body = match outcome {
            None => {
                return (
                    400,
                    serde_json::json!({ "error": "invalid_request", "error_description": "no such transaction of this client (or it expired)" }).to_string(),
                );
            }
            Some(jpki_oidc::SignOutcome::Pending) => serde_json::json!({ "status": "pending" }),
            Some(jpki_oidc::SignOutcome::Declined) => serde_json::json!({ "status": "declined" }),
            Some(jpki_oidc::SignOutcome::Signed {
                signature,
                certificate,
                at,
            }) => serde_json::json!({
                "status": "signed",
                "algorithm": "sha256WithRSAEncryption",
                "signature": b64.encode(signature),
                "certificate": b64.encode(certificate),
                "signed_at": at.unix_timestamp(),
            }),
        };
        (200, body.to_string())
    }

    fn sign_page(&self, id: &str) -> LoginStep {
        let Some((provider, _)) = self.ready() else {
            return refused(503, "the provider is starting");
        };
        let Some(request) = self.signing.pending(id, OffsetDateTime::now_utc()) else {
            return refused(
                404,
                "this sign transaction has expired or is finished: start again at the service",
            );
        };
        LoginStep::Sign(jpki_server::SignPrompt {
            tx: id.to_owned(),
            client_name: request.client_name,
            description: request.description,
            digest: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(request.digest),
            agent: self.agent.clone(),
            return_to: format!("{}{}/card", provider.config().issuer, jpki_server::SIGN_PATH),
            redirect_origin: jpki_oidc::origin_of(&request.redirect_uri).unwrap_or_default(),
        })
    }

    fn sign_card(&self, form: &[(String, String)]) -> LoginStep {
        let Some((provider, _)) = self.ready() else {
            return refused(503, "the provider is starting");
        };
        let now = OffsetDateTime::now_utc();
        let Some(tx) = field(form, "tx") else {
            return refused(400, "the answer names no transaction (tx)");
        };
        let Some(request) = self.signing.pending(tx, now) else {
            return refused(400, "this sign transaction has expired or is finished");
        };
        let back = |extra: &[(&str, &str)]| {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in extra {
                q.append_pair(k, v);
            }
            q.append_pair("state", &request.state);
            q.append_pair("iss", &provider.config().issuer);
            let sep = if request.redirect_uri.contains('?') {
                '&'
            } else {
                '?'
            };
            format!("{}{sep}{}", request.redirect_uri, q.finish())
        };
        if field(form, "cancel").is_some() {
            self.signing.decline(tx, now);
            return LoginStep::Redirect(back(&[
                ("error", "access_denied"),
                ("error_description", "the person declined to sign"),
                ("transaction_id", tx),
            ]));
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let decode = |n: &str| field(form, n).and_then(|v| b64.decode(v).ok());
        let (Some(cert), Some(sig)) = (decode("sign_cert"), decode("sign_sig")) else {
            return refused(400, "the card agent sent no signature certificate or signature");
        };
        let checked = match self.api.sign_transaction(&request.digest, &cert, &sig, now) {
            Ok(c) => c,
            Err(why) => return refused(422, format!("{why}; nothing was sent to {}", request.client_name)),
        };
        if let Some(expected) = &request.sub {
            let actual = self.lookups.pairwise_id(&checked.serial, &request.client_id);
            if actual.as_deref() != Some(expected.as_str()) {
                return refused(
                    403,
                    format!(
                        "{} asked someone else to sign this; nothing was sent",
                        request.client_name
                    ),
                );
            }
        }
        self.recorder.push(Seen {
            at: now,
            rp_id: request.client_id.clone(),
            kind: checked.kind,
            serial: checked.serial.clone(),
            check: checked.check.clone(),
            purpose: Some(request.description.clone()),
            result: checked.result.clone(),
        });
        if self.signing.complete(tx, sig, cert, now).is_none() {
            return refused(400, "this sign transaction has expired or is finished");
        }
        // A link onwards, not a redirect: the card agent's page that posted here may only post to
        // this provider, and a browser applies that to where a redirect would go.
        LoginStep::Done {
            message: format!(
                "署名しました。{} に結果が届きます / Signed: {} receives the signature",
                request.client_name, request.client_name
            ),
            to: back(&[("transaction_id", tx)]),
        }
    }

    fn consent(&self, form: &[(String, String)]) -> LoginStep {
        let Some((provider, _)) = self.ready() else {
            return refused(503, "the provider is starting");
        };
        let now = OffsetDateTime::now_utc();
        let Some(tx) = field(form, "tx") else {
            return refused(400, "the decision names no login (tx)");
        };
        match field(form, "decision") {
            Some("approve") => match self.logins.take_consent(tx, now) {
                Some((request, subject)) => match provider.grant(&request, subject, now) {
                    Ok(to) => LoginStep::Redirect(to),
                    Err(e) => refused(503, e.to_string()),
                },
                None => refused(400, "this login has expired or was already decided"),
            },
            Some("deny") => {
                let request = self
                    .logins
                    .take_consent(tx, now)
                    .map(|(r, _)| r)
                    .or_else(|| self.logins.take_challenge(tx, now).map(|(r, _)| r));
                match request {
                    Some(r) => LoginStep::Redirect(provider.deny(&r)),
                    None => refused(400, "this login has expired or was already decided"),
                }
            }
            _ => refused(400, "decision: approve or deny"),
        }
    }
}

impl PlatformOidc {
    /// The provider for `jpki serve`: signing keys from DATA, clients from the registry.
    pub(crate) fn new(
        data: &Path,
        agent: &str,
        api: Arc<Api>,
        lookups: Arc<RegistryLookups>,
        recorder: Arc<Recorder>,
        clients: RegistryClients,
    ) -> Result<Self, Failure> {
        let passphrase = secrets::authority_passphrase(data)?;
        let keys = signing_keys(
            data,
            passphrase.as_bytes(),
            jpki_authority::InitOptions::DEFAULT_KDF_ITERATIONS,
        )?;
        Ok(Self {
            provider: OnceLock::new(),
            origin: OnceLock::new(),
            parts: Mutex::new(Some((keys, clients))),
            logins: Logins::new(),
            signing: jpki_oidc::SignTransactions::new(),
            api,
            lookups,
            recorder,
            agent: agent.trim_end_matches('/').to_owned(),
        })
    }

    /// Starts issuing as `issuer` (`{public URL}/oidc`); once only.
    pub(crate) fn start(&self, issuer: &str) -> Result<(), Failure> {
        let origin = jpki_oidc::origin_of(issuer)
            .ok_or_else(|| Failure::Usage(format!("--login-url: {issuer:?} is not an http(s) URL")))?;
        let Some((keys, clients)) = self.parts.lock().ok().and_then(|mut p| p.take()) else {
            return Err(Failure::Failed(
                "the OpenID Connect provider was started twice".into(),
            ));
        };
        let _ = self.provider.set(Provider::new(
            jpki_oidc::Config::new(issuer),
            keys,
            Box::new(clients),
        ));
        let _ = self.origin.set(origin);
        Ok(())
    }

    /// The provider and the client a request to a client endpoint authenticates as (as at the
    /// token endpoint), or the answer refusing it.
    fn client_of(
        &self,
        form: &[(String, String)],
        authorization: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(&Provider, Client), jpki_server::JsonAnswer> {
        let (provider, _) = self.ready().ok_or_else(|| (503, STARTING.to_owned()))?;
        let client = provider
            .authenticate(form, authorization, now)
            .map_err(|e| (e.status, e.body().to_string()))?;
        Ok((provider, client))
    }

    fn ready(&self) -> Option<(&Provider, &str)> {
        Some((self.provider.get()?, self.origin.get()?))
    }
}

/// The issuer for the public base URL `base`.
pub(crate) fn issuer_for(base: &str) -> String {
    format!("{}{OIDC_PREFIX}", base.trim_end_matches('/'))
}

/// The card behind `jpki card agent`: opened for each login (a card file in this process, or a
/// PC/SC reader), one login at a time.
struct AgentCard {
    access: crate::args::CardAccess,
    device_key: PathBuf,
    busy: Mutex<()>,
    /// The origins of the providers it signs documents for.
    providers: Vec<String>,
}

/// What the person is told when the card refuses (a wrong or locked PIN or password, no card).
fn card_error(e: jpki_client::ClientError) -> jpki_server::CardRefusal {
    use jpki_client::ClientError;
    match e {
        ClientError::WrongSecret { tries_left, .. } if tries_left > 0 => jpki_server::CardRefusal {
            message: format!(
                "暗証番号が違います（残り {tries_left} 回） / wrong PIN or password: {tries_left} tries left"
            ),
            retry: true,
        },
        ClientError::WrongSecret { .. } | ClientError::Locked(_) => jpki_server::CardRefusal {
            message: "暗証番号がロックされました。市区町村の窓口で解除してください / it is locked: \
                      the authority can unblock it"
                .into(),
            retry: false,
        },
        other => jpki_server::CardRefusal {
            message: other.to_string(),
            retry: true,
        },
    }
}

/// A signing password of the wrong form (checked before the card counts a wrong try).
fn password_refusal() -> jpki_server::CardRefusal {
    jpki_server::CardRefusal {
        message: "署名用の暗証番号は英数字6〜16文字です / the signing password is 6–16 letters and digits"
            .into(),
        retry: true,
    }
}

fn card_refusal(e: &Failure) -> jpki_server::CardRefusal {
    let (Failure::Usage(m) | Failure::Failed(m)) = e;
    jpki_server::CardRefusal {
        message: m.clone(),
        retry: true,
    }
}

impl jpki_server::CardAgent for AgentCard {
    fn may_sign_for(&self, origin: &str) -> bool {
        self.providers.iter().any(|p| p == origin)
    }

    fn sign_digest(
        &self,
        digest: &[u8; 32],
        password: &str,
    ) -> Result<(Vec<u8>, Vec<u8>), jpki_server::CardRefusal> {
        use jpki_model::CertKind;
        if !(6..=16).contains(&password.len()) || !password.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(password_refusal());
        }
        let _one = self.busy.lock().map_err(|_| jpki_server::CardRefusal {
            message: "the card agent failed".into(),
            retry: false,
        })?;
        let mut s = crate::holder::open(&self.access, &self.device_key).map_err(|e| card_refusal(&e))?;
        let sig = s
            .sign_digest(CertKind::Signature, password.as_bytes(), digest)
            .map_err(card_error)?;
        let cert = s
            .read_certificate(CertKind::Signature, Some(password.as_bytes()))
            .map_err(card_error)?;
        tracing::info!("the card signed a document digest");
        Ok((cert, sig))
    }

    fn describe(&self) -> String {
        match (&self.access.card, &self.access.reader) {
            (Some(file), _) => format!("カード / card: {}", file.display()),
            (_, Some(reader)) => format!("カードリーダー / reader: {reader}"),
            _ => String::new(),
        }
    }

    fn sign_login(
        &self,
        origin: &str,
        challenge: &[u8],
        pin: &str,
        password: Option<&str>,
    ) -> Result<jpki_server::CardAnswer, jpki_server::CardRefusal> {
        use jpki_model::CertKind;
        if pin.len() != 4 || !pin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(jpki_server::CardRefusal {
                message: "暗証番号は数字4桁です / the PIN is 4 digits".into(),
                retry: true,
            });
        }
        if let Some(pw) = password
            && (!(6..=16).contains(&pw.len()) || !pw.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(password_refusal());
        }
        let _one = self.busy.lock().map_err(|_| jpki_server::CardRefusal {
            message: "the card agent failed".into(),
            retry: false,
        })?;
        let digest = jpki_oidc::statement_digest(origin, challenge);
        let mut s = crate::holder::open(&self.access, &self.device_key).map_err(|e| card_refusal(&e))?;
        let auth_sig = s
            .sign_digest(CertKind::Authentication, pin.as_bytes(), &digest)
            .map_err(card_error)?;
        let auth_cert = s
            .read_certificate(CertKind::Authentication, None)
            .map_err(card_error)?;
        let sign = match password {
            None => None,
            Some(pw) => {
                let sig = s
                    .sign_digest(CertKind::Signature, pw.as_bytes(), &digest)
                    .map_err(card_error)?;
                let cert = s
                    .read_certificate(CertKind::Signature, Some(pw.as_bytes()))
                    .map_err(card_error)?;
                Some((cert, sig))
            }
        };
        tracing::info!(%origin, personal = password.is_some(), "the card signed a login");
        Ok(jpki_server::CardAnswer {
            auth_cert,
            auth_sig,
            sign,
        })
    }
}

/// `jpki card agent`: serves the agent's pages on loopback until stopped.
pub(crate) fn card_agent(
    access: crate::args::CardAccess,
    device_key: &Path,
    listen: std::net::SocketAddr,
    providers: &[String],
    json_out: bool,
) -> Result<crate::Report, Failure> {
    let providers = providers
        .iter()
        .map(|p| {
            jpki_oidc::origin_of(p)
                .ok_or_else(|| Failure::Usage(format!("--provider {p:?}: not an http(s) URL")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !listen.ip().is_loopback() {
        return Err(Failure::Usage(format!(
            "--listen {listen}: the card agent listens on loopback only (127.0.0.1 or ::1)"
        )));
    }
    // The card is opened once now, so that a wrong path or reader is reported at the start.
    drop(crate::holder::open(&access, device_key)?);
    let card = AgentCard {
        access,
        device_key: device_key.to_path_buf(),
        busy: Mutex::new(()),
        providers,
    };
    let describe = jpki_server::CardAgent::describe(&card);
    let state = jpki_server::AppState::new().with_card_agent(Arc::new(card));
    jpki_server::init_logging();
    jpki_server::serve_blocking(listen, &state, |addr| {
        if json_out {
            println!(
                "{}",
                serde_json::json!({ "listening": addr.to_string(), "url": format!("http://{addr}") })
            );
        } else {
            println!("Card agent for {describe} on http://{addr} (Ctrl-C stops it).");
        }
    })?;
    Ok(crate::Report::new(
        serde_json::json!({ "stopped": true }),
        "Card agent stopped.",
    ))
}
