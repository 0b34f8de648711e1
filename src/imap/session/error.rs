//! What a command that fails answers: NO with a response code a client can act on (RFC 5530
//! and the extensions' codes), or BAD. Commands return [`Failure`]s; only
//! [`Failure::answer`] turns them into the tagged line.

use crate::imap::response::Output;
use crate::maildir::folders::FolderError;
use crate::maildir::store::StoreError;
use std::fmt;

/// A response code of a NO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    AlreadyExists,
    AuthenticationFailed,
    /// SEARCH in a charset we do not have; lists the ones we do.
    BadCharset,
    Cannot,
    /// COMPRESS when compression is on already (RFC 4978).
    CompressionActive,
    InUse,
    Limit,
    NonExistent,
    /// A read-only app password's session asked for a change (RFC 5530).
    NoPerm,
    OverQuota,
    PrivacyRequired,
    ReadOnly,
    ServerBug,
    TooBig,
    TryCreate,
    Unavailable,
    /// BINARY of a part whose Content-Transfer-Encoding is not known (RFC 3516).
    UnknownCte,
    UseAttr,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::AlreadyExists => "ALREADYEXISTS",
            Code::AuthenticationFailed => "AUTHENTICATIONFAILED",
            Code::BadCharset => "BADCHARSET (US-ASCII UTF-8)",
            Code::Cannot => "CANNOT",
            Code::CompressionActive => "COMPRESSIONACTIVE",
            Code::InUse => "INUSE",
            Code::Limit => "LIMIT",
            Code::NonExistent => "NONEXISTENT",
            Code::NoPerm => "NOPERM",
            Code::OverQuota => "OVERQUOTA",
            Code::PrivacyRequired => "PRIVACYREQUIRED",
            Code::ReadOnly => "READ-ONLY",
            Code::ServerBug => "SERVERBUG",
            Code::TooBig => "TOOBIG",
            Code::TryCreate => "TRYCREATE",
            Code::Unavailable => "UNAVAILABLE",
            Code::UnknownCte => "UNKNOWN-CTE",
            Code::UseAttr => "USEATTR",
        }
    }
}

/// A command's failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// `tag NO [code] text`.
    No { code: Option<Code>, text: String },
    /// `tag BAD text`: the command was malformed or not allowed in this state.
    Bad(String),
}

impl Failure {
    pub fn no(code: Code, text: impl Into<String>) -> Failure {
        Failure::No {
            code: Some(code),
            text: text.into(),
        }
    }

    pub fn bad(text: impl Into<String>) -> Failure {
        Failure::Bad(text.into())
    }

    /// Writes the tagged answer (and notes it for the log, see [`Output::note_failure`]).
    pub fn answer(&self, out: &mut Output, tag: &str) {
        let line = format!("{tag} {self}");
        out.put(format!("{line}\r\n").as_bytes());
        let answer = match self {
            Failure::No { .. } => crate::metrics::Answer::No,
            Failure::Bad(_) => crate::metrics::Answer::Bad,
        };
        out.note_failure(answer, line);
    }

    pub fn code(&self) -> Option<Code> {
        match self {
            Failure::No { code, .. } => *code,
            Failure::Bad(_) => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::No {
                code: Some(c),
                text,
            } => write!(f, "NO [{}] {text}", c.as_str()),
            Failure::No { code: None, text } => write!(f, "NO {text}"),
            Failure::Bad(text) => write!(f, "BAD {text}"),
        }
    }
}

/// The code for a store error.
pub fn store_code(e: &StoreError) -> Code {
    use crate::maildir::uidlist::LockError;
    match e {
        StoreError::Lock(LockError::Timeout { .. }) => Code::InUse,
        StoreError::NoSuchMailbox { .. } => Code::TryCreate,
        StoreError::ReadOnly { .. } => Code::ReadOnly,
        StoreError::UidsExhausted { .. } => Code::Limit,
        StoreError::Io { err, .. }
            if matches!(
                err.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ) =>
        {
            Code::OverQuota
        }
        _ => Code::ServerBug,
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        let code = store_code(&e);
        if matches!(code, Code::ServerBug | Code::InUse) {
            crate::warn!("imap", "mailbox error: {e}");
        }
        Failure::no(code, e.to_string())
    }
}

impl From<FolderError> for Failure {
    fn from(e: FolderError) -> Failure {
        use FolderError as F;
        let code = match &e {
            F::AlreadyExists { .. } => Code::AlreadyExists,
            F::NoSuchFolder { .. } => Code::NonExistent,
            F::InboxNotDeletable | F::IntoItself { .. } | F::InvalidName { .. } => Code::Cannot,
            F::Lock(_) => Code::InUse,
            F::Store(e) => store_code(e),
            F::Io { .. } => Code::ServerBug,
        };
        if code == Code::ServerBug {
            crate::warn!("imap", "folder operation failed: {e}");
        }
        Failure::no(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_carry_their_codes() {
        let mut out = Output::new();
        Failure::no(Code::TryCreate, "No such mailbox").answer(&mut out, "a1");
        Failure::bad("Missing argument").answer(&mut out, "a2");
        let text = String::from_utf8(out.to_bytes_for_test()).unwrap();
        assert_eq!(
            text,
            "a1 NO [TRYCREATE] No such mailbox\r\na2 BAD Missing argument\r\n"
        );
        assert_eq!(out.take_failures().len(), 2);
        let e: Failure = FolderError::AlreadyExists { name: "x".into() }.into();
        assert_eq!(e.code(), Some(Code::AlreadyExists));
    }
}
