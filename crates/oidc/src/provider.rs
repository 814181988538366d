//! The authorization-code flow (OpenID Connect Core 1.0 §3.1, RFC 6749 §4.1) as the Digital
//! Authentication App runs it: `response_type=code` only, `openid` required, `state` and `nonce`
//! required (1–255 printable ASCII), PKCE S256 required, client authentication private_key_jwt
//! (RFC 7523; client_secret_basic for development clients), pairwise `sub`.
//!
//! No I/O: the HTTP layer hands over the parameters it received and sends back what these
//! functions return. Codes (single use, 60 s) and access tokens (10 min) live in memory, stored
//! under their SHA-256; a code presented twice is refused and the tokens issued from it are
//! revoked (RFC 6749 §4.1.2).
use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use subtle::ConstantTimeEq as _;
use time::{Duration, OffsetDateTime};

use crate::keys::{SigningAlg, SigningKeys};
use crate::{OidcError, Scope, pkce};

/// How a client proves who it is at the token endpoint.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// private_key_jwt: an assertion signed with one of these keys (RFC 7523 §2.2).
    PrivateKeyJwt(JwkSet),
    /// client_secret_basic (development): the SHA-256 of the secret.
    SecretBasic([u8; 32]),
}

/// A registered client (relying party).
#[derive(Debug, Clone)]
pub struct Client {
    /// client_id.
    pub id: String,
    /// Its display name (shown on the consent page).
    pub name: String,
    /// The redirect URIs it registered; a request must name one of them exactly.
    pub redirect_uris: Vec<String>,
    /// How it authenticates.
    pub auth: ClientAuth,
    /// What its ID tokens are signed with.
    pub id_token_alg: SigningAlg,
}

/// Where clients are looked up (the platform's relying-party registry).
pub trait Clients: Send + Sync {
    /// The client `id`, if it is registered for OpenID Connect.
    fn client(&self, id: &str) -> Option<Client>;
}

/// The provider's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The issuer identifier (`https://host/oidc`); the endpoints hang below it.
    pub issuer: String,
    /// How long a code may wait for its exchange.
    pub code_lifetime: Duration,
    /// How long an access token (and an ID token) is valid.
    pub token_lifetime: Duration,
}

impl Config {
    /// Settings with the usual lifetimes (a code 60 s, tokens 10 minutes).
    pub fn new(issuer: &str) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            code_lifetime: Duration::seconds(60),
            token_lifetime: Duration::minutes(10),
        }
    }

    /// The authorization endpoint.
    pub fn authorization_endpoint(&self) -> String {
        format!("{}{AUTH_PATH}", self.issuer)
    }

    /// The token endpoint (also the audience of client assertions).
    pub fn token_endpoint(&self) -> String {
        format!("{}{TOKEN_PATH}", self.issuer)
    }

    /// The userinfo endpoint.
    pub fn userinfo_endpoint(&self) -> String {
        format!("{}{USERINFO_PATH}", self.issuer)
    }

    /// The JWKS endpoint.
    pub fn jwks_uri(&self) -> String {
        format!("{}{JWKS_PATH}", self.issuer)
    }
}

/// Endpoint paths below the issuer (as Keycloak, and so the Digital Authentication App, names them).
pub const AUTH_PATH: &str = "/protocol/openid-connect/auth";
/// See [`AUTH_PATH`].
pub const TOKEN_PATH: &str = "/protocol/openid-connect/token";
/// See [`AUTH_PATH`].
pub const USERINFO_PATH: &str = "/protocol/openid-connect/userinfo";
/// See [`AUTH_PATH`].
pub const JWKS_PATH: &str = "/protocol/openid-connect/certs";
/// The discovery document below the issuer (OpenID Connect Discovery 1.0 §4).
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// The assertion type of private_key_jwt.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How far ahead a client assertion's `exp` may lie (authlib signs for an hour).
const ASSERTION_MAX_LIFE: Duration = Duration::minutes(61);
/// Clock skew allowed on `exp`.
const LEEWAY: Duration = Duration::seconds(30);
/// Entries kept before expired ones are swept.
const SWEEP_AT: usize = 10_000;

/// A validated authorization request, waiting for the person to prove possession of the card and
/// consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    /// client_id.
    pub client_id: String,
    /// The client's display name.
    pub client_name: String,
    /// The registered redirect URI the request named.
    pub redirect_uri: String,
    /// The scopes asked for (openid always among them), in a fixed order.
    pub scopes: Vec<Scope>,
    /// state, returned with the answer.
    pub state: String,
    /// nonce, put into the ID token.
    pub nonce: String,
    /// The S256 code_challenge.
    pub code_challenge: String,
}

impl AuthorizationRequest {
    /// Whether it asks for any of the four facts (which need the signature certificate).
    pub fn wants_personal_data(&self) -> bool {
        self.scopes.iter().any(|s| s.is_personal())
    }
}

/// A refused authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// The client or the redirect URI cannot be trusted: the person is told, and nothing is sent
    /// to the redirect URI (RFC 6749 §4.1.2.1).
    NoRedirect(String),
    /// Sent back to the client.
    Redirect {
        /// Where.
        redirect_uri: String,
        /// The error code (RFC 6749 §4.1.2.1).
        error: &'static str,
        /// What is wrong.
        description: String,
        /// The request's state, if it had one.
        state: Option<String>,
    },
}

impl std::fmt::Display for AuthorizeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoRedirect(why) => f.write_str(why),
            Self::Redirect {
                error, description, ..
            } => write!(f, "{error}: {description}"),
        }
    }
}

/// A refused token or userinfo request: the HTTP status and the RFC 6749 §5.2 error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    /// 400, or 401 for a client that failed to authenticate (and for a bad access token).
    pub status: u16,
    /// The error code.
    pub error: &'static str,
    /// What is wrong.
    pub description: String,
}

impl TokenError {
    fn new(status: u16, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
        }
    }

    fn request(description: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", description)
    }

    fn client(description: impl Into<String>) -> Self {
        Self::new(401, "invalid_client", description)
    }

    fn grant(description: impl Into<String>) -> Self {
        Self::new(400, "invalid_grant", description)
    }

    /// The JSON body (RFC 6749 §5.2).
    pub fn body(&self) -> Value {
        json!({ "error": self.error, "error_description": self.description })
    }
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.description)
    }
}

/// The four facts as the userinfo endpoint releases them (each only with its scope).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserClaims {
    /// The name as on the card.
    pub name: Option<String>,
    /// The address as on the card.
    pub address: Option<String>,
    /// YYYY-MM-DD.
    pub birthdate: Option<String>,
    /// "male", "female" or "other" (OpenID Connect Core §5.1).
    pub gender: Option<String>,
}

/// Who logged in, as the provider learned it from the card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The pairwise identifier for this client.
    pub sub: String,
    /// The four facts (from the signature certificate), when asked for.
    pub claims: UserClaims,
    /// When the card proved possession.
    pub auth_time: OffsetDateTime,
}

/// A code waiting to be exchanged.
#[derive(Debug)]
struct CodeGrant {
    request: AuthorizationRequest,
    subject: Subject,
    expires: OffsetDateTime,
    /// Set by the first exchange: the access tokens it issued (revoked on a second one).
    redeemed: Option<Vec<[u8; 32]>>,
}

/// An issued access token.
#[derive(Debug)]
struct AccessGrant {
    scopes: Vec<Scope>,
    subject: Subject,
    expires: OffsetDateTime,
}

/// The OpenID Connect provider.
pub struct Provider {
    config: Config,
    keys: SigningKeys,
    clients: Box<dyn Clients>,
    codes: Mutex<HashMap<[u8; 32], CodeGrant>>,
    tokens: Mutex<HashMap<[u8; 32], AccessGrant>>,
    /// Client assertion ids seen, until their `exp` (RFC 7523 §3 item 7: no replay).
    assertions: Mutex<HashMap<(String, String), OffsetDateTime>>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref());
    out
}

fn random_token() -> Result<String, OidcError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| OidcError::Key("no randomness".into()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// `uri` with the query parameters `params` appended.
fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        query.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", query.finish())
}

/// The one value of parameter `name` in `params`: `Ok(None)` when absent (or empty, which
/// RFC 6749 §3.1 treats as absent), an error when repeated.
fn single<'a>(params: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, String> {
    let mut found = params.iter().filter(|(k, v)| k == name && !v.is_empty());
    let first = found.next().map(|(_, v)| v.as_str());
    if found.next().is_some() {
        return Err(format!("{name} given more than once"));
    }
    Ok(first)
}

/// 1 to 255 printable ASCII characters (what the Digital Authentication App takes for state and
/// nonce).
fn printable(value: &str) -> bool {
    (1..=255).contains(&value.len()) && value.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// The `aud` of a client assertion: a string or an array of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, value: &str) -> bool {
        match self {
            Self::One(a) => a == value,
            Self::Many(all) => all.iter().any(|a| a == value),
        }
    }
}

#[derive(Debug, Deserialize)]
struct AssertionClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<i64>,
    jti: Option<String>,
}

#[derive(Debug, Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    nonce: &'a str,
    at_hash: String,
    /// Proof of possession of a hardware-protected key, unlocked with a PIN (RFC 8176).
    amr: [&'static str; 2],
}

/// Whether `jwk` may verify a signature of `alg`: a key of the right type and curve, and of that
/// algorithm when the JWK names one (RFC 7517 §4.4); never an HMAC secret.
fn fits(jwk: &Jwk, alg: jsonwebtoken::Algorithm) -> bool {
    use jsonwebtoken::Algorithm as A;
    if let Some(named) = jwk.common.key_algorithm
        && named.to_string() != format!("{alg:?}")
    {
        return false;
    }
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature)
    {
        return false;
    }
    match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(p) => match alg {
            A::ES256 => p.curve == jsonwebtoken::jwk::EllipticCurve::P256,
            A::ES384 => p.curve == jsonwebtoken::jwk::EllipticCurve::P384,
            _ => false,
        },
        AlgorithmParameters::RSA(_) => matches!(
            alg,
            A::RS256 | A::RS384 | A::RS512 | A::PS256 | A::PS384 | A::PS512
        ),
        _ => false,
    }
}

impl Provider {
    /// A provider signing with `keys` for the clients `clients` finds.
    pub fn new(config: Config, keys: SigningKeys, clients: Box<dyn Clients>) -> Self {
        Self {
            config,
            keys,
            clients,
            codes: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            assertions: Mutex::new(HashMap::new()),
        }
    }

    /// Its settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The discovery document (OpenID Connect Discovery 1.0 §3).
    pub fn discovery(&self) -> Value {
        let c = &self.config;
        json!({
            "issuer": c.issuer,
            "authorization_endpoint": c.authorization_endpoint(),
            "token_endpoint": c.token_endpoint(),
            "userinfo_endpoint": c.userinfo_endpoint(),
            "jwks_uri": c.jwks_uri(),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": SigningAlg::ALL.map(SigningAlg::as_str),
            "scopes_supported": Scope::ALL.map(Scope::as_str),
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "at_hash", "name", "address", "birthdate", "gender"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256", "ES384", "RS256", "PS256"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
            "claims_parameter_supported": false,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "ui_locales_supported": ["ja", "en"],
        })
    }

    /// The public signing keys (the JWKS endpoint).
    pub fn jwks(&self) -> Value {
        serde_json::to_value(self.keys.jwks()).unwrap_or(Value::Null)
    }

    /// Checks an authorization request (its query parameters, in order): first the client and the
    /// redirect URI (errors the person sees), then everything else (errors sent back to the client).
    pub fn authorize(&self, params: &[(String, String)]) -> Result<AuthorizationRequest, AuthorizeError> {
        let no_redirect = |why: String| AuthorizeError::NoRedirect(why);
        let client_id = single(params, "client_id")
            .map_err(no_redirect)?
            .ok_or_else(|| no_redirect("client_id is missing".into()))?;
        let client = self
            .clients
            .client(client_id)
            .ok_or_else(|| no_redirect(format!("client_id {client_id:?}: no such OpenID Connect client")))?;
        let redirect_uri = single(params, "redirect_uri")
            .map_err(no_redirect)?
            .ok_or_else(|| no_redirect("redirect_uri is missing".into()))?;
        if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
            return Err(no_redirect(format!(
                "redirect_uri {redirect_uri:?} is not registered for {}",
                client.name
            )));
        }
        // From here on errors go back to the client, with the state when it is usable.
        let state = single(params, "state").ok().flatten().filter(|s| printable(s));
        let back = |error: &'static str, description: String| AuthorizeError::Redirect {
            redirect_uri: redirect_uri.to_owned(),
            error,
            description,
            state: state.map(str::to_owned),
        };
        let get = |name: &str| single(params, name).map_err(|e| back("invalid_request", e));
        match get("response_type")? {
            Some("code") => {}
            Some(other) => {
                return Err(back(
                    "unsupported_response_type",
                    format!("response_type {other:?}: only \"code\""),
                ));
            }
            None => return Err(back("invalid_request", "response_type is missing".into())),
        }
        // prompt=none asks for an answer without showing the person anything; logging in with the
        // card always needs them (OpenID Connect Core §3.1.2.1, §3.1.2.6).
        if get("prompt")?.is_some_and(|p| p.split(' ').any(|v| v == "none")) {
            return Err(back(
                "login_required",
                "prompt=none: logging in with the card needs the person".into(),
            ));
        }
        if let Some(mode) = get("response_mode")?
            && mode != "query"
        {
            return Err(back(
                "invalid_request",
                format!("response_mode {mode:?}: only \"query\""),
            ));
        }
        for unsupported in ["request", "request_uri"] {
            if get(unsupported)?.is_some() {
                let error = if unsupported == "request" {
                    "request_not_supported"
                } else {
                    "request_uri_not_supported"
                };
                return Err(back(error, format!("{unsupported} is not supported")));
            }
        }
        let scope = get("scope")?.ok_or_else(|| back("invalid_request", "scope is missing".into()))?;
        let mut scopes = Vec::new();
        for name in scope.split(' ').filter(|s| !s.is_empty()) {
            let s = Scope::parse(name)
                .ok_or_else(|| back("invalid_scope", format!("scope {name:?} is not offered")))?;
            if !scopes.contains(&s) {
                scopes.push(s);
            }
        }
        if !scopes.contains(&Scope::OpenId) {
            return Err(back("invalid_scope", "scope must contain openid".into()));
        }
        scopes.sort();
        let state = match get("state")? {
            Some(s) if printable(s) => s.to_owned(),
            Some(_) => {
                return Err(back(
                    "invalid_request",
                    "state: 1 to 255 printable ASCII characters".into(),
                ));
            }
            None => return Err(back("invalid_request", "state is required".into())),
        };
        let nonce = match get("nonce")? {
            Some(n) if printable(n) => n.to_owned(),
            Some(_) => {
                return Err(back(
                    "invalid_request",
                    "nonce: 1 to 255 printable ASCII characters".into(),
                ));
            }
            None => return Err(back("invalid_request", "nonce is required".into())),
        };
        let code_challenge = get("code_challenge")?.ok_or_else(|| {
            back(
                "invalid_request",
                "code_challenge is required (PKCE, S256)".into(),
            )
        })?;
        match get("code_challenge_method")? {
            Some("S256") => {}
            Some(other) => {
                return Err(back(
                    "invalid_request",
                    format!("code_challenge_method {other:?}: only S256"),
                ));
            }
            None => {
                return Err(back(
                    "invalid_request",
                    "code_challenge_method is required and must be S256".into(),
                ));
            }
        }
        if !pkce::valid_challenge(code_challenge) {
            return Err(back(
                "invalid_request",
                "code_challenge: not the base64url of a SHA-256 digest".into(),
            ));
        }
        Ok(AuthorizationRequest {
            client_id: client.id,
            client_name: client.name,
            redirect_uri: redirect_uri.to_owned(),
            scopes,
            state,
            nonce,
            code_challenge: code_challenge.to_owned(),
        })
    }

    /// Where the person's browser goes with a refusal.
    pub fn error_location(&self, error: &AuthorizeError) -> Option<String> {
        match error {
            AuthorizeError::NoRedirect(_) => None,
            AuthorizeError::Redirect {
                redirect_uri,
                error,
                description,
                state,
            } => {
                let mut params = vec![("error", *error), ("error_description", description.as_str())];
                if let Some(s) = state {
                    params.push(("state", s));
                }
                params.push(("iss", &self.config.issuer));
                Some(with_query(redirect_uri, &params))
            }
        }
    }

    /// The person declined: where the browser goes (error access_denied).
    pub fn deny(&self, request: &AuthorizationRequest) -> String {
        with_query(
            &request.redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "the person declined"),
                ("state", &request.state),
                ("iss", &self.config.issuer),
            ],
        )
    }

    /// The person proved possession of the card and consented: a new code, and where the browser
    /// goes with it (RFC 9207's `iss` included).
    pub fn grant(
        &self,
        request: &AuthorizationRequest,
        subject: Subject,
        now: OffsetDateTime,
    ) -> Result<String, OidcError> {
        let code = random_token()?;
        let mut codes = self.codes.lock().map_err(|_| OidcError::Poisoned)?;
        if codes.len() >= SWEEP_AT {
            codes.retain(|_, g| g.expires > now);
        }
        codes.insert(
            sha256(code.as_bytes()),
            CodeGrant {
                request: request.clone(),
                subject,
                expires: now + self.config.code_lifetime,
                redeemed: None,
            },
        );
        Ok(with_query(
            &request.redirect_uri,
            &[
                ("code", &code),
                ("state", &request.state),
                ("iss", &self.config.issuer),
            ],
        ))
    }

    /// The token endpoint: `params` is the form body, `authorization` the Authorization header.
    /// Answers the token response (RFC 6749 §5.1, with the ID token).
    pub fn token(
        &self,
        params: &[(String, String)],
        authorization: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Value, TokenError> {
        let get = |name: &str| single(params, name).map_err(TokenError::request);
        let client = self.authenticate_client(params, authorization, now)?;
        match get("grant_type")? {
            Some("authorization_code") => {}
            Some(other) => {
                return Err(TokenError::new(
                    400,
                    "unsupported_grant_type",
                    format!("grant_type {other:?}: only authorization_code"),
                ));
            }
            None => return Err(TokenError::request("grant_type is missing")),
        }
        let code = get("code")?.ok_or_else(|| TokenError::request("code is missing"))?;
        let redirect_uri = get("redirect_uri")?;
        let verifier = get("code_verifier")?;
        let key = sha256(code.as_bytes());
        let mut codes = self
            .codes
            .lock()
            .map_err(|_| TokenError::new(500, "server_error", "state lost"))?;
        let Some(grant) = codes.get_mut(&key) else {
            return Err(TokenError::grant("the code is unknown or expired"));
        };
        if let Some(issued) = grant.redeemed.take() {
            // A second exchange: someone else may hold the code. Its tokens are revoked.
            codes.remove(&key);
            drop(codes);
            if let Ok(mut tokens) = self.tokens.lock() {
                for t in issued {
                    tokens.remove(&t);
                }
            }
            return Err(TokenError::grant(
                "the code was already used; the tokens issued with it are revoked",
            ));
        }
        if grant.expires <= now {
            codes.remove(&key);
            return Err(TokenError::grant("the code expired"));
        }
        if grant.request.client_id != client.id {
            return Err(TokenError::grant("the code was issued to another client"));
        }
        if redirect_uri != Some(grant.request.redirect_uri.as_str()) {
            return Err(TokenError::grant(
                "redirect_uri differs from the authorization request's",
            ));
        }
        let Some(verifier) = verifier else {
            return Err(TokenError::request("code_verifier is required (PKCE)"));
        };
        if !pkce::verify(verifier, &grant.request.code_challenge) {
            return Err(TokenError::grant(
                "code_verifier does not match the code_challenge",
            ));
        }
        let access_token = random_token().map_err(|e| TokenError::new(500, "server_error", e.to_string()))?;
        let token_hash = sha256(access_token.as_bytes());
        let request = grant.request.clone();
        let subject = grant.subject.clone();
        let expires = now + self.config.token_lifetime;
        // The token is stored before the code counts as redeemed, both under the codes lock: a
        // second exchange racing this one finds the token to revoke.
        {
            let mut tokens = self
                .tokens
                .lock()
                .map_err(|_| TokenError::new(500, "server_error", "state lost"))?;
            if tokens.len() >= SWEEP_AT {
                tokens.retain(|_, t| t.expires > now);
            }
            tokens.insert(
                token_hash,
                AccessGrant {
                    scopes: request.scopes.clone(),
                    subject: subject.clone(),
                    expires,
                },
            );
        }
        grant.redeemed = Some(vec![token_hash]);
        drop(codes);
        // at_hash: the left half of SHA-256 of the access token (both algorithms hash with it).
        let at_hash =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&sha256(access_token.as_bytes())[..16]);
        let claims = IdTokenClaims {
            iss: &self.config.issuer,
            sub: &subject.sub,
            aud: &client.id,
            exp: expires.unix_timestamp(),
            iat: now.unix_timestamp(),
            auth_time: subject.auth_time.unix_timestamp(),
            nonce: &request.nonce,
            at_hash,
            amr: ["hwk", "pin"],
        };
        let id_token = match self.keys.sign(client.id_token_alg, &claims) {
            Ok(t) => t,
            Err(e) => {
                if let Ok(mut tokens) = self.tokens.lock() {
                    tokens.remove(&token_hash);
                }
                return Err(TokenError::new(500, "server_error", e.to_string()));
            }
        };
        let scope = request
            .scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.config.token_lifetime.whole_seconds(),
            "id_token": id_token,
            "scope": scope,
        }))
    }

    /// The userinfo endpoint for the bearer token `access_token`: `sub` and the facts the
    /// token's scopes cover.
    pub fn userinfo(&self, access_token: Option<&str>, now: OffsetDateTime) -> Result<Value, TokenError> {
        let invalid = || TokenError::new(401, "invalid_token", "the access token is unknown or expired");
        let token = access_token.ok_or_else(|| TokenError::new(401, "invalid_token", "no access token"))?;
        let tokens = self
            .tokens
            .lock()
            .map_err(|_| TokenError::new(500, "server_error", "state lost"))?;
        let grant = tokens.get(&sha256(token.as_bytes())).ok_or_else(invalid)?;
        if grant.expires <= now {
            return Err(invalid());
        }
        let mut out = serde_json::Map::new();
        out.insert("sub".into(), grant.subject.sub.clone().into());
        let c = &grant.subject.claims;
        for scope in &grant.scopes {
            match scope {
                Scope::Name => {
                    out.insert("name".into(), c.name.clone().into());
                }
                Scope::Address => {
                    out.insert(
                        "address".into(),
                        c.address
                            .as_ref()
                            .map_or(Value::Null, |a| json!({ "formatted": a })),
                    );
                }
                Scope::Birthdate => {
                    out.insert("birthdate".into(), c.birthdate.clone().into());
                }
                Scope::Gender => {
                    out.insert("gender".into(), c.gender.clone().into());
                }
                Scope::OpenId | Scope::Sign => {}
            }
        }
        Ok(Value::Object(out))
    }

    /// Authenticates the client of a request to one of the provider's client endpoints (sign
    /// transactions) as the token endpoint does: the form's `client_id`, `client_assertion` … and
    /// the Authorization header.
    pub fn authenticate(
        &self,
        params: &[(String, String)],
        authorization: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Client, TokenError> {
        self.authenticate_client(params, authorization, now)
    }

    /// Authenticates the client of a token request: private_key_jwt or client_secret_basic,
    /// whichever it registered (RFC 6749 §2.3, RFC 7523 §3).
    fn authenticate_client(
        &self,
        params: &[(String, String)],
        authorization: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Client, TokenError> {
        let get = |name: &str| single(params, name).map_err(TokenError::request);
        let basic = authorization.and_then(|h| {
            let (scheme, rest) = h.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
        });
        let assertion = get("client_assertion")?;
        match (basic, assertion) {
            (Some(_), Some(_)) => Err(TokenError::request("more than one client authentication method")),
            (None, None) => Err(TokenError::client(
                "no client authentication (private_key_jwt or client_secret_basic)",
            )),
            (Some(credentials), None) => self.authenticate_basic(credentials),
            (None, Some(jwt)) => {
                if get("client_assertion_type")? != Some(JWT_BEARER) {
                    return Err(TokenError::request(format!(
                        "client_assertion_type must be {JWT_BEARER}"
                    )));
                }
                self.authenticate_assertion(jwt, get("client_id")?, now)
            }
        }
    }

    fn authenticate_basic(&self, credentials: &str) -> Result<Client, TokenError> {
        let bad = || TokenError::client("client authentication failed");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .map_err(|_| bad())?;
        let text = String::from_utf8(decoded).map_err(|_| bad())?;
        let (id, secret) = text.split_once(':').ok_or_else(bad)?;
        // RFC 6749 §2.3.1: both form-urlencoded before joining.
        let decode = |s: &str| -> String {
            form_urlencoded::parse(format!("v={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let (id, secret) = (decode(id), zeroize::Zeroizing::new(decode(secret)));
        let client = self.clients.client(&id).ok_or_else(bad)?;
        match &client.auth {
            ClientAuth::SecretBasic(hash) if bool::from(sha256(secret.as_bytes()).ct_eq(hash)) => Ok(client),
            ClientAuth::SecretBasic(_) => Err(bad()),
            ClientAuth::PrivateKeyJwt(_) => Err(TokenError::client(
                "this client registered keys: authenticate with private_key_jwt",
            )),
        }
    }

    fn authenticate_assertion(
        &self,
        jwt: &str,
        client_id: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Client, TokenError> {
        let header = jsonwebtoken::decode_header(jwt)
            .map_err(|e| TokenError::client(format!("client_assertion: {e}")))?;
        let unverified: AssertionClaims = jsonwebtoken::dangerous::insecure_decode(jwt)
            .map_err(|e| TokenError::client(format!("client_assertion: {e}")))?
            .claims;
        let id = unverified
            .iss
            .clone()
            .ok_or_else(|| TokenError::client("client_assertion: no iss"))?;
        if client_id.is_some_and(|c| c != id) {
            return Err(TokenError::client("client_id differs from the assertion's iss"));
        }
        let client = self
            .clients
            .client(&id)
            .ok_or_else(|| TokenError::client("client_assertion: unknown client"))?;
        let ClientAuth::PrivateKeyJwt(keys) = &client.auth else {
            return Err(TokenError::client(
                "this client has no registered keys: authenticate with client_secret_basic",
            ));
        };
        let candidates: Vec<&Jwk> = match &header.kid {
            Some(kid) => keys.find(kid).into_iter().collect(),
            None => keys.keys.iter().collect(),
        };
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let verified = candidates
            .into_iter()
            .filter(|k| fits(k, header.alg))
            .filter_map(|k| DecodingKey::from_jwk(k).ok())
            .find_map(|k| jsonwebtoken::decode::<AssertionClaims>(jwt, &k, &validation).ok())
            .ok_or_else(|| {
                TokenError::client("client_assertion: the signature does not verify with the client's keys")
            })?
            .claims;
        if verified.sub.as_deref() != Some(id.as_str()) {
            return Err(TokenError::client(
                "client_assertion: sub must equal iss (the client_id)",
            ));
        }
        let token_endpoint = self.config.token_endpoint();
        if !verified
            .aud
            .as_ref()
            .is_some_and(|a| a.contains(&token_endpoint) || a.contains(&self.config.issuer))
        {
            return Err(TokenError::client(format!(
                "client_assertion: aud must name the token endpoint {token_endpoint}"
            )));
        }
        let exp = verified
            .exp
            .and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok())
            .ok_or_else(|| TokenError::client("client_assertion: exp is required"))?;
        // The far-future check first: it also keeps `exp + LEEWAY` within range.
        if exp > now + ASSERTION_MAX_LIFE {
            return Err(TokenError::client(
                "client_assertion: exp lies too far ahead (at most an hour)",
            ));
        }
        if exp + LEEWAY <= now {
            return Err(TokenError::client("client_assertion: expired"));
        }
        let jti = verified
            .jti
            .ok_or_else(|| TokenError::client("client_assertion: jti is required"))?;
        let mut seen = self
            .assertions
            .lock()
            .map_err(|_| TokenError::new(500, "server_error", "state lost"))?;
        if seen.len() >= SWEEP_AT {
            seen.retain(|_, until| *until + LEEWAY > now);
        }
        if seen.insert((id, jti), exp).is_some() {
            return Err(TokenError::client(
                "client_assertion: this jti was used before (replay)",
            ));
        }
        Ok(client)
    }
}
