//! Who a message is for and which folder it goes to, from its header block. Pure.
//!
//! Recipients, in order of trust: the envelope recipient SES records in its top
//! `Received: ... for <addr>;` field; else every To / Cc / Delivered-To / X-Original-To address
//! that is a known user; else the catch-all address. One copy per distinct local recipient.
//! SES's verdicts pick the folder: `X-SES-Virus-Verdict: FAIL` → the quarantine folder,
//! `X-SES-Spam-Verdict: FAIL` → the junk folder, anything else → INBOX.

use crate::mail::{address, header};
use std::collections::HashMap;
use std::fmt;

/// The addresses mail may be delivered to.
#[derive(Clone, Debug, Default)]
pub struct Directory {
    /// Known users, normalised address → the spelling in the users file (also the directory
    /// name). `None`: no users file, so the envelope recipient is trusted as it is.
    known: Option<HashMap<String, String>>,
    catch_all: Option<String>,
}

impl Directory {
    pub fn new<I: IntoIterator<Item = String>>(
        users: Option<I>,
        catch_all: Option<String>,
    ) -> Directory {
        let known = users.map(|u| {
            u.into_iter()
                .filter(|n| check_address(n).is_ok())
                .map(|n| (address::normalise(&n), n))
                .collect()
        });
        Directory { known, catch_all }
    }

    /// The local spelling of `addr`, trying `user+tag@d` as `user@d` too.
    fn lookup(&self, addr: &str) -> Option<String> {
        let known = self.known.as_ref()?;
        let n = address::normalise(addr);
        if let Some(u) = known.get(&n) {
            return Some(u.clone());
        }
        let base = address::without_subaddress(&n)?;
        known.get(&base).cloned()
    }
}

/// The folders verdicts send mail to (Maildir++ names without the leading dot).
#[derive(Clone, Debug)]
pub struct Folders {
    pub junk: String,
    pub quarantine: String,
}

impl Default for Folders {
    fn default() -> Self {
        Folders {
            junk: "Junk".into(),
            quarantine: "Quarantine".into(),
        }
    }
}

/// Why a recipient was chosen, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// SES's notification named the envelope recipients ([`route_envelope`]).
    Notification,
    Envelope,
    Header,
    CatchAll,
}

/// Where one message goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Mail directories under the mail root, one per recipient, distinct.
    pub recipients: Vec<String>,
    /// `None` for INBOX, else a folder name from [`Folders`].
    pub folder: Option<String>,
    pub via: Via,
}

/// A message that cannot be delivered anywhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// No header names a known user and there is no catch-all.
    NoRecipient { seen: Vec<String> },
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::NoRecipient { seen } if seen.is_empty() => write!(
                f,
                "no recipient address in the message headers; set --catch-all to keep such mail"
            ),
            RouteError::NoRecipient { seen } => write!(
                f,
                "no local recipient among {}; add the user to the users file or set --catch-all",
                seen.join(", ")
            ),
        }
    }
}

impl std::error::Error for RouteError {}

pub use crate::mail::address::check_address;

/// Refuses a folder name that is not a plain Maildir++ folder name.
pub fn check_folder(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        return Err("a folder name must be non-empty and must not start or end with '.'");
    }
    if name.contains(['/', '\\', '&']) || name.chars().any(|c| c.is_control() || !c.is_ascii()) {
        return Err("a folder name must be printable ASCII without '/', '\\' or '&'");
    }
    if name.eq_ignore_ascii_case("inbox") {
        return Err("INBOX is not a folder name here; leave the option unset for INBOX");
    }
    Ok(())
}

/// The folder SES's verdicts in the header block send a message to (`None`: INBOX).
fn verdict_folder(block: &[u8], folders: &Folders) -> Option<String> {
    let mut spam_fail = None;
    let mut virus_fail = None;
    for f in header::fields(block) {
        if f.is("x-ses-spam-verdict") && spam_fail.is_none() {
            spam_fail = Some(f.value.trim_ascii().eq_ignore_ascii_case(b"FAIL"));
        } else if f.is("x-ses-virus-verdict") && virus_fail.is_none() {
            virus_fail = Some(f.value.trim_ascii().eq_ignore_ascii_case(b"FAIL"));
        }
    }
    if virus_fail == Some(true) {
        Some(folders.quarantine.clone())
    } else if spam_fail == Some(true) {
        Some(folders.junk.clone())
    } else {
        None
    }
}

/// The route to `recipients` when there are any, else to the catch-all, else none.
fn found(
    recipients: Vec<String>,
    via: Via,
    folder: Option<String>,
    dir: &Directory,
    seen: Vec<String>,
) -> Result<Route, RouteError> {
    if !recipients.is_empty() {
        return Ok(Route {
            recipients,
            folder,
            via,
        });
    }
    match &dir.catch_all {
        Some(c) => Ok(Route {
            recipients: vec![c.clone()],
            folder,
            via: Via::CatchAll,
        }),
        None => Err(RouteError::NoRecipient { seen }),
    }
}

/// Decides recipients and folder when SES's notification named the envelope recipients
/// (`receipt.recipients`, Bcc included): every one that is a known user (or, without a users
/// file, every valid address); when none is, the header as [`route`] reads it (then the
/// catch-all). The folder comes from the header's verdicts.
pub fn route_envelope(
    envelope: &[String],
    block: &[u8],
    dir: &Directory,
    folders: &Folders,
) -> Result<Route, RouteError> {
    let folder = verdict_folder(block, folders);
    let mut recipients: Vec<String> = Vec::new();
    let mut seen = Vec::new();
    for a in envelope {
        let local = if dir.known.is_some() {
            dir.lookup(a)
        } else {
            Some(address::normalise(a))
        };
        match local.filter(|r| check_address(r).is_ok()) {
            Some(r) if !recipients.contains(&r) => recipients.push(r),
            Some(_) => {}
            None => seen.push(a.clone()),
        }
    }
    if recipients.is_empty() {
        // No envelope recipient is a local user (an alias SES matched): the header decides,
        // as the listing would.
        return route(block, dir, folders).map_err(|RouteError::NoRecipient { seen: more }| {
            let mut seen = seen;
            seen.extend(more.into_iter().filter(|a| !envelope.contains(a)));
            RouteError::NoRecipient { seen }
        });
    }
    found(recipients, Via::Notification, folder, dir, seen)
}

/// Decides recipients and folder for the message whose header block is `block`.
pub fn route(block: &[u8], dir: &Directory, folders: &Folders) -> Result<Route, RouteError> {
    let mut envelope: Option<String> = None;
    let mut first_received = true;
    let mut header_addrs: Vec<String> = Vec::new();
    for f in header::fields(block) {
        if f.is("received") {
            if first_received {
                envelope = address::received_for(&f.value);
                first_received = false;
            }
        } else if f.is("to") || f.is("cc") || f.is("delivered-to") || f.is("x-original-to") {
            header_addrs.extend(address::address_list(&f.value));
        }
    }
    let folder = verdict_folder(block, folders);
    let mut seen = Vec::new();
    if let Some(env) = envelope {
        let local = if dir.known.is_some() {
            dir.lookup(&env)
        } else {
            Some(address::normalise(&env))
        };
        if let Some(r) = local.filter(|r| check_address(r).is_ok()) {
            return Ok(Route {
                recipients: vec![r],
                folder,
                via: Via::Envelope,
            });
        }
        seen.push(env);
    }
    let mut recipients: Vec<String> = Vec::new();
    for a in &header_addrs {
        if let Some(r) = dir.lookup(a) {
            if !recipients.contains(&r) {
                recipients.push(r);
            }
        } else if !seen.contains(a) {
            seen.push(a.clone());
        }
    }
    found(recipients, Via::Header, folder, dir, seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(names: &[&str], catch_all: Option<&str>) -> Directory {
        Directory::new(
            Some(names.iter().map(|s| s.to_string())),
            catch_all.map(str::to_string),
        )
    }

    const SES: &[u8] = b"Return-Path: <sender@other.org>\r\n\
        Received: from mail.other.org by inbound-smtp.us-east-1.amazonaws.com with SMTP id x \
        for Alice@Example.com;\r\n Sat, 28 Nov 2026 10:00:00 +0000 (UTC)\r\n\
        X-SES-Spam-Verdict: PASS\r\nX-SES-Virus-Verdict: PASS\r\n\
        Received: from earlier by somewhere for evil@example.com; Sat\r\n\
        From: s <sender@other.org>\r\nTo: Bob <bob@example.com>, alice@example.com\r\n\r\n";

    #[test]
    fn notification_recipients_include_bcc() {
        let d = users(
            &["alice@example.com", "bob@example.com"],
            Some("postmaster@example.com"),
        );
        let env = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // SES's Received line names alice only; carol is Bcc'd and no header says so.
        let r = route_envelope(
            &env(&[
                "Alice@Example.com",
                "bob+lists@example.com",
                "stranger@example.com",
            ]),
            SES,
            &d,
            &Folders::default(),
        )
        .unwrap();
        assert_eq!(r.recipients, vec!["alice@example.com", "bob@example.com"]);
        assert_eq!(r.via, Via::Notification);
        // An alias no user has: the header's envelope line (alice) decides, as in the listing.
        let r = route_envelope(
            &env(&["stranger@example.com"]),
            SES,
            &d,
            &Folders::default(),
        );
        assert_eq!(r.unwrap().recipients, vec!["alice@example.com"]);
        let bare = b"From: x@y.example\r\n\r\n";
        let r = route_envelope(
            &env(&["stranger@example.com"]),
            bare,
            &d,
            &Folders::default(),
        );
        assert_eq!(r.unwrap().recipients, vec!["postmaster@example.com"]);
        let strict = users(&["alice@example.com"], None);
        assert_eq!(
            route_envelope(&env(&["x@example.com"]), bare, &strict, &Folders::default()),
            Err(RouteError::NoRecipient {
                seen: vec!["x@example.com".into()]
            })
        );
        let spam = b"X-SES-Spam-Verdict: FAIL\r\n\r\n";
        let r = route_envelope(&env(&["alice@example.com"]), spam, &d, &Folders::default());
        assert_eq!(r.unwrap().folder.as_deref(), Some("Junk"));
    }

    #[test]
    fn envelope_recipient_wins() {
        let d = users(&["alice@example.com", "bob@example.com"], None);
        let r = route(SES, &d, &Folders::default()).unwrap();
        assert_eq!(r.recipients, vec!["alice@example.com"]);
        assert_eq!(r.via, Via::Envelope);
        assert_eq!(r.folder, None);
    }

    #[test]
    fn headers_when_envelope_unknown_one_copy_each() {
        let d = users(&["bob@example.com", "carol@example.com"], None);
        let m = b"Received: from a by b for stranger@example.com; x\r\n\
                  To: bob@example.com, Bob Again <BOB@example.com>\r\nCc: carol+lists@example.com\r\n\r\n";
        let r = route(m, &d, &Folders::default()).unwrap();
        assert_eq!(r.recipients, vec!["bob@example.com", "carol@example.com"]);
        assert_eq!(r.via, Via::Header);
    }

    #[test]
    fn catch_all_and_no_recipient() {
        let m = b"To: nobody@example.com\r\n\r\n";
        let d = users(&["alice@example.com"], Some("postmaster@example.com"));
        let r = route(m, &d, &Folders::default()).unwrap();
        assert_eq!(r.recipients, vec!["postmaster@example.com"]);
        assert_eq!(r.via, Via::CatchAll);
        let d = users(&["alice@example.com"], None);
        let e = route(m, &d, &Folders::default()).unwrap_err();
        assert_eq!(
            e,
            RouteError::NoRecipient {
                seen: vec!["nobody@example.com".into()]
            }
        );
        assert!(e.to_string().contains("--catch-all"));
    }

    #[test]
    fn without_users_file_the_envelope_is_trusted_but_must_be_safe() {
        let d = Directory::new(None::<Vec<String>>, None);
        let r = route(
            b"Received: by x for <A@B.c>; y\r\n\r\n",
            &d,
            &Folders::default(),
        )
        .unwrap();
        assert_eq!(r.recipients, vec!["a@b.c"]);
        for evil in [
            "Received: by x for <../../etc@x>; y\r\n\r\n",
            "Received: by x for <a/b@c>; y\r\n\r\n",
            "Received: by x for <.hidden@c>; y\r\n\r\n",
        ] {
            assert!(
                route(evil.as_bytes(), &d, &Folders::default()).is_err(),
                "{evil}"
            );
        }
    }

    #[test]
    fn verdicts_pick_the_folder_first_field_counts() {
        let d = users(&["a@b.c"], None);
        let spam = b"X-SES-Spam-Verdict: FAIL\r\nX-SES-Virus-Verdict: PASS\r\nTo: a@b.c\r\n\r\n";
        assert_eq!(
            route(spam, &d, &Folders::default())
                .unwrap()
                .folder
                .as_deref(),
            Some("Junk")
        );
        let virus = b"X-SES-Spam-Verdict: FAIL\r\nX-SES-Virus-Verdict: FAIL\r\nTo: a@b.c\r\n\r\n";
        assert_eq!(
            route(virus, &d, &Folders::default())
                .unwrap()
                .folder
                .as_deref(),
            Some("Quarantine")
        );
        // A sender cannot override SES's verdict with a later copy of the field.
        let forged = b"X-SES-Spam-Verdict: FAIL\r\nTo: a@b.c\r\nX-SES-Spam-Verdict: PASS\r\n\r\n";
        assert_eq!(
            route(forged, &d, &Folders::default())
                .unwrap()
                .folder
                .as_deref(),
            Some("Junk")
        );
    }

    #[test]
    fn address_and_folder_checks() {
        assert!(check_address("a@b.c").is_ok());
        for bad in [
            "", "..", ".a@b", "a/b@c", "a\0@b", "a\n@b", "noat", "a\\b@c",
        ] {
            assert!(check_address(bad).is_err(), "{bad:?}");
        }
        assert!(check_folder("Junk").is_ok());
        assert!(check_folder("Spam.Quarantine").is_ok());
        for bad in ["", ".x", "x.", "a..b", "a/b", "INBOX", "Ünï", "a&b"] {
            assert!(check_folder(bad).is_err(), "{bad:?}");
        }
    }
}
