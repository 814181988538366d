//! Server-rendered HTML for people (the login pages, the card agent's pages): Japanese with
//! English, one self-contained document each (styles inline, no external resources, no
//! JavaScript needed), readable on a phone-width screen, usable with the keyboard alone.
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// `text` with the characters HTML gives meaning to escaped (for text and attribute values).
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
:root{color-scheme:light dark;--accent:#0b57d0;--line:#8884}
*{box-sizing:border-box}
body{font-family:system-ui,'Hiragino Sans','Noto Sans CJK JP',sans-serif;line-height:1.6;margin:0;padding:1rem;max-width:42rem;margin-inline:auto}
h1{font-size:1.4rem;margin:.5rem 0 1rem}
h2{font-size:1.1rem;margin-top:1.5rem}
.en{display:block;font-size:.85em;opacity:.75}
ul.claims{padding-left:1.2rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}
dt{font-weight:600}
dd{margin:0;overflow-wrap:anywhere}
label{display:block;margin:.75rem 0 .25rem;font-weight:600}
input[type=password],input[type=text]{font-size:1.1rem;padding:.5rem;width:100%;max-width:20rem;border:1px solid var(--line);border-radius:.4rem}
button{font-size:1rem;padding:.6rem 1.2rem;margin:.75rem .5rem 0 0;border-radius:.4rem;border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer}
button.secondary{background:transparent;color:inherit;border-color:var(--line)}
:focus-visible{outline:3px solid #f29900;outline-offset:2px}
.box{border:1px solid var(--line);border-radius:.5rem;padding:.75rem 1rem;margin:1rem 0}
.error{border-color:#d93025}
.origin{font-family:ui-monospace,monospace;font-weight:600}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
nav{display:flex;flex-wrap:wrap;gap:.25rem 1rem;margin-bottom:.5rem}
nav a span{font-size:.8em;opacity:.75}
.ok{color:#188038;font-weight:600}
.bad{color:#d93025;font-weight:600}
.scroll{overflow-x:auto}
td form{margin:0}td button{margin:0}
@media (max-width:30rem){dl{grid-template-columns:1fr}}
@media (max-width:40rem){table,tbody,tr,td{display:block}thead{display:none}tr{border:1px solid var(--line);border-radius:.5rem;margin:.5rem 0;padding:.25rem .5rem}td{border:0;padding:.2rem 0;overflow-wrap:anywhere}td::before{content:attr(data-label);display:block;font-size:.8em;font-weight:600;opacity:.75}}
";

/// Bilingual text: Japanese first, English below it.
pub(crate) fn ja_en(ja: &str, en: &str) -> String {
    format!(
        "{}<span class=\"en\" lang=\"en\">{}</span>",
        escape(ja),
        escape(en)
    )
}

/// A whole document: `title` (Japanese / English) and `body` (already HTML).
pub(crate) fn document(title_ja: &str, title_en: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"ja\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{} / {}</title><style>{STYLE}</style></head>\
         <body><main><h1>{}</h1>{body}</main></body></html>\n",
        escape(title_ja),
        escape(title_en),
        ja_en(title_ja, title_en),
    )
}

/// A hidden form field.
pub(crate) fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        escape(name),
        escape(value)
    )
}

/// The headers every page carries: no framing (clickjacking), no scripts but the inline
/// auto-submit some pages allow with `script_hash`, forms only to `form_action`.
pub(crate) fn html(
    status: StatusCode,
    body: String,
    form_action: &str,
    script_hash: Option<&str>,
) -> Response {
    let scripts = script_hash.map_or_else(|| "'none'".to_owned(), |h| format!("'sha256-{h}'"));
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; script-src {scripts}; \
         form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    let mut r = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body,
    )
        .into_response();
    // A policy that cannot be sent as a header (it never should: origins are checked) fails
    // closed.
    let v = HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static(
        "default-src 'none'; form-action 'none'; frame-ancestors 'none'",
    ));
    r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    r.headers_mut()
        .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r.headers_mut()
        .insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    r
}

/// `page` with `Referrer-Policy: origin`: for pages whose forms post to the card agent, which
/// checks that the `Origin` of the request is the origin it will sign for (a browser sends
/// `Origin: null` under `no-referrer`).
pub(crate) fn origin_referrer(mut page: Response) -> Response {
    page.headers_mut()
        .insert("referrer-policy", HeaderValue::from_static("origin"));
    page
}

/// A page saying what went wrong, and nothing else.
pub(crate) fn refusal(status: StatusCode, message: &str) -> Response {
    let body = document(
        "ログインできません",
        "Cannot log in",
        &format!(
            "<div class=\"box error\" role=\"alert\"><p>{}</p></div>",
            escape(message)
        ),
    );
    html(status, body, "'none'", None)
}

/// The one inline script pages may run: submit the first form at once (the button does the same
/// without JavaScript).
pub(crate) const AUTO_SUBMIT: &str = "document.forms[0].submit()";

/// base64 of the SHA-256 of [`AUTO_SUBMIT`], for the Content-Security-Policy.
pub(crate) fn auto_submit_hash() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, AUTO_SUBMIT.as_bytes()).as_ref())
}

/// The label of a scope on consent pages.
pub(crate) fn scope_label(scope: &str) -> (&'static str, &'static str) {
    match scope {
        "openid" => (
            "このサービス専用の利用者識別子",
            "An identifier for you at this service only",
        ),
        "name" => ("氏名", "Name"),
        "address" => ("住所", "Address"),
        "birthdate" => ("生年月日", "Date of birth"),
        "gender" => ("性別", "Sex"),
        "sign" => ("電子署名", "Electronic signature"),
        _ => ("(不明な項目)", "(unknown item)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert!(document("題", "Title", "<p>x</p>").contains("<html lang=\"ja\">"));
    }
}
