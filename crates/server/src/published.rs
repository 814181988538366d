//! Published files over HTTP: CRLs at the URLs the certificates' distribution points name
//! (`/crl/sign.crl`, `/crl/sign/3.crl`, deltas, ARLs) and the CA certificates named in caIssuers
//! (`/ca/sign.cer`), served from the directory `jpki crl publish --out DIR` writes.
//!
//! CRLs are revocation information, protected like OCSP ([`RevocationAccess`]: a key, and the status
//! scope of the CA whose CRL it is, else 403); CA certificates are public. Caching: `ETag` (length and modification time) and `Last-Modified`, with `304 Not
//! Modified` for a matching `If-None-Match` or a not-older `If-Modified-Since`; `Cache-Control:
//! max-age=60`, `private` unless revocation is public. Only plain paths below `crl/` and `ca/` ending
//! in `.crl` / `.cer` are served; anything else is 404.
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::ocsp::RevocationAccess;
use crate::tsa::text;

/// The media type of a DER CRL (RFC 2585).
pub const PKIX_CRL: &str = "application/pkix-crl";
/// The media type of a DER certificate (RFC 2585).
pub const PKIX_CERT: &str = "application/pkix-cert";
/// The largest file served (a complete CRL of a million entries is about 40 MB).
pub const MAX_PUBLISHED_BYTES: u64 = 512 * 1024 * 1024;

#[derive(Clone)]
struct Published {
    dir: PathBuf,
    access: RevocationAccess,
}

/// `GET /crl/{*path}` and `GET /ca/{*path}` from `dir`.
pub(crate) fn routes(dir: PathBuf, access: RevocationAccess) -> Router {
    Router::new()
        .route("/crl/{*path}", get(get_crl))
        .route("/ca/{*path}", get(get_ca))
        .with_state(Published { dir, access })
}

/// Whether `rel` is a plain relative path (lowercase letters, digits, `-`, `_`, `.` in each
/// segment, no empty, `.` or `..` segment) ending in `suffix`.
fn plain(rel: &str, suffix: &str) -> bool {
    rel.ends_with(suffix)
        && rel.len() <= 200
        && rel.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
        })
}

async fn get_crl(
    State(p): State<Published>,
    headers: HeaderMap,
    client: Option<axum::Extension<crate::ocsp::ClientCertificate>>,
    UrlPath(rel): UrlPath<String>,
) -> Response {
    if !plain(&rel, ".crl") {
        return text(StatusCode::NOT_FOUND, "not found\n");
    }
    let mut served_to = None;
    let private = match &p.access {
        RevocationAccess::Public => false,
        RevocationAccess::Keys(keys) => {
            let caller = match crate::ocsp::identify(keys.as_ref(), &headers, client.as_ref().map(|c| &c.0)) {
                Ok(Some(caller)) => caller,
                Ok(None) => return crate::ocsp::unauthorized(),
                Err(crate::ocsp::KeysUnavailable) => return crate::ocsp::keys_unavailable(false),
            };
            // A CRL is the revocation information of one CA: the caller needs that CA's status
            // scope, as for OCSP (`crl/sign…` → sign-status, `crl/auth…` → auth-status).
            let ca = rel.split(['/', '-', '.']).next().unwrap_or_default();
            if !caller.may(&format!("{ca}-status")) {
                return text(
                    StatusCode::FORBIDDEN,
                    "this relying party may not read this CA's revocation information\n",
                );
            }
            served_to = Some((std::sync::Arc::clone(keys), caller));
            true
        }
    };
    let response = serve_file(&p.dir, "crl", &rel, ".crl", PKIX_CRL, private, &headers).await;
    if response.status() == StatusCode::OK
        && let Some((keys, caller)) = served_to
    {
        keys.served(&caller, &rel);
    }
    response
}

async fn get_ca(State(p): State<Published>, headers: HeaderMap, UrlPath(rel): UrlPath<String>) -> Response {
    serve_file(&p.dir, "ca", &rel, ".cer", PKIX_CERT, false, &headers).await
}

fn etag(len: u64, modified: SystemTime) -> String {
    let nanos = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("\"{len:x}-{nanos:x}\"")
}

async fn serve_file(
    dir: &Path,
    top: &str,
    rel: &str,
    suffix: &str,
    media_type: &'static str,
    private: bool,
    headers: &HeaderMap,
) -> Response {
    if !plain(rel, suffix) {
        return text(StatusCode::NOT_FOUND, "not found\n");
    }
    let path = dir.join(top).join(rel);
    let read = tokio::task::spawn_blocking(move || -> std::io::Result<Option<(Vec<u8>, SystemTime)>> {
        let meta = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() && m.len() <= MAX_PUBLISHED_BYTES => m,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let modified = meta.modified()?;
        Ok(Some((std::fs::read(&path)?, modified)))
    })
    .await;
    let (body, modified) = match read {
        Ok(Ok(Some(found))) => found,
        Ok(Ok(None)) => return text(StatusCode::NOT_FOUND, "not published\n"),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot read a published file");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot read the published file\n",
            );
        }
        Err(_) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot read the published file\n",
            );
        }
    };
    let tag = etag(body.len() as u64, modified);
    let last_modified = httpdate::fmt_http_date(modified);
    let not_modified = match headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        Some(inm) => inm.split(',').any(|t| t.trim() == tag || t.trim() == "*"),
        None => headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .is_some_and(|since| {
                // HTTP dates have whole seconds.
                let secs = |t: SystemTime| {
                    t.duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs())
                };
                secs(modified) <= secs(since)
            }),
    };
    let cache = if private {
        "private, max-age=60"
    } else {
        "public, max-age=60"
    };
    let mut head = [
        (header::ETAG, HeaderValue::from_str(&tag).ok()),
        (header::LAST_MODIFIED, HeaderValue::from_str(&last_modified).ok()),
        (header::CACHE_CONTROL, Some(HeaderValue::from_static(cache))),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect::<HeaderMap>();
    if not_modified {
        return (StatusCode::NOT_MODIFIED, head).into_response();
    }
    head.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    (StatusCode::OK, head, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_paths_are_served() {
        for ok in ["sign.crl", "sign/3.crl", "auth-delta.crl", "auth-arl.crl"] {
            assert!(plain(ok, ".crl"), "{ok}");
        }
        for bad in [
            "../x.crl",
            "sign/../../etc.crl",
            "/sign.crl",
            "sign//3.crl",
            "Sign.crl",
            "sign.cer",
            "a b.crl",
            ".crl/..",
            "%2e%2e/x.crl",
        ] {
            assert!(!plain(bad, ".crl"), "{bad}");
        }
    }
}
