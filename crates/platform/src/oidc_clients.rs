//! Relying parties' OpenID Connect client registrations (`jpki rp add --allow oidc …`): their
//! redirect URIs, how they authenticate at the token endpoint (their public keys for
//! private_key_jwt, inline or by URL; else a client secret made for development, stored as its
//! SHA-256) and the algorithm of their ID tokens. The client_id is the relying party's id.
use jpki_db::{Db, params};
use time::OffsetDateTime;

use crate::PlatformError;
use crate::rp::{ApiKey, Capability, Registry, random_hex};

/// 5: OpenID Connect clients.
pub(crate) const SCHEMA_V5: &str = "
CREATE TABLE oidc_clients (
    rp_id         TEXT    PRIMARY KEY REFERENCES relying_parties (id),
    redirect_uris TEXT    NOT NULL,
    jwks          TEXT,
    jwks_uri      TEXT,
    secret_hash   BLOB,
    id_token_alg  TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);
";

/// The same on PostgreSQL.
pub(crate) const PG_V5: &str = "
CREATE TABLE oidc_clients (
    rp_id         TEXT   PRIMARY KEY REFERENCES relying_parties (id),
    redirect_uris TEXT   NOT NULL,
    jwks          TEXT,
    jwks_uri      TEXT,
    secret_hash   BYTEA,
    id_token_alg  TEXT   NOT NULL,
    created_at    BIGINT NOT NULL
);
";

/// An OpenID Connect client to register with a relying party.
#[derive(Debug, Clone, Default)]
pub struct NewOidcClient {
    /// Where the person's browser is sent back (exact match; https, or http on a loopback host).
    pub redirect_uris: Vec<String>,
    /// The client's public keys (a JWKS document, already checked by the caller).
    pub jwks: Option<String>,
    /// Where the client publishes its public keys (https).
    pub jwks_uri: Option<String>,
    /// "RS256" (the default) or "ES256".
    pub id_token_alg: String,
}

/// A registered OpenID Connect client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcClient {
    /// client_id: the relying party's id.
    pub client_id: String,
    /// The relying party's name.
    pub name: String,
    /// Its redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Its JWKS document, if registered inline.
    pub jwks: Option<String>,
    /// Its JWKS URL, if registered so.
    pub jwks_uri: Option<String>,
    /// SHA-256 of its client secret (development clients without keys).
    pub secret_sha256: Option<[u8; 32]>,
    /// The algorithm of its ID tokens.
    pub id_token_alg: String,
}

/// Whether `host` (of a URL's authority) is a loopback host, where http is allowed (RFC 8252 §7.3).
fn loopback(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "[::1]" | "localhost")
}

/// A redirect URI as RFC 6749 §3.1.2 and the OAuth security BCP want it: absolute, no fragment,
/// https unless on a loopback host.
fn check_redirect_uri(uri: &str) -> Result<(), PlatformError> {
    let bad = |why: &str| PlatformError::Input(format!("--redirect-uri {uri:?}: {why}"));
    if uri.len() > 2000 || uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("at most 2000 characters, no spaces or control characters"));
    }
    if uri.contains('#') {
        return Err(bad("must not contain a fragment (#)"));
    }
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| bad("not an absolute URL"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        host_port.split_inclusive(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    match scheme {
        "https" => Ok(()),
        "http" if loopback(host) => Ok(()),
        "http" => Err(bad(
            "http only on a loopback host (127.0.0.1, [::1], localhost); use https",
        )),
        _ => Err(bad("only https (or http on a loopback host)")),
    }
}

impl NewOidcClient {
    pub(crate) fn check(&self) -> Result<(), PlatformError> {
        if self.redirect_uris.is_empty() {
            return Err(PlatformError::Input("--redirect-uri: at least one".into()));
        }
        for uri in &self.redirect_uris {
            check_redirect_uri(uri)?;
        }
        if self.jwks.is_some() && self.jwks_uri.is_some() {
            return Err(PlatformError::Input(
                "--jwks and --jwks-uri: one or the other".into(),
            ));
        }
        if let Some(uri) = &self.jwks_uri
            && !uri.starts_with("https://")
            && !uri
                .strip_prefix("http://")
                .is_some_and(|r| loopback(r.split(['/', ':']).next().unwrap_or_default()))
        {
            return Err(PlatformError::Input(format!(
                "--jwks-uri {uri:?}: https (or http on a loopback host)"
            )));
        }
        if !matches!(self.id_token_alg.as_str(), "RS256" | "ES256") {
            return Err(PlatformError::Input(format!(
                "ID token algorithm {:?}: RS256 or ES256",
                self.id_token_alg
            )));
        }
        Ok(())
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref());
    out
}

/// Stores `client` for the relying party `rp_id` inside the registration's transaction; the
/// client secret, when the client registered no keys.
pub(crate) fn insert(
    tx: &Db,
    rp_id: &str,
    client: &NewOidcClient,
    now: OffsetDateTime,
) -> Result<Option<ApiKey>, PlatformError> {
    let secret = (client.jwks.is_none() && client.jwks_uri.is_none())
        .then(|| random_hex::<24>().map(|s| ApiKey::new(format!("jpki_cs_{s}"))))
        .transpose()?;
    tx.execute(
        "INSERT INTO oidc_clients (rp_id, redirect_uris, jwks, jwks_uri, secret_hash, id_token_alg, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            rp_id,
            client.redirect_uris.join("\n"),
            client.jwks.as_deref(),
            client.jwks_uri.as_deref(),
            secret.as_ref().map(|s| sha256(s.expose().as_bytes()).to_vec()),
            client.id_token_alg.as_str(),
            now.unix_timestamp()
        ],
    )?;
    Ok(secret)
}

/// An `oidc_clients` row: redirect URIs, JWKS, JWKS URL, secret hash, ID token algorithm.
type ClientRow = (String, Option<String>, Option<String>, Option<Vec<u8>>, String);

impl Registry {
    /// Registers a relying party with its OpenID Connect client (the capabilities must include
    /// oidc): the relying party, its API key, and the client secret made when it registered no
    /// keys (shown once; stored as its SHA-256).
    pub fn add_oidc(
        &mut self,
        rp: &crate::NewRelyingParty<'_>,
        client: &NewOidcClient,
        now: OffsetDateTime,
    ) -> Result<(crate::RelyingParty, ApiKey, Option<ApiKey>), PlatformError> {
        self.insert(rp, Some(client), now)
    }

    /// The OpenID Connect client `client_id`, if that relying party has one and may still log
    /// people in (the oidc capability).
    pub fn oidc_client(&self, client_id: &str) -> Result<Option<OidcClient>, PlatformError> {
        let row: Option<ClientRow> = self.db.query_opt(
            "SELECT redirect_uris, jwks, jwks_uri, secret_hash, id_token_alg FROM oidc_clients WHERE rp_id = ?1",
            params![client_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        let Some((uris, jwks, jwks_uri, secret, alg)) = row else {
            return Ok(None);
        };
        let rp = self.get(client_id)?;
        if !rp.may(Capability::Oidc) {
            return Ok(None);
        }
        let secret_sha256 = secret
            .map(|s| {
                <[u8; 32]>::try_from(s.as_slice())
                    .map_err(|_| PlatformError::Corrupt(format!("client secret hash of {client_id}")))
            })
            .transpose()?;
        Ok(Some(OidcClient {
            client_id: rp.id,
            name: rp.name,
            redirect_uris: uris.lines().map(str::to_owned).collect(),
            jwks,
            jwks_uri,
            secret_sha256,
            id_token_alg: alg,
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::NewRelyingParty;
    use crate::testing::each_engine;

    fn rp<'a>(caps: &str) -> NewRelyingParty<'a> {
        NewRelyingParty {
            name: "Bank",
            capabilities: caps.split(',').map(|c| c.parse().unwrap()).collect(),
            age_thresholds: Vec::new(),
            purpose: None,
        }
    }

    #[test]
    fn clients_register_with_keys_or_a_secret_and_nothing_half_written() {
        each_engine(|engine, dir| {
            let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
            let mut reg = Registry::open_at(&engine.fresh(dir, crate::rp::POSTGRES_SCHEMA)).unwrap();
            let keyed = NewOidcClient {
                redirect_uris: vec!["https://bank.example/cb".into(), "http://127.0.0.1:9/cb".into()],
                jwks: Some(r#"{"keys":[]}"#.into()),
                jwks_uri: None,
                id_token_alg: "ES256".into(),
            };
            let (bank, _, secret) = reg.add_oidc(&rp("oidc,auth-status"), &keyed, now).unwrap();
            assert!(secret.is_none(), "keys registered: no secret");
            let c = reg.oidc_client(&bank.id).unwrap().unwrap();
            assert_eq!(c.redirect_uris, keyed.redirect_uris);
            assert_eq!(
                (c.jwks.as_deref(), c.secret_sha256),
                (Some(r#"{"keys":[]}"#), None)
            );
            assert_eq!(c.id_token_alg, "ES256");
            // Without keys: a secret, stored as its hash only.
            let dev = NewOidcClient {
                jwks: None,
                id_token_alg: "RS256".into(),
                ..keyed.clone()
            };
            let (shop, _, secret) = reg.add_oidc(&rp("oidc"), &dev, now).unwrap();
            let secret = secret.unwrap();
            assert_eq!(
                reg.oidc_client(&shop.id).unwrap().unwrap().secret_sha256,
                Some(sha256(secret.expose().as_bytes()))
            );
            // Refusals leave nothing behind.
            let before = reg.list().unwrap().len();
            for (caps, client) in [
                (
                    "oidc",
                    NewOidcClient {
                        redirect_uris: vec![],
                        ..dev.clone()
                    },
                ),
                (
                    "oidc",
                    NewOidcClient {
                        redirect_uris: vec!["http://bank.example/cb".into()],
                        ..dev.clone()
                    },
                ),
                (
                    "oidc",
                    NewOidcClient {
                        jwks_uri: Some("https://x/jwks".into()),
                        ..keyed.clone()
                    },
                ),
                (
                    "oidc",
                    NewOidcClient {
                        id_token_alg: "HS256".into(),
                        ..dev.clone()
                    },
                ),
                ("auth-status", dev.clone()),
            ] {
                assert!(matches!(
                    reg.add_oidc(&rp(caps), &client, now),
                    Err(PlatformError::Input(_))
                ));
            }
            assert!(matches!(reg.add(&rp("oidc"), now), Err(PlatformError::Input(_))));
            assert_eq!(reg.list().unwrap().len(), before);
            assert_eq!(reg.oidc_client("rp-0000000000000000").unwrap(), None);
        });
    }

    #[test]
    fn redirect_uris_must_be_https_or_loopback_without_fragments() {
        for ok in [
            "https://bank.example/cb",
            "http://127.0.0.1:9000/callback",
            "http://localhost/cb?x=1",
            "http://[::1]:8080/cb",
        ] {
            check_redirect_uri(ok).unwrap();
        }
        for bad in [
            "http://bank.example/cb",
            "https://bank.example/cb#frag",
            "/relative",
            "javascript:alert(1)",
            "https:///nohost",
            "https://bank.example/c b",
            "http://127.0.0.1.evil.example/cb",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }
}
