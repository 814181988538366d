//! The operator audit trail: every operator action (registering a resident, a life event, issuing,
//! renewing, revoking, publishing CRLs, service certificates, …) is one row of `events` saying who
//! (the operator), what, when, about whom.
//!
//! Append-only twice over: the database refuses UPDATE and DELETE on the table (triggers, since
//! schema version 7), and each row carries `hash = SHA-256(previous hash ‖ the row)`, so a row
//! changed or removed behind the database's back (a file edited, triggers dropped) breaks the
//! chain at that row, which [`Authority::verify_audit_trail`] names. Dropping the newest rows
//! leaves a shorter valid chain: the operator keeps the head hash `jpki audit` prints somewhere
//! else (a ticket, a log shipper) and compares.
use aws_lc_rs::digest;
use jpki_db::{Db, params};
use serde::Serialize;
use time::OffsetDateTime;

use crate::AuthorityError;
use crate::authority::Authority;
use crate::store::ts;

/// The operator recorded when none is named: `JPKI_OPERATOR`, else the login name.
pub(crate) fn default_operator() -> String {
    ["JPKI_OPERATOR", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
        .map_or_else(|| "unknown".to_owned(), |s| s.trim().chars().take(128).collect())
}

/// One row of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Position in the trail (from 1).
    pub id: i64,
    /// When (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who: the operator.
    pub actor: String,
    /// What (`resident-add`, `card-issue`, `revoke`, `crl-publish`, …).
    pub event: String,
    /// The resident concerned, if any.
    pub resident_id: Option<i64>,
    /// The card concerned, if any.
    pub card_id: Option<String>,
    /// Details (a serial and reason, a CRL number, …).
    pub detail: String,
    /// The chain hash (hex).
    pub hash: String,
}

/// The result of checking the whole trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditCheck {
    /// Rows checked.
    pub entries: u64,
    /// The hash of the newest row (hex): keep it elsewhere to detect the newest rows dropped.
    pub head: String,
    /// The first row that breaks the chain, and how; `None` when intact.
    pub broken: Option<String>,
}

#[allow(clippy::too_many_arguments)] // one argument per column, hashed in order
fn hash_row(
    prev: &[u8],
    id: i64,
    at: i64,
    actor: &str,
    event: &str,
    resident_id: Option<i64>,
    card_id: Option<&str>,
    detail: &str,
) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"jpki-audit-v1");
    ctx.update(prev);
    ctx.update(&id.to_be_bytes());
    ctx.update(&at.to_be_bytes());
    for text in [actor, event] {
        ctx.update(&(text.len() as u64).to_be_bytes());
        ctx.update(text.as_bytes());
    }
    match resident_id {
        Some(r) => {
            ctx.update(&[1]);
            ctx.update(&r.to_be_bytes());
        }
        None => ctx.update(&[0]),
    }
    match card_id {
        Some(c) => {
            ctx.update(&[1]);
            ctx.update(&(c.len() as u64).to_be_bytes());
            ctx.update(c.as_bytes());
        }
        None => ctx.update(&[0]),
    }
    ctx.update(&(detail.len() as u64).to_be_bytes());
    ctx.update(detail.as_bytes());
    ctx.finish().as_ref().to_vec()
}

const GENESIS: [u8; 32] = [0; 32];

/// Appends one row inside the caller's write transaction (which holds the writer lock, so the
/// previous row and the next id cannot change under it).
#[allow(clippy::too_many_arguments)]
pub(crate) fn append(
    tx: &Db,
    actor: &str,
    now: OffsetDateTime,
    ev: &str,
    resident_id: Option<i64>,
    card_id: Option<&str>,
    detail: &str,
) -> Result<(), AuthorityError> {
    let last: Option<(i64, Option<Vec<u8>>)> = tx.query_opt(
        "SELECT id, hash FROM events ORDER BY id DESC LIMIT 1",
        params![],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (id, prev) = match last {
        Some((id, Some(h))) => (id + 1, h),
        Some((id, None)) => (id + 1, GENESIS.to_vec()),
        None => (1, GENESIS.to_vec()),
    };
    let at = ts(now);
    let hash = hash_row(&prev, id, at, actor, ev, resident_id, card_id, detail);
    tx.execute(
        "INSERT INTO events (id, at, event, resident_id, card_id, detail, actor, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![id, at, ev, resident_id, card_id, detail, actor, hash],
    )?;
    Ok(())
}

/// Schema 7: chains the rows written before it (in id order, as recorded) — run once, inside
/// the migration's transaction and before the triggers that forbid updates exist.
pub(crate) fn backfill(tx: &Db) -> Result<(), AuthorityError> {
    type Row = (i64, i64, String, Option<i64>, Option<String>, String, String);
    let rows: Vec<Row> = tx.query_map(
        "SELECT id, at, event, resident_id, card_id, detail, actor FROM events ORDER BY id",
        params![],
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        },
    )?;
    let mut prev = GENESIS.to_vec();
    for (id, at, ev, rid, card, detail, actor) in rows {
        let hash = hash_row(&prev, id, at, &actor, &ev, rid, card.as_deref(), &detail);
        tx.execute("UPDATE events SET hash = ?1 WHERE id = ?2", params![hash, id])?;
        prev = hash;
    }
    Ok(())
}

fn entry(r: &jpki_db::Row<'_>) -> Result<(AuditEntry, Option<Vec<u8>>, i64), jpki_db::DbError> {
    let at: i64 = r.get(1)?;
    let hash: Option<Vec<u8>> = r.get(7)?;
    Ok((
        AuditEntry {
            id: r.get(0)?,
            at: OffsetDateTime::from_unix_timestamp(at).unwrap_or(OffsetDateTime::UNIX_EPOCH),
            event: r.get(2)?,
            resident_id: r.get(3)?,
            card_id: r.get(4)?,
            detail: r.get(5)?,
            actor: r.get(6)?,
            hash: hash.as_deref().map(hex::encode).unwrap_or_default(),
        },
        hash,
        at,
    ))
}

const COLUMNS: &str = "id, at, event, resident_id, card_id, detail, actor, hash";

impl Authority {
    /// Names the operator recorded for the actions of this handle (default: `JPKI_OPERATOR`, else
    /// the login name).
    pub fn set_operator(&mut self, operator: &str) {
        self.operator = operator.trim().chars().take(128).collect();
    }

    /// The operator recorded for this handle's actions.
    pub fn operator(&self) -> &str {
        &self.operator
    }

    /// Records an operator action that the registry itself does not perform (a relying party
    /// registered, a backup taken, …) in the audit trail.
    pub fn record_action(&mut self, event: &str, detail: &str) -> Result<(), AuthorityError> {
        let now = self.now();
        let tx = self.connection().begin_write()?;
        append(&tx, self.operator(), now, event, None, None, detail)?;
        tx.commit()?;
        Ok(())
    }

    /// The audit trail after row `after`, oldest first, at most `limit` rows.
    pub fn audit_trail(&self, after: i64, limit: u32) -> Result<Vec<AuditEntry>, AuthorityError> {
        Ok(self.connection().query_map(
            &format!("SELECT {COLUMNS} FROM events WHERE id > ?1 ORDER BY id LIMIT ?2"),
            params![after, i64::from(limit)],
            |r| entry(r).map(|e| e.0),
        )?)
    }

    /// Walks the whole trail and recomputes every hash: the first row that does not match (changed,
    /// or a row before it removed) is named.
    pub fn verify_audit_trail(&self) -> Result<AuditCheck, AuthorityError> {
        let mut prev = GENESIS.to_vec();
        let mut entries = 0u64;
        let mut expected_id = 1i64;
        let mut broken = None;
        self.connection().for_each(
            &format!("SELECT {COLUMNS} FROM events ORDER BY id"),
            params![],
            |r| {
                let (e, stored, at) = entry(r)?;
                entries += 1;
                if broken.is_none() {
                    let want = hash_row(
                        &prev,
                        e.id,
                        at,
                        &e.actor,
                        &e.event,
                        e.resident_id,
                        e.card_id.as_deref(),
                        &e.detail,
                    );
                    if e.id != expected_id {
                        broken = Some(format!(
                            "rows {expected_id}..{} are missing before row {} ({})",
                            e.id - 1,
                            e.id,
                            e.event
                        ));
                    } else if stored.as_deref() != Some(want.as_slice()) {
                        broken = Some(format!(
                            "row {} ({} by {} at {}) was changed, or a row before it removed",
                            e.id,
                            e.event,
                            e.actor,
                            e.at.format(&time::format_description::well_known::Rfc3339)
                                .unwrap_or_default()
                        ));
                    }
                    prev = stored.unwrap_or_default();
                    expected_id = e.id + 1;
                }
                Ok::<(), AuthorityError>(())
            },
        )?;
        Ok(AuditCheck {
            entries,
            head: hex::encode(&prev),
            broken,
        })
    }
}
