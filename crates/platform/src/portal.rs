//! What マイナポータル keeps for people besides their access records: notices (push-type
//! messages an agency or the operator sends, to one person or to everyone: `jpki notice send`)
//! and the post box of signed documents sent to a person (`jpki postbox send`), each validated when
//! shown. People are named by the platform's person reference, never by the individual number.
use jpki_db::params;
use time::OffsetDateTime;

use crate::rp::random_hex;
use crate::{PlatformError, Registry};

/// 6: notices and the post box.
pub(crate) const SCHEMA_V6: &str = "
CREATE TABLE notices (
    id         TEXT    PRIMARY KEY,
    person_ref TEXT,
    sender     TEXT    NOT NULL,
    title      TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    sent_at    INTEGER NOT NULL
);
CREATE INDEX notices_person ON notices (person_ref, sent_at);
CREATE TABLE postbox (
    id         TEXT    PRIMARY KEY,
    person_ref TEXT    NOT NULL,
    sender     TEXT    NOT NULL,
    title      TEXT    NOT NULL,
    document   BLOB    NOT NULL,
    sent_at    INTEGER NOT NULL
);
CREATE INDEX postbox_person ON postbox (person_ref, sent_at);
";

/// The same on PostgreSQL.
pub(crate) const PG_V6: &str = "
CREATE TABLE notices (
    id         TEXT   PRIMARY KEY,
    person_ref TEXT,
    sender     TEXT   NOT NULL,
    title      TEXT   NOT NULL,
    body       TEXT   NOT NULL,
    sent_at    BIGINT NOT NULL
);
CREATE INDEX notices_person ON notices (person_ref, sent_at);
CREATE TABLE postbox (
    id         TEXT   PRIMARY KEY,
    person_ref TEXT   NOT NULL,
    sender     TEXT   NOT NULL,
    title      TEXT   NOT NULL,
    document   BYTEA  NOT NULL,
    sent_at    BIGINT NOT NULL
);
CREATE INDEX postbox_person ON postbox (person_ref, sent_at);
";

/// The longest title.
pub const MAX_TITLE_CHARS: usize = 200;
/// The longest notice body.
pub const MAX_BODY_CHARS: usize = 10_000;
/// The largest document in the post box.
pub const MAX_DOCUMENT_BYTES: usize = 10 * 1024 * 1024;

/// A notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Its identifier.
    pub id: String,
    /// Whether it went to everyone.
    pub to_everyone: bool,
    /// Who sent it (an agency's or the operator's name).
    pub sender: String,
    /// Its title.
    pub title: String,
    /// Its text.
    pub body: String,
    /// When it was sent.
    pub sent_at: OffsetDateTime,
}

/// A document in a person's post box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Its identifier.
    pub id: String,
    /// Who sent it.
    pub sender: String,
    /// Its title.
    pub title: String,
    /// The signed document (CMS SignedData, DER), as delivered.
    pub document: Vec<u8>,
    /// When it was delivered.
    pub sent_at: OffsetDateTime,
}

fn text(what: &str, value: &str, max: usize) -> Result<(), PlatformError> {
    if value.trim().is_empty() {
        return Err(PlatformError::Input(format!("{what}: empty")));
    }
    if value.chars().count() > max {
        return Err(PlatformError::Input(format!(
            "{what}: more than {max} characters"
        )));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(PlatformError::Input(format!("{what}: control characters")));
    }
    Ok(())
}

fn at(secs: i64) -> Result<OffsetDateTime, PlatformError> {
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|_| PlatformError::Input(format!("a stored time {secs} is out of range")))
}

impl Registry {
    /// Sends a notice to the person `person_ref`, or to everyone (`None`); its identifier.
    pub fn send_notice(
        &mut self,
        person_ref: Option<&str>,
        sender: &str,
        title: &str,
        body: &str,
        now: OffsetDateTime,
    ) -> Result<String, PlatformError> {
        text("--from", sender, MAX_TITLE_CHARS)?;
        text("--title", title, MAX_TITLE_CHARS)?;
        text("--body", body, MAX_BODY_CHARS)?;
        let id = format!("n-{}", random_hex::<8>()?);
        self.db.execute(
            "INSERT INTO notices (id, person_ref, sender, title, body, sent_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, person_ref, sender, title, body, now.unix_timestamp()],
        )?;
        Ok(id)
    }

    /// The notices for `person_ref` (to them and to everyone), newest first.
    pub fn notices_for(&self, person_ref: &str) -> Result<Vec<Notice>, PlatformError> {
        let rows: Vec<(String, Option<String>, String, String, String, i64)> = self.db.query_map(
            "SELECT id, person_ref, sender, title, body, sent_at FROM notices \
             WHERE person_ref = ?1 OR person_ref IS NULL ORDER BY sent_at DESC, id",
            params![person_ref],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )?;
        rows.into_iter()
            .map(|(id, to, sender, title, body, sent)| {
                Ok(Notice {
                    id,
                    to_everyone: to.is_none(),
                    sender,
                    title,
                    body,
                    sent_at: at(sent)?,
                })
            })
            .collect()
    }

    /// Puts a signed document into the post box of `person_ref`; its identifier. The document is
    /// kept as sent; it is validated each time it is shown.
    pub fn deliver(
        &mut self,
        person_ref: &str,
        sender: &str,
        title: &str,
        document: &[u8],
        now: OffsetDateTime,
    ) -> Result<String, PlatformError> {
        text("--from", sender, MAX_TITLE_CHARS)?;
        text("--title", title, MAX_TITLE_CHARS)?;
        if document.is_empty() || document.len() > MAX_DOCUMENT_BYTES {
            return Err(PlatformError::Input(format!(
                "the document: 1 byte to {} MiB",
                MAX_DOCUMENT_BYTES >> 20
            )));
        }
        let id = format!("d-{}", random_hex::<8>()?);
        self.db.execute(
            "INSERT INTO postbox (id, person_ref, sender, title, document, sent_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, person_ref, sender, title, document, now.unix_timestamp()],
        )?;
        Ok(id)
    }

    /// The post box of `person_ref`, newest first.
    pub fn postbox_of(&self, person_ref: &str) -> Result<Vec<Delivery>, PlatformError> {
        let rows: Vec<(String, String, String, Vec<u8>, i64)> = self.db.query_map(
            "SELECT id, sender, title, document, sent_at FROM postbox WHERE person_ref = ?1 ORDER BY sent_at DESC, id",
            params![person_ref],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        rows.into_iter()
            .map(|(id, sender, title, document, sent)| {
                Ok(Delivery {
                    id,
                    sender,
                    title,
                    document,
                    sent_at: at(sent)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testing::each_engine;

    #[test]
    fn notices_reach_their_person_and_everyone_and_the_post_box_keeps_documents_as_sent() {
        each_engine(|engine, dir| {
            let loc = engine.fresh(dir, crate::rp::POSTGRES_SCHEMA);
            let mut reg = Registry::open_at(&loc).unwrap();
            let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
            reg.send_notice(Some("alice"), "Tax office", "Your return", "Please check.", t)
                .unwrap();
            reg.send_notice(
                None,
                "Operator",
                "Maintenance",
                "Sunday 2-4",
                t + time::Duration::hours(1),
            )
            .unwrap();
            reg.send_notice(Some("bob"), "Tax office", "Bob's", "x", t)
                .unwrap();
            let alice = reg.notices_for("alice").unwrap();
            assert_eq!(
                alice.iter().map(|n| n.title.as_str()).collect::<Vec<_>>(),
                ["Maintenance", "Your return"]
            );
            assert!(alice[0].to_everyone && !alice[1].to_everyone);
            assert!(reg.send_notice(None, "Operator", " ", "x", t).is_err());
            assert!(reg.send_notice(None, "Operator", "t\u{7}", "x", t).is_err());

            let id = reg
                .deliver("alice", "City", "Certificate", b"\x30\x03\x02\x01\x01", t)
                .unwrap();
            let box_ = reg.postbox_of("alice").unwrap();
            assert_eq!(box_.len(), 1);
            assert_eq!(
                (box_[0].id.as_str(), box_[0].document.as_slice()),
                (id.as_str(), &b"\x30\x03\x02\x01\x01"[..])
            );
            assert!(reg.postbox_of("bob").unwrap().is_empty());
            assert!(reg.deliver("alice", "City", "Empty", b"", t).is_err());
        });
    }
}
