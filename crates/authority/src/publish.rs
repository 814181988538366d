//! CRL publication: for each CA a complete CRL, one CRL per shard, a delta CRL against the last
//! published complete CRL (lifted holds appear there as removeFromCRL), the ARL, and the CA
//! certificate, written under the output directory at the paths the certificates name.
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use jpki_db::params;
use jpki_model::{CertKind, RevocationReason};
use jpki_pki::{CrlEntry, CrlScope, CrlSpec, Endpoints};
use serde::Serialize;
use time::Duration;

use crate::AuthorityError;
use crate::authority::{Authority, Issuers};
use crate::store::{from_ts, reason_from, serial_from_blob, ts, write_atomically};

/// One file written.
#[derive(Debug, Clone, Serialize)]
pub struct PublishedFile {
    /// Path relative to the output directory (= relative to the public URL).
    pub path: String,
    /// Number of entries (CRLs) or 0.
    pub entries: usize,
    /// Size in bytes.
    pub bytes: usize,
}

/// What one CA published.
#[derive(Debug, Clone, Serialize)]
pub struct PublishReport {
    /// Which CA.
    pub kind: CertKind,
    /// Which generation of it (1 until a key rollover).
    pub generation: u32,
    /// The cRLNumber every CRL of this run carries.
    pub crl_number: u64,
    /// The base of the delta CRL, if one was written.
    pub delta_base: Option<u64>,
    /// Files written.
    pub files: Vec<PublishedFile>,
}

impl Authority {
    /// When CRLs were last published (the older of the two CAs' newest publications), if ever.
    pub fn last_crl_publication(&self) -> Result<Option<time::OffsetDateTime>, AuthorityError> {
        let newest: Vec<Option<i64>> = [CertKind::Signature, CertKind::Authentication]
            .iter()
            .map(|k| {
                self.connection().query_row(
                    "SELECT MAX(published_at) FROM crl_publications WHERE kind = ?1",
                    params![k.as_str()],
                    |r| r.get::<Option<i64>>(0),
                )
            })
            .collect::<Result<_, _>>()?;
        match newest.into_iter().collect::<Option<Vec<i64>>>() {
            Some(times) => times.into_iter().min().map(from_ts).transpose(),
            None => Ok(None),
        }
    }

    /// Publishes every CRL of both CAs into `out`, calling `progress(done, total)` per file.
    pub fn publish_crls(
        &mut self,
        out: &Path,
        issuers: &Issuers,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Vec<PublishReport>, AuthorityError> {
        let mut reports = Vec::new();
        let shards = self.settings().shards;
        let generations = issuers.generations(CertKind::Signature).len()
            + issuers.generations(CertKind::Authentication).len();
        let total = generations * (usize::from(shards) + 4);
        let mut done = 0;
        for kind in [CertKind::Signature, CertKind::Authentication] {
            for issuer in issuers.generations(kind) {
                reports.push(self.publish_one(out, issuer, kind, &mut |_| {
                    done += 1;
                    progress(done, total);
                })?);
            }
            // The link certificates between generations, beside the roots.
            let links: Vec<(i64, i64, Vec<u8>)> = self.connection().query_map(
                "SELECT issuer_generation, subject_generation, der FROM ca_links WHERE kind = ?1",
                params![kind.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            for (from, to, der) in links {
                let (from, to) = (u32::try_from(from).unwrap_or(0), u32::try_from(to).unwrap_or(0));
                write_atomically(&out.join(Endpoints::link_cert_path(kind, from, to)), &der, 0o644)?;
            }
        }
        Ok(reports)
    }

    /// Publishes the CRLs of one generation of `kind`'s CA: the certificates it issued.
    fn publish_one(
        &mut self,
        out: &Path,
        issuer: &jpki_pki::Issuer,
        kind: CertKind,
        tick: &mut dyn FnMut(()),
    ) -> Result<PublishReport, AuthorityError> {
        let now = self.now();
        let settings = self.settings().clone();
        let k = kind.as_str();
        let generation = issuer.generation();
        let g = i64::from(generation);
        // 1. Snapshot and number allocation in one transaction: the number is consumed even if
        //    writing fails later, so CRL numbers only ever increase.
        let tx = self.connection().begin_write()?;
        let number: u64 = {
            tx.execute(
                "UPDATE crl_counters SET last_number = last_number + 1 WHERE kind = ?1",
                params![k],
            )?;
            let n: i64 = tx.query_row(
                "SELECT last_number FROM crl_counters WHERE kind = ?1",
                params![k],
                |r| r.get(0),
            )?;
            u64::try_from(n).map_err(|_| AuthorityError::Corrupt("CRL number".into()))?
        };
        let mark: i64 = tx.query_row(
            "SELECT COALESCE(MAX(id), 0) FROM status_history",
            params![],
            |r| r.get(0),
        )?;
        let mut entries: Vec<(u16, CrlEntry)> = Vec::new();
        {
            tx.for_each(
                "SELECT serial, shard, revoked_at, reason FROM certificates
                 WHERE kind = ?1 AND ca_generation = ?3 AND status <> 'good' AND not_after >= ?2 ORDER BY serial",
                params![k, ts(now), g],
                |r| {
                    let serial = serial_from_blob(&r.get::<Vec<u8>>(0)?)?;
                    let shard = u16::try_from(r.get::<i64>(1)?)
                        .map_err(|_| AuthorityError::Corrupt("shard".into()))?;
                    let revoked_at = from_ts(
                        r.get::<Option<i64>>(2)?
                            .ok_or_else(|| AuthorityError::Corrupt("revoked_at".into()))?,
                    )?;
                    let reason = reason_from(r.get(3)?)?.unwrap_or(RevocationReason::Unspecified);
                    entries.push((
                        shard,
                        CrlEntry {
                            serial,
                            revoked_at,
                            reason,
                        },
                    ));
                    Ok::<(), AuthorityError>(())
                },
            )?;
        }
        let base: Option<(u64, i64)> = tx
            .query_opt(
                "SELECT number, history_mark FROM crl_publications WHERE kind = ?1 AND generation = ?2 \
                 ORDER BY number DESC LIMIT 1",
                params![k, g],
                |r| Ok((r.get::<i64>(0)?, r.get::<i64>(1)?)),
            )?
            .map(|(n, m)| {
                Ok::<_, AuthorityError>((
                    u64::try_from(n).map_err(|_| AuthorityError::Corrupt("CRL number".into()))?,
                    m,
                ))
            })
            .transpose()?;
        let delta = match base {
            Some((_, base_mark)) => Some(delta_entries(&tx, k, g, base_mark, &entries, now)?),
            None => None,
        };
        crate::authority::event(
            &tx,
            &self.operator,
            now,
            "crl-publish",
            None,
            None,
            &format!(
                "{k} generation {generation} CRL number {number}, {} entries",
                entries.len()
            ),
        )?;
        // The ARL: link certificates this generation issued and revoked.
        let revoked_links: Vec<CrlEntry> = tx
            .query_map(
                "SELECT serial, revoked_at, reason FROM ca_links \
                 WHERE kind = ?1 AND issuer_generation = ?2 AND status = 'revoked' ORDER BY serial",
                params![k, g],
                |r| {
                    Ok((
                        r.get::<Vec<u8>>(0)?,
                        r.get::<Option<i64>>(1)?,
                        r.get::<Option<i64>>(2)?,
                    ))
                },
            )?
            .into_iter()
            .map(|(serial, at, reason)| {
                Ok(CrlEntry {
                    serial: serial_from_blob(&serial)?,
                    revoked_at: from_ts(at.unwrap_or(0))?,
                    reason: reason_from(reason)?.unwrap_or(RevocationReason::Unspecified),
                })
            })
            .collect::<Result<_, AuthorityError>>()?;
        tx.commit()?;

        // 2. Sign and write.
        let spec = |scope| CrlSpec {
            scope,
            number,
            this_update: now,
            next_update: now + Duration::hours(i64::from(settings.crl_validity_hours)),
            endpoints: &settings.endpoints,
        };
        let mut files = Vec::new();
        let mut write = |path: String, der: &[u8], n: usize| -> Result<(), AuthorityError> {
            write_atomically(&out.join(&path), der, 0o644)?;
            files.push(PublishedFile {
                path,
                entries: n,
                bytes: der.len(),
            });
            tick(());
            Ok(())
        };
        let all: Vec<&CrlEntry> = entries.iter().map(|(_, e)| e).collect();
        write(
            Endpoints::full_crl_path_gen(kind, generation),
            &issuer.crl(&spec(CrlScope::Complete), all.iter().copied())?,
            all.len(),
        )?;
        let mut by_shard: BTreeMap<u16, Vec<&CrlEntry>> =
            (0..settings.shards).map(|s| (s, Vec::new())).collect();
        for (s, e) in &entries {
            by_shard.entry(*s).or_default().push(e);
        }
        for (s, es) in &by_shard {
            write(
                Endpoints::shard_crl_path_gen(kind, generation, *s),
                &issuer.crl(&spec(CrlScope::Shard(*s)), es.iter().copied())?,
                es.len(),
            )?;
        }
        if let (Some((base_number, _)), Some(d)) = (base, &delta) {
            write(
                Endpoints::delta_crl_path_gen(kind, generation),
                &issuer.crl(&spec(CrlScope::Delta { base: base_number }), d.iter())?,
                d.len(),
            )?;
        }
        write(
            Endpoints::arl_path_gen(kind, generation),
            &issuer.crl(&spec(CrlScope::Authority), revoked_links.iter())?,
            revoked_links.len(),
        )?;
        write(
            Endpoints::ca_cert_path_gen(kind, generation),
            issuer.cert_der(),
            0,
        )?;

        // 3. Record the publication: the next delta is computed against it.
        self.conn().execute(
            "INSERT INTO crl_publications (kind, number, published_at, history_mark, generation) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![k, i64::try_from(number).unwrap_or(i64::MAX), ts(now), mark, g],
        )?;
        Ok(PublishReport {
            kind,
            generation,
            crl_number: number,
            delta_base: base.map(|b| b.0),
            files,
        })
    }
}

/// Entries of the delta CRL: every certificate whose status changed after the base's history mark:
/// its current revocation, or removeFromCRL when a hold was lifted.
fn delta_entries(
    tx: &jpki_db::Db,
    kind: &str,
    generation: i64,
    base_mark: i64,
    current: &[(u16, CrlEntry)],
    now: time::OffsetDateTime,
) -> Result<Vec<CrlEntry>, AuthorityError> {
    let changed = tx.query_map(
        "SELECT DISTINCT c.serial, c.status FROM status_history h JOIN certificates c ON c.id = h.cert
         WHERE h.id > ?1 AND c.kind = ?2 AND c.ca_generation = ?3 AND h.event <> 'issue'",
        params![base_mark, kind, generation],
        |r| Ok((r.get::<Vec<u8>>(0)?, r.get::<String>(1)?)),
    )?;
    let on_crl: HashSet<&[u8]> = current.iter().map(|(_, e)| e.serial.as_be_bytes()).collect();
    let changed_set: HashSet<&[u8]> = changed.iter().map(|(s, _)| s.as_slice()).collect();
    let mut out: Vec<CrlEntry> = current
        .iter()
        .filter(|(_, e)| changed_set.contains(e.serial.as_be_bytes()))
        .map(|(_, e)| e.clone())
        .collect();
    for (s, status) in changed {
        if status == "good" && !on_crl.contains(s.as_slice()) {
            out.push(CrlEntry {
                serial: serial_from_blob(&s)?,
                revoked_at: now,
                reason: RevocationReason::RemoveFromCrl,
            });
        }
    }
    Ok(out)
}
