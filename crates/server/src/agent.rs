//! The card agent's pages (`jpki card agent`): a small server on the person's own machine, on
//! loopback, that the provider's login page hands its challenge to. The agent shows which site
//! asks (the origin it will sign for, taken from where the answer goes, not from anything the site
//! says about itself), takes the PIN on its own page, has the card sign, and posts the answer back.
//!
//! - `POST /login`: the challenge (`tx`, `challenge`, `return_to`, `client`, `scopes`, `personal`)
//!   → the PIN page, carrying a one-time token only this page knows.
//! - `POST /login/sign`: the token and the PIN (and the signing password) → a page that posts the
//!   card's answer to `return_to` (at once with JavaScript, by its button without).
//!
//! Another site cannot use the agent to guess PINs: the PIN form needs the token, which a page of
//! another origin cannot read. Requests naming a non-loopback `Host` are refused (DNS rebinding).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine as _;

use crate::oidc::origin_only;
use crate::pages;

/// What the card returned for a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardAnswer {
    /// The authentication certificate (DER).
    pub auth_cert: Vec<u8>,
    /// Its signature over the login statement.
    pub auth_sig: Vec<u8>,
    /// The signature certificate (DER) and its signature, when asked for.
    pub sign: Option<(Vec<u8>, Vec<u8>)>,
}

/// Why the card did not sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardRefusal {
    /// One line for the person ("wrong PIN: 2 tries left", "the PIN is locked" …).
    pub message: String,
    /// Whether asking again may help (a wrong PIN with tries left, no card in the reader).
    pub retry: bool,
}

/// The card behind the agent.
pub trait CardAgent: Send + Sync + 'static {
    /// What the agent reads cards from, for its status page ("card file X", "reader Y").
    fn describe(&self) -> String;
    /// Has the card sign the login statement for `origin` and `challenge` with the authentication
    /// key after `pin`, and with the signature key after `password` when one is given.
    fn sign_login(
        &self,
        origin: &str,
        challenge: &[u8],
        pin: &str,
        password: Option<&str>,
    ) -> Result<CardAnswer, CardRefusal>;
    /// Has the card sign `digest` (a document's SHA-256, for a sign transaction) with the
    /// signature key after `password`: (signature certificate DER, signature).
    fn sign_digest(&self, digest: &[u8; 32], password: &str) -> Result<(Vec<u8>, Vec<u8>), CardRefusal>;
    /// Whether the person lets the site at `origin` ask for signatures over documents (sign
    /// transactions); logins are bound to their origin and need no such trust.
    fn may_sign_for(&self, origin: &str) -> bool {
        let _ = origin;
        false
    }
}

/// How long the PIN page waits.
const PENDING_FOR: Duration = Duration::from_secs(300);
/// The largest form the agent reads.
const MAX_FORM: usize = 16 * 1024;

struct Pending {
    tx: String,
    challenge: Vec<u8>,
    return_to: String,
    origin: String,
    client: String,
    scopes: Vec<String>,
    personal: bool,
    /// A sign transaction: the challenge is a document's SHA-256, signed with the signature key.
    sign: Option<String>,
    since: Instant,
}

#[derive(Clone)]
struct Agent {
    card: Arc<dyn CardAgent>,
    pending: Arc<Mutex<HashMap<String, Pending>>>,
}

pub(crate) fn routes(card: Arc<dyn CardAgent>) -> Router {
    let agent = Agent {
        card,
        pending: Arc::new(Mutex::new(HashMap::new())),
    };
    Router::new()
        .route("/", get(status))
        .route("/login", post(login).layer(DefaultBodyLimit::max(MAX_FORM)))
        .route("/login/sign", post(sign).layer(DefaultBodyLimit::max(MAX_FORM)))
        .with_state(agent)
}

/// Whether the request's Host is this machine (the agent never answers a name that may resolve
/// elsewhere).
fn loopback_host(req: &Request) -> bool {
    let Some(host) = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    matches!(name, "127.0.0.1" | "localhost" | "::1")
}

async fn form_of(req: Request) -> Result<Vec<(String, String)>, Response> {
    if !loopback_host(&req) {
        return Err(pages::refusal(
            StatusCode::FORBIDDEN,
            "the card agent answers on 127.0.0.1 only",
        ));
    }
    match axum::body::to_bytes(req.into_body(), MAX_FORM).await {
        Ok(b) => Ok(form_urlencoded::parse(&b).into_owned().collect()),
        Err(_) => Err(pages::refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the form is larger than 16 KiB",
        )),
    }
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

async fn status(State(a): State<Agent>, req: Request) -> Response {
    if !loopback_host(&req) {
        return pages::refusal(StatusCode::FORBIDDEN, "the card agent answers on 127.0.0.1 only");
    }
    let body = format!(
        "<p>{}</p><p>{}</p>",
        pages::ja_en(
            "カードエージェントは動作中です。ログインページから利用します。",
            "The card agent is running. Login pages use it."
        ),
        pages::escape(&a.card.describe())
    );
    pages::html(
        StatusCode::OK,
        pages::document("カードエージェント", "Card agent", &body),
        "'none'",
        None,
    )
}

fn token() -> Option<String> {
    let mut b = [0u8; 24];
    aws_lc_rs::rand::fill(&mut b).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

async fn login(State(a): State<Agent>, req: Request) -> Response {
    // The page that sent the challenge must be of the origin the card will sign for: another
    // site cannot hand the agent a challenge it copied from the provider's page.
    let sender = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    let form = match form_of(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let (Some(tx), Some(challenge), Some(return_to)) = (
        field(&form, "tx"),
        field(&form, "challenge"),
        field(&form, "return_to"),
    ) else {
        return pages::refusal(
            StatusCode::BAD_REQUEST,
            "the login page sent no tx, challenge or return_to",
        );
    };
    let Ok(challenge) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(challenge) else {
        return pages::refusal(StatusCode::BAD_REQUEST, "challenge: not base64url");
    };
    if !(16..=64).contains(&challenge.len()) {
        return pages::refusal(StatusCode::BAD_REQUEST, "challenge: 16 to 64 bytes");
    }
    let origin = origin_only(return_to);
    if !(origin.starts_with("https://") || origin.starts_with("http://")) || origin.ends_with("://") {
        return pages::refusal(StatusCode::BAD_REQUEST, "return_to: not an http(s) URL");
    }
    let origin = origin.to_ascii_lowercase();
    if sender.as_deref() != Some(origin.as_str()) {
        return pages::refusal(
            StatusCode::FORBIDDEN,
            &format!(
                "the request did not come from {origin}, where the answer would go: the agent signs only for the site that asks"
            ),
        );
    }
    let Some(t) = token() else {
        return pages::refusal(StatusCode::INTERNAL_SERVER_ERROR, "no randomness");
    };
    let p = Pending {
        tx: tx.to_owned(),
        challenge,
        return_to: return_to.to_owned(),
        origin: origin.clone(),
        client: field(&form, "client").unwrap_or("").chars().take(200).collect(),
        scopes: field(&form, "scopes")
            .unwrap_or("openid")
            .split(' ')
            .filter(|s| !s.is_empty())
            .take(16)
            .map(str::to_owned)
            .collect(),
        personal: field(&form, "personal") == Some("1"),
        sign: (field(&form, "mode") == Some("sign")).then(|| {
            field(&form, "description")
                .unwrap_or("")
                .chars()
                .take(200)
                .collect()
        }),
        since: Instant::now(),
    };
    if p.sign.is_some() && p.challenge.len() != 32 {
        return pages::refusal(
            StatusCode::BAD_REQUEST,
            "a sign transaction's digest is 32 bytes (SHA-256)",
        );
    }
    if p.sign.is_some() && !a.card.may_sign_for(&p.origin) {
        return pages::refusal(
            StatusCode::FORBIDDEN,
            &format!(
                "{} is not a provider this card agent signs documents for (`jpki card agent --provider URL`)",
                p.origin
            ),
        );
    }
    let page = pin_page(&t, &p, None);
    if let Ok(mut pending) = a.pending.lock() {
        pending.retain(|_, p| p.since.elapsed() < PENDING_FOR);
        pending.insert(t, p);
    }
    page
}

fn pin_page(token: &str, p: &Pending, error: Option<&str>) -> Response {
    let mut claims = String::new();
    for s in &p.scopes {
        let (ja, en) = pages::scope_label(s);
        claims.push_str(&format!("<li>{}</li>", pages::ja_en(ja, en)));
    }
    if let Some(description) = &p.sign {
        return sign_page(token, p, description, error);
    }
    let password = if p.personal {
        format!(
            "<label for=\"password\">{}</label>\
             <input type=\"password\" id=\"password\" name=\"password\" minlength=\"6\" maxlength=\"16\" \
             autocomplete=\"off\" required>",
            pages::ja_en(
                "署名用電子証明書の暗証番号（英数字6〜16文字）",
                "Signature certificate password (6–16 characters)"
            )
        )
    } else {
        String::new()
    };
    let error = error_box(error);
    let body = format!(
        "{error}<p>{to}</p><p class=\"origin\">{origin}</p><p>{says}</p><ul class=\"claims\">{claims}</ul>\
         <form method=\"post\" action=\"/login/sign\">{token}\
         <label for=\"pin\">{pin_label}</label>\
         <input type=\"password\" id=\"pin\" name=\"pin\" inputmode=\"numeric\" pattern=\"[0-9]{{4}}\" \
         minlength=\"4\" maxlength=\"4\" autocomplete=\"off\" required autofocus>{password}\
         <div><button type=\"submit\">{go}</button></div></form>",
        to = pages::ja_en(
            "次のサイトへのログインにカードを使います:",
            "Your card will log you in to:"
        ),
        origin = pages::escape(&p.origin),
        says = pages::ja_en(
            &format!("サイトの表示名: {}。提供を求める情報:", p.client),
            &format!("The site names the service \"{}\" and asks for:", p.client)
        ),
        token = pages::hidden("token", token),
        pin_label = pages::ja_en(
            "利用者証明用電子証明書の暗証番号（数字4桁）",
            "Authentication certificate PIN (4 digits)"
        ),
        go = pages::ja_en("署名してログイン", "Sign and log in"),
    );
    agent_page(&body, !error.is_empty())
}

fn sign_page(token: &str, p: &Pending, description: &str, error: Option<&str>) -> Response {
    let error = error_box(error);
    let digest: String = p.challenge.iter().map(|b| format!("{b:02x}")).collect();
    let body = format!(
        "{error}<p>{to}</p><p class=\"origin\">{origin}</p><dl class=\"box\"><dt>{what_label}</dt><dd>{what}</dd>\
         <dt>SHA-256</dt><dd><code>{digest}</code></dd></dl>\
         <form method=\"post\" action=\"/login/sign\">{token}\
         <label for=\"password\">{pw_label}</label>\
         <input type=\"password\" id=\"password\" name=\"password\" minlength=\"6\" maxlength=\"16\" \
         autocomplete=\"off\" required autofocus>\
         <div><button type=\"submit\">{go}</button></div></form>",
        to = pages::ja_en(
            "次のサイトの求めで、文書に電子署名します:",
            "Your card will sign a document for:"
        ),
        origin = pages::escape(&p.origin),
        what_label = pages::ja_en(
            &format!("文書（{} の説明）", p.client),
            &format!("Document (as {} describes it)", p.client)
        ),
        what = pages::escape(description),
        token = pages::hidden("token", token),
        pw_label = pages::ja_en(
            "署名用電子証明書の暗証番号（英数字6〜16文字）",
            "Signature certificate password (6–16 characters)"
        ),
        go = pages::ja_en("署名する", "Sign"),
    );
    agent_page(&body, !error.is_empty())
}

/// The card's refusal, if any, as the top of a page.
fn error_box(error: Option<&str>) -> String {
    error.map_or_else(String::new, |e| {
        format!(
            "<div class=\"box error\" role=\"alert\"><p>{}</p></div>",
            pages::escape(e)
        )
    })
}

/// One of the agent's own pages (forms only to itself); 422 when it shows a refusal.
fn agent_page(body: &str, failed: bool) -> Response {
    pages::html(
        if failed {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        },
        pages::document("カードエージェント", "Card agent", body),
        "'self'",
        None,
    )
}

async fn sign(State(a): State<Agent>, req: Request) -> Response {
    let form = match form_of(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(t) = field(&form, "token").map(str::to_owned) else {
        return pages::refusal(
            StatusCode::BAD_REQUEST,
            "no token: start again from the login page",
        );
    };
    let pending = {
        let Ok(mut all) = a.pending.lock() else {
            return pages::refusal(StatusCode::INTERNAL_SERVER_ERROR, "the card agent failed");
        };
        match all.remove(&t) {
            Some(p) if p.since.elapsed() < PENDING_FOR => p,
            _ => {
                return pages::refusal(
                    StatusCode::BAD_REQUEST,
                    "this PIN page has expired or was used: start again from the login page",
                );
            }
        }
    };
    let pin = zeroize::Zeroizing::new(field(&form, "pin").unwrap_or("").to_owned());
    let password = zeroize::Zeroizing::new(field(&form, "password").unwrap_or("").to_owned());
    let card = Arc::clone(&a.card);
    let (p, result) = {
        let (origin, challenge) = (pending.origin.clone(), pending.challenge.clone());
        let (personal, sign_tx) = (pending.personal, pending.sign.is_some());
        let result = tokio::task::spawn_blocking(move || {
            if sign_tx {
                let digest: [u8; 32] = challenge.as_slice().try_into().map_err(|_| CardRefusal {
                    message: "a sign transaction's digest is 32 bytes".into(),
                    retry: false,
                })?;
                card.sign_digest(&digest, &password)
                    .map(|(cert, sig)| CardAnswer {
                        auth_cert: Vec::new(),
                        auth_sig: Vec::new(),
                        sign: Some((cert, sig)),
                    })
            } else {
                card.sign_login(&origin, &challenge, &pin, personal.then_some(password.as_str()))
            }
        })
        .await;
        (pending, result)
    };
    match result {
        Ok(Ok(answer)) => answer_page(&p, &answer),
        Ok(Err(refusal)) if refusal.retry => {
            let Some(t) = token() else {
                return pages::refusal(StatusCode::INTERNAL_SERVER_ERROR, "no randomness");
            };
            let page = pin_page(&t, &p, Some(&refusal.message));
            if let Ok(mut all) = a.pending.lock() {
                all.insert(t, p);
            }
            page
        }
        Ok(Err(refusal)) => pages::refusal(StatusCode::UNPROCESSABLE_ENTITY, &refusal.message),
        Err(_) => pages::refusal(StatusCode::INTERNAL_SERVER_ERROR, "the card agent failed"),
    }
}

fn answer_page(p: &Pending, answer: &CardAnswer) -> Response {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut fields = pages::hidden("tx", &p.tx);
    if !answer.auth_cert.is_empty() {
        fields.push_str(&pages::hidden("auth_cert", &b64.encode(&answer.auth_cert)));
        fields.push_str(&pages::hidden("auth_sig", &b64.encode(&answer.auth_sig)));
    }
    if let Some((cert, sig)) = &answer.sign {
        fields.push_str(&pages::hidden("sign_cert", &b64.encode(cert)));
        fields.push_str(&pages::hidden("sign_sig", &b64.encode(sig)));
    }
    let body = format!(
        "<p>{done}</p><form method=\"post\" action=\"{action}\">{fields}\
         <button type=\"submit\" autofocus>{go}</button></form><script>{script}</script>",
        done = pages::ja_en("カードで署名しました。", "Your card has signed."),
        action = pages::escape(&p.return_to),
        go = pages::ja_en(
            &format!("{} に戻る", p.origin),
            &format!("Continue to {}", p.origin)
        ),
        script = pages::AUTO_SUBMIT,
    );
    pages::html(
        StatusCode::OK,
        pages::document("カードエージェント", "Card agent", &body),
        &p.origin,
        Some(&pages::auto_submit_hash()),
    )
}
