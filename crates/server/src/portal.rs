//! マイナポータル, server-rendered: a person logs in with the card (through their card agent, as
//! for OpenID Connect) and sees their four facts, certificates, access records, consents, notices
//! and post box. What the pages hold comes from a [`Portal`] the caller hands in; this module does
//! HTTP and HTML: the session cookie (HttpOnly, SameSite=Lax, `Path=/portal`), a per-session token
//! on every form that changes something, and the pages (Japanese with English, no JavaScript,
//! phone-width, keyboard-usable).
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::oidc::origin_only;
use crate::pages::{self, escape, ja_en};
use crate::tsa::is_media_type;

/// Where the portal lives.
pub const PORTAL_PATH: &str = "/portal";
/// The session cookie's name.
const COOKIE: &str = "jpki_portal";
/// The cookie that binds a login to the browser that started it (against login CSRF).
const LOGIN_COOKIE: &str = "jpki_portal_login";
/// The largest form the portal reads.
const MAX_FORM: usize = 16 * 1024;

/// Bilingual text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text {
    /// Japanese.
    pub ja: String,
    /// English.
    pub en: String,
}

impl Text {
    /// Japanese and English.
    pub fn new(ja: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            ja: ja.into(),
            en: en.into(),
        }
    }

    fn html(&self) -> String {
        if self.en.is_empty() || self.en == self.ja {
            escape(&self.ja)
        } else {
            ja_en(&self.ja, &self.en)
        }
    }
}

/// A table cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// Plain text.
    Plain(String),
    /// A verdict: good (✓) or not (✗), with its words.
    Verdict {
        /// Whether it is good.
        good: bool,
        /// What it says.
        text: Text,
    },
    /// A button that performs `action` on `id` (e.g. revoke a consent).
    Action {
        /// The action's name (the form posts to `/portal/act/{action}`).
        action: String,
        /// What it acts on.
        id: String,
        /// The button's label.
        label: Text,
    },
}

/// What a section shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// Label–value pairs.
    Facts(Vec<(Text, String)>),
    /// A table: headers and rows.
    Table {
        /// Column headers.
        headers: Vec<Text>,
        /// Rows of cells.
        rows: Vec<Vec<Cell>>,
        /// What an empty table says.
        empty: Text,
    },
    /// A paragraph.
    Paragraph(Text),
    /// A message that stands out (good or not).
    Notice {
        /// Whether it is good news.
        good: bool,
        /// What it says.
        text: Text,
    },
}

/// A titled part of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Its heading.
    pub title: Text,
    /// Its contents.
    pub blocks: Vec<Block>,
}

/// One portal page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalPage {
    /// The page title.
    pub title: Text,
    /// Who is logged in (shown in the header).
    pub who: String,
    /// The sections.
    pub sections: Vec<Section>,
    /// The session's form token.
    pub csrf: String,
}

/// The pages behind `/portal`. Methods may block (registry reads, signature validation).
pub trait Portal: Send + Sync + 'static {
    /// A new card login bound to the browser holding `binding` (a random value in a cookie):
    /// (login id, challenge, where the agent sends the answer, the agent's URL).
    fn begin_login(&self, binding: &str) -> Result<(String, String, String, String), String>;
    /// The card agent's answer (the form it posted) and the browser's binding cookie: a new
    /// session's token, or why not (a login another browser started is refused).
    fn finish_login(&self, form: &[(String, String)], binding: Option<&str>) -> Result<String, String>;
    /// Page `name` ("" for the start page, "records", "consents", "notices", "postbox") for the
    /// session `session`; `None` when the session is unknown or expired.
    fn page(&self, session: &str, name: &str) -> Option<Result<PortalPage, String>>;
    /// Performs `action` for the session (its form token already checked); the message to show.
    fn act(&self, session: &str, action: &str, id: &str) -> Result<Text, String>;
    /// The session's form token, if the session is live.
    fn csrf(&self, session: &str) -> Option<String>;
    /// Ends the session.
    fn logout(&self, session: &str);
    /// Whether the session cookie needs `Secure` (the portal is reached over https).
    fn secure_cookie(&self) -> bool;
}

pub(crate) fn routes(portal: Arc<dyn Portal>) -> Router {
    Router::new()
        .route(PORTAL_PATH, get(start))
        .route(
            &format!("{PORTAL_PATH}/login/card"),
            post(login_card).layer(DefaultBodyLimit::max(MAX_FORM)),
        )
        .route(
            &format!("{PORTAL_PATH}/logout"),
            post(logout).layer(DefaultBodyLimit::max(MAX_FORM)),
        )
        .route(
            &format!("{PORTAL_PATH}/act/{{action}}"),
            post(act).layer(DefaultBodyLimit::max(MAX_FORM)),
        )
        .route(&format!("{PORTAL_PATH}/{{page}}"), get(named))
        .with_state(portal)
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn session_of(headers: &HeaderMap) -> Option<String> {
    cookie(headers, COOKIE)
}

fn random_token() -> Option<String> {
    use base64::Engine as _;
    let mut b = [0u8; 32];
    aws_lc_rs::rand::fill(&mut b).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

async fn start(State(p): State<Arc<dyn Portal>>, req: Request) -> Response {
    show(p, session_of(req.headers()), String::new()).await
}

async fn named(State(p): State<Arc<dyn Portal>>, UrlPath(page): UrlPath<String>, req: Request) -> Response {
    if !matches!(page.as_str(), "records" | "consents" | "notices" | "postbox") {
        return pages::refusal(StatusCode::NOT_FOUND, "no such page");
    }
    show(p, session_of(req.headers()), page).await
}

async fn show(p: Arc<dyn Portal>, session: Option<String>, name: String) -> Response {
    let Some(session) = session else {
        return login_page(p).await;
    };
    let portal = Arc::clone(&p);
    match blocking(move || portal.page(&session, &name)).await {
        Some(Some(Ok(page))) => render(&page),
        Some(Some(Err(why))) => pages::refusal(StatusCode::SERVICE_UNAVAILABLE, &why),
        Some(None) => login_page(p).await,
        None => pages::refusal(StatusCode::INTERNAL_SERVER_ERROR, "the portal failed"),
    }
}

async fn login_page(p: Arc<dyn Portal>) -> Response {
    let Some(binding) = random_token() else {
        return pages::refusal(StatusCode::SERVICE_UNAVAILABLE, "no randomness");
    };
    // The card's answer arrives by a post from the agent's page: over https that is cross-site,
    // and only a SameSite=None cookie (which must be Secure) comes along.
    let attributes = if p.secure_cookie() {
        "SameSite=None; Secure"
    } else {
        "SameSite=Lax"
    };
    let set_binding = HeaderValue::from_str(&format!(
        "{LOGIN_COOKIE}={binding}; Path={PORTAL_PATH}; HttpOnly; Max-Age=600; {attributes}"
    ));
    let b = binding.clone();
    let begun = blocking(move || p.begin_login(&b)).await;
    let Some(Ok((tx, challenge, return_to, agent))) = begun else {
        return pages::refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "the portal cannot start a login now",
        );
    };
    let body = format!(
        "<p>{intro}</p><div class=\"box\"><p>{how}</p>\
         <form method=\"post\" action=\"{action}\">{tx}{challenge}{ret}{client}{scopes}{personal}\
         <button type=\"submit\" autofocus>{go}</button></form></div><p><small>{note}</small></p>",
        intro = ja_en(
            "マイナポータルでは、あなたの情報、電子証明書、利用履歴、お知らせ、受け取った文書を確認できます。",
            "マイナポータル shows your information, certificates, who checked them, notices and documents sent to you."
        ),
        how = ja_en(
            "マイナンバーカードでログインします（利用者証明用電子証明書の暗証番号 数字4桁）。",
            "Log in with your My Number card (the 4-digit PIN of the authentication certificate)."
        ),
        action = escape(&format!("{}/login", agent.trim_end_matches('/'))),
        tx = pages::hidden("tx", &tx),
        challenge = pages::hidden("challenge", &challenge),
        ret = pages::hidden("return_to", &return_to),
        client = pages::hidden("client", "マイナポータル"),
        scopes = pages::hidden("scopes", "openid"),
        personal = pages::hidden("personal", "0"),
        go = ja_en("カードでログイン", "Log in with my card"),
        note = ja_en(
            &format!("カードエージェント（`jpki card agent`）が {agent} で待ち受けている必要があります。"),
            &format!("Your card agent (`jpki card agent`) must be listening on {agent}."),
        ),
    );
    let mut page = pages::origin_referrer(pages::html(
        StatusCode::OK,
        pages::document("マイナポータル", "My portal", &body),
        &format!("'self' {}", origin_only(&agent)),
        None,
    ));
    if let Ok(v) = set_binding {
        page.headers_mut().insert(header::SET_COOKIE, v);
    }
    page
}

async fn form_body(req: Request) -> Result<(HeaderMap, Vec<(String, String)>), Response> {
    let (parts, body) = req.into_parts();
    if !is_media_type(
        parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        "application/x-www-form-urlencoded",
    ) {
        return Err(pages::refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected a form (application/x-www-form-urlencoded)",
        ));
    }
    match axum::body::to_bytes(body, MAX_FORM).await {
        Ok(b) => Ok((parts.headers, form_urlencoded::parse(&b).into_owned().collect())),
        Err(_) => Err(pages::refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the form is larger than 16 KiB",
        )),
    }
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn see_other(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/portal")),
        )],
    )
        .into_response()
}

async fn login_card(State(p): State<Arc<dyn Portal>>, req: Request) -> Response {
    let (headers, form) = match form_body(req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let binding = cookie(&headers, LOGIN_COOKIE);
    let portal = Arc::clone(&p);
    match blocking(move || portal.finish_login(&form, binding.as_deref())).await {
        Some(Ok(token)) => {
            let secure = if p.secure_cookie() { "; Secure" } else { "" };
            let mut r = see_other(PORTAL_PATH);
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{COOKIE}={token}; Path={PORTAL_PATH}; HttpOnly; SameSite=Lax{secure}"
            )) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Some(Err(why)) => pages::refusal(StatusCode::UNPROCESSABLE_ENTITY, &why),
        None => pages::refusal(StatusCode::INTERNAL_SERVER_ERROR, "the portal failed"),
    }
}

/// The session of a form that changes something, when its token matches the session's.
fn checked_session(p: &dyn Portal, headers: &HeaderMap, form: &[(String, String)]) -> Option<String> {
    let session = session_of(headers)?;
    let expected = p.csrf(&session)?;
    let given = field(form, "csrf")?;
    subtle_eq::eq(expected.as_bytes(), given.as_bytes()).then_some(session)
}

/// Constant-time comparison (the form token is a secret).
mod subtle_eq {
    pub(super) fn eq(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

async fn logout(State(p): State<Arc<dyn Portal>>, req: Request) -> Response {
    let (headers, form) = match form_body(req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Some(session) = checked_session(p.as_ref(), &headers, &form) {
        let portal = Arc::clone(&p);
        let _ = blocking(move || portal.logout(&session)).await;
    }
    let mut r = see_other(PORTAL_PATH);
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("jpki_portal=; Path=/portal; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    r
}

async fn act(State(p): State<Arc<dyn Portal>>, UrlPath(action): UrlPath<String>, req: Request) -> Response {
    let (headers, form) = match form_body(req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(session) = checked_session(p.as_ref(), &headers, &form) else {
        return pages::refusal(
            StatusCode::FORBIDDEN,
            "this form has expired: open the page again",
        );
    };
    let id = field(&form, "id").unwrap_or("").to_owned();
    let back = field(&form, "back")
        .filter(|b| matches!(*b, "consents" | "records" | "notices" | "postbox" | ""))
        .unwrap_or("")
        .to_owned();
    let portal = Arc::clone(&p);
    let (s2, a2) = (session.clone(), action.clone());
    let outcome = blocking(move || portal.act(&s2, &a2, &id)).await;
    let portal = Arc::clone(&p);
    let page = blocking(move || portal.page(&session, &back)).await;
    match (outcome, page) {
        (Some(outcome), Some(Some(Ok(mut page)))) => {
            let block = match outcome {
                Ok(text) => Block::Notice { good: true, text },
                Err(why) => Block::Notice {
                    good: false,
                    text: Text::new(why.clone(), why),
                },
            };
            page.sections.insert(
                0,
                Section {
                    title: Text::new("結果", "Result"),
                    blocks: vec![block],
                },
            );
            render(&page)
        }
        _ => pages::refusal(StatusCode::INTERNAL_SERVER_ERROR, "the portal failed"),
    }
}

fn render_cell(cell: &Cell, csrf: &str) -> String {
    match cell {
        Cell::Plain(t) => escape(t),
        Cell::Verdict { good, text } => format!(
            "<span class=\"{}\">{} {}</span>",
            if *good { "ok" } else { "bad" },
            if *good { "✓" } else { "✗" },
            text.html()
        ),
        Cell::Action { action, id, label } => format!(
            "<form method=\"post\" action=\"{PORTAL_PATH}/act/{}\">{}{}{}<button type=\"submit\" class=\"secondary\">{}</button></form>",
            escape(action),
            pages::hidden("csrf", csrf),
            pages::hidden("id", id),
            pages::hidden("back", "consents"),
            label.html()
        ),
    }
}

fn render_block(block: &Block, csrf: &str) -> String {
    match block {
        Block::Facts(pairs) => {
            let mut s = String::from("<dl class=\"box\">");
            for (label, value) in pairs {
                s.push_str(&format!("<dt>{}</dt><dd>{}</dd>", label.html(), escape(value)));
            }
            s.push_str("</dl>");
            s
        }
        Block::Table { headers, rows, empty } => {
            if rows.is_empty() {
                return format!("<p>{}</p>", empty.html());
            }
            let mut s = String::from("<div class=\"scroll\"><table><thead><tr>");
            for h in headers {
                s.push_str(&format!("<th scope=\"col\">{}</th>", h.html()));
            }
            s.push_str("</tr></thead><tbody>");
            for row in rows {
                s.push_str("<tr>");
                for (i, cell) in row.iter().enumerate() {
                    // On a narrow screen each row becomes a card, each cell labelled by its column.
                    let label = headers
                        .get(i)
                        .map_or_else(String::new, |h| format!("{} / {}", h.ja, h.en));
                    s.push_str(&format!(
                        "<td data-label=\"{}\">{}</td>",
                        escape(&label),
                        render_cell(cell, csrf)
                    ));
                }
                s.push_str("</tr>");
            }
            s.push_str("</tbody></table></div>");
            s
        }
        Block::Paragraph(t) => format!("<p>{}</p>", t.html()),
        Block::Notice { good, text } => format!(
            "<div class=\"box{}\" role=\"{}\"><p>{}</p></div>",
            if *good { "" } else { " error" },
            if *good { "status" } else { "alert" },
            text.html()
        ),
    }
}

fn render(page: &PortalPage) -> Response {
    let nav = [
        ("", "トップ", "Home"),
        ("/records", "利用履歴", "Access records"),
        ("/consents", "同意", "Consents"),
        ("/notices", "お知らせ", "Notices"),
        ("/postbox", "受信文書", "Post box"),
    ]
    .iter()
    .map(|(path, ja, en)| format!("<a href=\"{PORTAL_PATH}{path}\">{ja} <span lang=\"en\">{en}</span></a>"))
    .collect::<String>();
    let mut body = format!(
        "<nav aria-label=\"マイナポータル\">{nav}</nav><p>{who}</p>",
        who = ja_en(
            &format!("ログイン中: {}", page.who),
            &format!("Logged in: {}", page.who)
        ),
    );
    for s in &page.sections {
        body.push_str(&format!("<section><h2>{}</h2>", s.title.html()));
        for b in &s.blocks {
            body.push_str(&render_block(b, &page.csrf));
        }
        body.push_str("</section>");
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"{PORTAL_PATH}/logout\">{}<button type=\"submit\" class=\"secondary\">{}</button></form>",
        pages::hidden("csrf", &page.csrf),
        ja_en("ログアウト", "Log out")
    ));
    pages::html(
        StatusCode::OK,
        pages::document(
            &format!("マイナポータル — {}", page.title.ja),
            &format!("My portal — {}", page.title.en),
            &body,
        ),
        "'self'",
        None,
    )
}
