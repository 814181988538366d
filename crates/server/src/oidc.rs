//! The OpenID Connect provider's machine-facing endpoints under [`OIDC_PREFIX`]: discovery, the
//! JWKS, the token endpoint and userinfo. What they answer comes from an [`OidcEndpoints`] the
//! caller hands in (`jpki serve` backs it with `jpki-oidc`); this module does HTTP only: methods,
//! media types, body limits, form decoding (a parameter may appear several times: the provider
//! refuses that), and the headers RFC 6749 §5.1 and RFC 6750 §3 ask for.
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::pages;
use crate::tsa::is_media_type;

/// Where the provider's endpoints live: the issuer is `{public URL}{OIDC_PREFIX}`.
pub const OIDC_PREFIX: &str = "/oidc";

/// The largest token or userinfo request body.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// An answer: HTTP status and JSON body.
pub type JsonAnswer = (u16, String);

/// Where the browser goes next in a login, as the provider decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginStep {
    /// Send the browser there (303: to the relying party with a code or an error).
    Redirect(String),
    /// Show a refusal (the request cannot go back to the relying party, or the login is gone).
    Refused {
        /// HTTP status (4xx).
        status: u16,
        /// What is wrong, one line for the person.
        message: String,
    },
    /// Show the page that hands the challenge to the person's card agent.
    Card(CardPrompt),
    /// Show what the relying party will receive, to approve or decline.
    Consent(ConsentPrompt),
    /// Show what a relying party asks the person to sign.
    Sign(SignPrompt),
    /// Show a refusal with a link back to the relying party (which learns of it from the link's
    /// `error`).
    RefusedBack {
        /// HTTP status (4xx).
        status: u16,
        /// What is wrong, one line for the person.
        message: String,
        /// The relying party's redirect URI with the error.
        back: String,
    },
    /// Show that it is done, with a link onwards (to the relying party). A link, not a redirect:
    /// the page the form came from (the card agent's) may only post to this provider.
    Done {
        /// What happened, for the person.
        message: String,
        /// Where to go on.
        to: String,
    },
}

/// The page of a sign transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignPrompt {
    /// The transaction's id.
    pub tx: String,
    /// The relying party's name.
    pub client_name: String,
    /// What it says the document is.
    pub description: String,
    /// The SHA-256 to sign (base64url).
    pub digest: String,
    /// The card agent's base URL.
    pub agent: String,
    /// Where the agent sends the signature (this provider's sign-card endpoint, absolute).
    pub return_to: String,
    /// The origin of the relying party's redirect URI (declining redirects there).
    pub redirect_origin: String,
}

/// The path a relying party opens a sign transaction at (below [`OIDC_PREFIX`]).
pub const SIGN_PATH: &str = "/sign";

/// The page that sends the login challenge to the card agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardPrompt {
    /// The login's id.
    pub tx: String,
    /// The challenge (base64url).
    pub challenge: String,
    /// The relying party's name.
    pub client_name: String,
    /// The scopes asked for (`openid`, `name` …).
    pub scopes: Vec<String>,
    /// Whether the signature certificate and its password are needed (the four facts).
    pub personal: bool,
    /// The card agent's base URL (`http://127.0.0.1:48620`).
    pub agent: String,
    /// Where the agent sends the card's answer (this provider's card endpoint, absolute).
    pub return_to: String,
    /// The origin of the relying party's redirect URI (cancelling redirects there).
    pub redirect_origin: String,
}

/// The consent page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentPrompt {
    /// The login's id.
    pub tx: String,
    /// The relying party's name.
    pub client_name: String,
    /// What it will receive: (scope, value shown), in scope order.
    pub claims: Vec<(String, String)>,
    /// The origin of its redirect URI (the decision's redirect goes there).
    pub redirect_origin: String,
}

/// The path the card agent posts the card's answer to (below [`OIDC_PREFIX`]).
pub const LOGIN_CARD_PATH: &str = "/login/card";
/// The path of the consent decision (below [`OIDC_PREFIX`]).
pub const LOGIN_CONSENT_PATH: &str = "/login/consent";

/// The provider behind the endpoints. Its methods may block briefly (a registry read).
pub trait OidcEndpoints: Send + Sync + 'static {
    /// The authorization endpoint (GET query parameters, or a POSTed form).
    fn authorize(&self, params: &[(String, String)]) -> LoginStep {
        let _ = params;
        LoginStep::Refused {
            status: 404,
            message: "this server does not log people in".into(),
        }
    }
    /// The card agent's answer: `tx`, `auth_cert`, `auth_sig` (and `sign_cert`, `sign_sig`), all
    /// base64; or `tx` and `cancel`.
    fn card(&self, form: &[(String, String)]) -> LoginStep {
        let _ = form;
        LoginStep::Refused {
            status: 404,
            message: "this server does not log people in".into(),
        }
    }
    /// A relying party opens a sign transaction (form with client authentication).
    fn sign_open(&self, form: &[(String, String)], authorization: Option<&str>) -> JsonAnswer {
        let _ = (form, authorization);
        (
            404,
            r#"{"error":"invalid_request","error_description":"no sign transactions here"}"#.into(),
        )
    }
    /// A relying party fetches a transaction's outcome (form with `transaction_id` and client
    /// authentication).
    fn sign_result(&self, form: &[(String, String)], authorization: Option<&str>) -> JsonAnswer {
        let _ = (form, authorization);
        (
            404,
            r#"{"error":"invalid_request","error_description":"no sign transactions here"}"#.into(),
        )
    }
    /// The person's page of transaction `id`.
    fn sign_page(&self, id: &str) -> LoginStep {
        let _ = id;
        LoginStep::Refused {
            status: 404,
            message: "no such sign transaction".into(),
        }
    }
    /// The card agent's answer to a sign transaction (`tx`, `sign_cert`, `sign_sig`), or `tx` and
    /// `cancel`.
    fn sign_card(&self, form: &[(String, String)]) -> LoginStep {
        let _ = form;
        LoginStep::Refused {
            status: 404,
            message: "no such sign transaction".into(),
        }
    }
    /// The person's decision: `tx` and `decision` (`approve` or `deny`).
    fn consent(&self, form: &[(String, String)]) -> LoginStep {
        let _ = form;
        LoginStep::Refused {
            status: 404,
            message: "this server does not log people in".into(),
        }
    }
    /// The discovery document (JSON).
    fn discovery(&self) -> String;
    /// The JWKS (JSON).
    fn jwks(&self) -> String;
    /// The token endpoint: the form parameters in order, and the Authorization header.
    fn token(&self, form: &[(String, String)], authorization: Option<&str>) -> JsonAnswer;
    /// Userinfo for the bearer access token, if one was sent.
    fn userinfo(&self, access_token: Option<&str>) -> JsonAnswer;
}

pub(crate) fn routes(endpoints: Arc<dyn OidcEndpoints>) -> Router {
    Router::new()
        .route(
            &format!("{OIDC_PREFIX}/.well-known/openid-configuration"),
            get(|State(e): State<Arc<dyn OidcEndpoints>>| async move { json(200, e.discovery()) }),
        )
        .route(
            &format!("{OIDC_PREFIX}/protocol/openid-connect/certs"),
            get(|State(e): State<Arc<dyn OidcEndpoints>>| async move {
                let mut r = json(200, e.jwks());
                r.headers_mut().insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=300"),
                );
                r
            }),
        )
        .route(
            &format!("{OIDC_PREFIX}/protocol/openid-connect/auth"),
            get(authorize_get)
                .post(authorize_post)
                .layer(DefaultBodyLimit::max(MAX_FORM_BYTES)),
        )
        .route(
            &format!("{OIDC_PREFIX}{LOGIN_CARD_PATH}"),
            axum::routing::post(card).layer(DefaultBodyLimit::max(MAX_FORM_BYTES)),
        )
        .route(
            &format!("{OIDC_PREFIX}{LOGIN_CONSENT_PATH}"),
            axum::routing::post(consent).layer(DefaultBodyLimit::max(MAX_FORM_BYTES)),
        )
        .route(
            &format!("{OIDC_PREFIX}{SIGN_PATH}"),
            axum::routing::post(sign_open).layer(DefaultBodyLimit::max(MAX_FORM_BYTES)),
        )
        .route(
            &format!("{OIDC_PREFIX}{SIGN_PATH}/result"),
            axum::routing::post(sign_result).layer(DefaultBodyLimit::max(MAX_FORM_BYTES)),
        )
        .route(
            &format!("{OIDC_PREFIX}{SIGN_PATH}/card"),
            axum::routing::post(sign_card).layer(DefaultBodyLimit::max(MAX_FORM_BYTES)),
        )
        .route(&format!("{OIDC_PREFIX}{SIGN_PATH}/tx/{{id}}"), get(sign_page))
        .route(
            &format!("{OIDC_PREFIX}/protocol/openid-connect/token"),
            axum::routing::post(token).layer(DefaultBodyLimit::max(MAX_FORM_BYTES)),
        )
        .route(
            &format!("{OIDC_PREFIX}/protocol/openid-connect/userinfo"),
            get(userinfo)
                .post(userinfo)
                .layer(DefaultBodyLimit::max(MAX_FORM_BYTES)),
        )
        .with_state(endpoints)
}

fn json(status: u16, body: String) -> Response {
    let mut r = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response();
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json(
        status.as_u16(),
        serde_json::json!({ "error": error, "error_description": description }).to_string(),
    )
}

async fn body_of(req: Request) -> Result<(HeaderMap, Bytes), Response> {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
        Ok(b) => Ok((parts.headers, b)),
        Err(_) => Err(oauth_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "request body larger than 16 KiB",
        )),
    }
}

fn form(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

/// A client endpoint's form and Authorization header, or the refusal.
async fn client_form(req: Request) -> Result<(Vec<(String, String)>, Option<String>), Response> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !is_media_type(content_type, "application/x-www-form-urlencoded") {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "expected Content-Type: application/x-www-form-urlencoded",
        ));
    }
    let (headers, body) = body_of(req).await?;
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((form(&body), authorization))
}

async fn sign_open(State(e): State<Arc<dyn OidcEndpoints>>, req: Request) -> Response {
    let (params, authorization) = match client_form(req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match tokio::task::spawn_blocking(move || e.sign_open(&params, authorization.as_deref())).await {
        Ok((status, body)) => json(status, body),
        Err(_) => oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the sign endpoint failed",
        ),
    }
}

async fn sign_result(State(e): State<Arc<dyn OidcEndpoints>>, req: Request) -> Response {
    let (params, authorization) = match client_form(req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match tokio::task::spawn_blocking(move || e.sign_result(&params, authorization.as_deref())).await {
        Ok((status, body)) => json(status, body),
        Err(_) => oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the sign endpoint failed",
        ),
    }
}

async fn sign_page(
    State(e): State<Arc<dyn OidcEndpoints>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    step(e, move |e| e.sign_page(&id)).await
}

async fn sign_card(State(e): State<Arc<dyn OidcEndpoints>>, req: Request) -> Response {
    match form_body(req).await {
        Ok(params) => step(e, move |e| e.sign_card(&params)).await,
        Err(r) => r,
    }
}

async fn token(State(e): State<Arc<dyn OidcEndpoints>>, req: Request) -> Response {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !is_media_type(content_type, "application/x-www-form-urlencoded") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "expected Content-Type: application/x-www-form-urlencoded",
        );
    }
    let (headers, body) = match body_of(req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let basic = authorization
        .as_deref()
        .is_some_and(|a| a.len() > 6 && a[..6].eq_ignore_ascii_case("basic "));
    let params = form(&body);
    let (status, body) =
        match tokio::task::spawn_blocking(move || e.token(&params, authorization.as_deref())).await {
            Ok(answer) => answer,
            Err(_) => {
                return oauth_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "the token endpoint failed",
                );
            }
        };
    let mut r = json(status, body);
    // RFC 6749 §5.2: a client that tried Basic and failed is challenged for it.
    if status == 401 && basic {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"openjpki\""),
        );
    }
    r
}

async fn userinfo(State(e): State<Arc<dyn OidcEndpoints>>, req: Request) -> Response {
    let from_header = crate::ocsp::bearer(req.headers()).map(str::to_owned);
    let is_form = is_media_type(
        req.headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        "application/x-www-form-urlencoded",
    );
    let (_, body) = match body_of(req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    // RFC 6750 §2.2: the token may come in a form body instead (never in both places).
    let from_body = if is_form {
        form(&body)
            .into_iter()
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v)
    } else {
        None
    };
    let token = match (from_header, from_body) {
        (Some(_), Some(_)) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the access token was sent twice",
            );
        }
        (a, b) => a.or(b),
    };
    let sent = token.is_some();
    let (status, body) = match tokio::task::spawn_blocking(move || e.userinfo(token.as_deref())).await {
        Ok(answer) => answer,
        Err(_) => {
            return oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "userinfo failed",
            );
        }
    };
    let mut r = json(status, body);
    if status == 401 {
        // RFC 6750 §3: no token at all gets the bare challenge.
        let challenge = if sent {
            "Bearer error=\"invalid_token\""
        } else {
            "Bearer"
        };
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    }
    r
}

/// Runs a login step off the async threads (it may read the registry and verify signatures).
async fn step(
    e: Arc<dyn OidcEndpoints>,
    f: impl FnOnce(&dyn OidcEndpoints) -> LoginStep + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(move || f(e.as_ref())).await {
        Ok(s) => render(s),
        Err(_) => pages::refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the login failed inside the server",
        ),
    }
}

async fn authorize_get(State(e): State<Arc<dyn OidcEndpoints>>, req: Request) -> Response {
    let params = form(req.uri().query().unwrap_or("").as_bytes());
    step(e, move |e| e.authorize(&params)).await
}

/// A form body, or a refusal page when it is not one.
async fn form_body(req: Request) -> Result<Vec<(String, String)>, Response> {
    let is_form = is_media_type(
        req.headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        "application/x-www-form-urlencoded",
    );
    if !is_form {
        return Err(pages::refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected a form (application/x-www-form-urlencoded)",
        ));
    }
    match axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES).await {
        Ok(b) => Ok(form(&b)),
        Err(_) => Err(pages::refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the form is larger than 16 KiB",
        )),
    }
}

async fn authorize_post(State(e): State<Arc<dyn OidcEndpoints>>, req: Request) -> Response {
    match form_body(req).await {
        Ok(params) => step(e, move |e| e.authorize(&params)).await,
        Err(r) => r,
    }
}

async fn card(State(e): State<Arc<dyn OidcEndpoints>>, req: Request) -> Response {
    match form_body(req).await {
        Ok(params) => step(e, move |e| e.card(&params)).await,
        Err(r) => r,
    }
}

async fn consent(State(e): State<Arc<dyn OidcEndpoints>>, req: Request) -> Response {
    match form_body(req).await {
        Ok(params) => step(e, move |e| e.consent(&params)).await,
        Err(r) => r,
    }
}

fn render(step: LoginStep) -> Response {
    match step {
        LoginStep::Redirect(to) => match HeaderValue::from_str(&to) {
            Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
            Err(_) => pages::refusal(StatusCode::BAD_REQUEST, "the redirect URI cannot be sent"),
        },
        LoginStep::Refused { status, message } => pages::refusal(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            &message,
        ),
        LoginStep::Card(p) => card_page(&p),
        LoginStep::Consent(p) => consent_page(&p),
        LoginStep::Sign(p) => sign_prompt_page(&p),
        LoginStep::RefusedBack {
            status,
            message,
            back,
        } => {
            let body = format!(
                "<div class=\"box error\" role=\"alert\"><p>{}</p></div><p><a href=\"{}\" autofocus>{}</a></p>",
                pages::escape(&message),
                pages::escape(&back),
                pages::ja_en("サービスに戻る", "Return to the service")
            );
            pages::html(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                pages::document("ログインできません", "Cannot log in", &body),
                "'none'",
                None,
            )
        }
        LoginStep::Done { message, to } => {
            let body = format!(
                "<div class=\"box\" role=\"status\"><p>{}</p></div><p><a href=\"{}\" autofocus>{}</a></p>",
                pages::escape(&message),
                pages::escape(&to),
                pages::ja_en("サービスに戻る", "Return to the service")
            );
            pages::html(
                StatusCode::OK,
                pages::document("完了", "Done", &body),
                "'none'",
                None,
            )
        }
    }
}

fn sign_prompt_page(p: &SignPrompt) -> Response {
    let agent = p.agent.trim_end_matches('/');
    let digest_hex = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &p.digest)
        .map(|d| d.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .unwrap_or_default();
    let body = format!(
        "<p>{asks}</p><dl class=\"box\"><dt>{what_label}</dt><dd>{what}</dd><dt>SHA-256</dt><dd><code>{digest_hex}</code></dd></dl>\
         <div class=\"box\"><p>{how}</p>\
         <form method=\"post\" action=\"{action}\">{tx}{challenge}{ret}{client}{description}{mode}\
         <button type=\"submit\" autofocus>{go}</button></form></div>\
         <form method=\"post\" action=\"{cancel_action}\">{tx}<input type=\"hidden\" name=\"cancel\" value=\"1\">\
         <button type=\"submit\" class=\"secondary\">{cancel}</button></form>",
        asks = pages::ja_en(
            &format!("{} が、次の文書への電子署名を求めています。", p.client_name),
            &format!("{} asks you to sign this document electronically.", p.client_name),
        ),
        what_label = pages::ja_en("文書", "Document"),
        what = pages::escape(&p.description),
        how = pages::ja_en(
            "署名用電子証明書で署名します。次のページで署名用の暗証番号（英数字6〜16文字）を入力してください。",
            "Your signature certificate signs it. Enter its 6–16 character password on the next page.",
        ),
        action = pages::escape(&format!("{agent}/login")),
        tx = pages::hidden("tx", &p.tx),
        challenge = pages::hidden("challenge", &p.digest),
        ret = pages::hidden("return_to", &p.return_to),
        client = pages::hidden("client", &p.client_name),
        description = pages::hidden("description", &p.description),
        mode = pages::hidden("mode", "sign"),
        go = pages::ja_en("カードで署名する", "Sign with my card"),
        cancel_action = pages::escape(&format!("{OIDC_PREFIX}{SIGN_PATH}/card")),
        cancel = pages::ja_en("署名しない", "Do not sign"),
    );
    pages::origin_referrer(pages::html(
        StatusCode::OK,
        pages::document("電子署名", "Sign a document", &body),
        &format!("'self' {} {}", origin_only(agent), p.redirect_origin),
        None,
    ))
}

fn claim_list(scopes: &[String]) -> String {
    let mut items = String::new();
    for s in scopes {
        let (ja, en) = pages::scope_label(s);
        items.push_str(&format!("<li>{}</li>", pages::ja_en(ja, en)));
    }
    format!("<ul class=\"claims\">{items}</ul>")
}

fn card_page(p: &CardPrompt) -> Response {
    let agent = p.agent.trim_end_matches('/');
    let need = if p.personal {
        pages::ja_en(
            "利用者証明用電子証明書の暗証番号（数字4桁）と、署名用電子証明書の暗証番号（英数字6〜16文字）が必要です。",
            "You will need the 4-digit PIN of the authentication certificate and the 6–16 character password of the signature certificate.",
        )
    } else {
        pages::ja_en(
            "利用者証明用電子証明書の暗証番号（数字4桁）が必要です。",
            "You will need the 4-digit PIN of the authentication certificate.",
        )
    };
    let body = format!(
        "<p>{asks}</p>{claims}\
         <div class=\"box\"><p>{how}</p><p>{need}</p>\
         <form method=\"post\" action=\"{action}\">{tx}{challenge}{ret}{client}{scopes}{personal}\
         <button type=\"submit\" autofocus>{go}</button></form></div>\
         <form method=\"post\" action=\"{cancel_action}\">{tx}<input type=\"hidden\" name=\"decision\" value=\"deny\">\
         <button type=\"submit\" class=\"secondary\">{cancel}</button></form>\
         <p><small>{agent_note}</small></p>",
        asks = pages::ja_en(
            &format!(
                "{} が、マイナンバーカードによるログインと次の情報の提供を求めています。",
                p.client_name
            ),
            &format!(
                "{} asks you to log in with your My Number card and to receive:",
                p.client_name
            ),
        ),
        claims = claim_list(&p.scopes),
        how = pages::ja_en(
            "この端末のカードエージェントがカードを読み取ります。次のページで暗証番号を入力してください。",
            "The card agent on this device reads your card. Enter your PIN on the next page.",
        ),
        action = pages::escape(&format!("{agent}/login")),
        tx = pages::hidden("tx", &p.tx),
        challenge = pages::hidden("challenge", &p.challenge),
        ret = pages::hidden("return_to", &p.return_to),
        client = pages::hidden("client", &p.client_name),
        scopes = pages::hidden("scopes", &p.scopes.join(" ")),
        personal = pages::hidden("personal", if p.personal { "1" } else { "0" }),
        go = pages::ja_en("カードを読み取る", "Use my card"),
        cancel_action = pages::escape(&format!("{OIDC_PREFIX}{LOGIN_CONSENT_PATH}")),
        cancel = pages::ja_en("キャンセル", "Cancel"),
        agent_note = pages::ja_en(
            &format!(
                "カードエージェントは {agent} で待ち受けます（`jpki card agent --card FILE` または `--reader NAME`）。"
            ),
            &format!("The card agent listens on {agent} (`jpki card agent --card FILE` or `--reader NAME`)."),
        ),
    );
    let form_action = format!("'self' {} {}", origin_only(agent), p.redirect_origin);
    pages::origin_referrer(pages::html(
        StatusCode::OK,
        pages::document(
            "マイナンバーカードでログイン",
            "Log in with your My Number card",
            &body,
        ),
        &form_action,
        None,
    ))
}

fn consent_page(p: &ConsentPrompt) -> Response {
    let mut rows = String::new();
    for (scope, value) in &p.claims {
        let (ja, en) = pages::scope_label(scope);
        rows.push_str(&format!(
            "<dt>{}</dt><dd>{}</dd>",
            pages::ja_en(ja, en),
            pages::escape(value)
        ));
    }
    let body = format!(
        "<p>{intro}</p><dl class=\"box\">{rows}</dl>\
         <form method=\"post\" action=\"{action}\">{tx}\
         <button type=\"submit\" name=\"decision\" value=\"approve\" autofocus>{approve}</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">{deny}</button></form>",
        intro = pages::ja_en(
            &format!("{} に次の情報を提供します。よろしいですか。", p.client_name),
            &format!("{} will receive exactly this. Do you agree?", p.client_name),
        ),
        action = pages::escape(&format!("{OIDC_PREFIX}{LOGIN_CONSENT_PATH}")),
        tx = pages::hidden("tx", &p.tx),
        approve = pages::ja_en("同意する", "Agree"),
        deny = pages::ja_en("同意しない", "Decline"),
    );
    pages::html(
        StatusCode::OK,
        pages::document("情報提供の同意", "Consent", &body),
        &format!("'self' {}", origin_only(&p.redirect_origin)),
        None,
    )
}

/// `scheme://host[:port]` of a URL (for Content-Security-Policy source lists).
pub(crate) fn origin_only(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            // Only what a host and port are made of: nothing that could end the policy's source
            // list or hide another host (userinfo).
            let plain = !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
            let scheme = scheme.to_ascii_lowercase();
            if plain && (scheme == "http" || scheme == "https") {
                format!("{scheme}://{}", host.to_ascii_lowercase())
            } else {
                "'none'".into()
            }
        }
        None => "'none'".into(),
    }
}
