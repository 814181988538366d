//! The one error type of the storage layer.

/// What went wrong with the database, in the operator's terms.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// SQLite refused or failed.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL refused a statement.
    #[error("PostgreSQL: {message}")]
    Postgres {
        /// The SQLSTATE code, when the server sent one.
        code: Option<String>,
        /// The server's message with its detail.
        message: String,
    },
    /// The database cannot be reached (down, restarting, network).
    #[error("the database at {0} is unreachable: {1}")]
    Unavailable(String, String),
    /// A query that must return a row returned none.
    #[error("expected a row, found none")]
    NoRow,
    /// A column holds another type than the one asked for.
    #[error("column {column}: expected {expected}, found {found}")]
    Type {
        /// The column index, from 0.
        column: usize,
        /// What the caller asked for.
        expected: &'static str,
        /// What the column holds.
        found: &'static str,
    },
    /// A query issued while the rows of another were still being read.
    #[error("a query was issued on a connection while another query's rows were being read")]
    Reentrant,
    /// The connection was used the wrong way (a programming error).
    #[error("{0}")]
    Usage(&'static str),
    /// The store was written by a newer jpki.
    #[error("schema version {found} is newer than this jpki knows ({known}); upgrade jpki")]
    SchemaNewer {
        /// The store's version.
        found: i64,
        /// The newest this build writes.
        known: i64,
    },
    /// A database location that cannot be used.
    #[error("database {0}: {1}")]
    Location(String, String),
}

/// SQLSTATE classes and codes that mean "the server is not there (now)".
fn unavailable_code(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code == "57P01" // admin shutdown
        || code == "57P02" // crash shutdown
        || code == "57P03" // cannot connect now (starting up, shutting down)
}

impl DbError {
    pub(crate) fn from_pg(e: &postgres::Error, where_: &str) -> Self {
        match e.as_db_error() {
            Some(db) => {
                let code = db.code().code().to_owned();
                let mut message = db.message().to_owned();
                if let Some(d) = db.detail() {
                    message.push_str(": ");
                    message.push_str(d);
                }
                if unavailable_code(&code) {
                    Self::Unavailable(where_.to_owned(), message)
                } else {
                    Self::Postgres {
                        code: Some(code),
                        message,
                    }
                }
            }
            None => {
                let mut message = e.to_string();
                let mut source = std::error::Error::source(e);
                while let Some(s) = source {
                    message.push_str(": ");
                    message.push_str(&s.to_string());
                    source = s.source();
                }
                if e.is_closed() || e.code().is_none_or(|c| unavailable_code(c.code())) && io_like(&message) {
                    Self::Unavailable(where_.to_owned(), message)
                } else {
                    Self::Postgres { code: None, message }
                }
            }
        }
    }

    /// Whether the database could not be reached: retrying later may succeed.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable(..) => true,
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                )
            }
            _ => false,
        }
    }

    /// Whether a unique or primary-key constraint refused a row.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            }
            Self::Postgres { code: Some(c), .. } => c == "23505",
            _ => false,
        }
    }
}

/// Errors without a server message that come from the socket.
fn io_like(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "connect",
        "connection",
        "timed out",
        "timeout",
        "refused",
        "reset",
        "broken pipe",
        "closed",
        "i/o",
        "eof",
    ]
    .iter()
    .any(|w| m.contains(w))
}
