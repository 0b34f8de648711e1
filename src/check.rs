//! `s3imap check`: each part of a configuration tried the way the server will use it, with
//! what to fix when it fails: S3 (credentials, region, bucket and prefix, by a one-key
//! ListObjectsV2), the users file (every line parses, every scheme is known), the mail root
//! (exists, takes writes, allows hard links, owned as its Maildirs are) and the TLS pair
//! (loads, the key is the certificate's, not expired, days left).

use crate::auth::scheme::Scheme;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// One part's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// `s3`, `users`, `mail root`, `tls`.
    pub part: &'static str,
    pub ok: bool,
    /// What was found, or what is wrong and how to fix it.
    pub detail: String,
}

fn ok(part: &'static str, detail: impl Into<String>) -> Finding {
    Finding {
        part,
        ok: true,
        detail: detail.into(),
    }
}

fn bad(part: &'static str, detail: impl Into<String>) -> Finding {
    Finding {
        part,
        ok: false,
        detail: detail.into(),
    }
}

/// S3: one key listed under the prefix.
pub fn s3(client: &crate::s3::client::Client, prefix: &str) -> Finding {
    match client.probe(prefix) {
        Ok(page) => ok(
            "s3",
            format!(
                "bucket {:?}{} is readable ({})",
                client.bucket(),
                if prefix.is_empty() {
                    String::new()
                } else {
                    format!(" under {prefix:?}")
                },
                if page.objects.is_empty() {
                    "no object there yet: is the SES rule's prefix the same?"
                } else {
                    "objects there"
                }
            ),
        ),
        Err(e) => bad("s3", e.to_string()),
    }
}

/// The events queue: it answers, says whether a redrive policy catches what keeps failing,
/// and a waiting message (if any) reads as SES's, S3's or SNS's notification.
pub fn events(queue: &crate::aws::sqs::Queue) -> Finding {
    let attrs = match queue.attributes() {
        Ok(a) => a,
        Err(e) => return bad("events", format!("{}: {e}", queue.url())),
    };
    let waiting = attrs
        .get("ApproximateNumberOfMessages")
        .and_then(|v| v.as_str())
        .unwrap_or("?")
        .to_string();
    let redrive = if attrs.contains_key("RedrivePolicy") {
        "a redrive policy"
    } else {
        "NO redrive policy: a message that keeps failing is retried every 12 h at most; \
         give the queue a dead-letter queue"
    };
    let sample = match queue.peek() {
        Err(e) => return bad("events", format!("{}: receiving: {e}", queue.url())),
        Ok(None) => String::new(),
        Ok(Some(m)) => match crate::sync::notice::parse(&m.body) {
            Ok(crate::sync::notice::Parsed::Notices(n)) => format!(
                "; a waiting message names {}",
                n.iter()
                    .map(|n| format!("s3://{}/{}", n.bucket, n.key))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Ok(crate::sync::notice::Parsed::Ignore(why)) => format!("; a waiting message is {why}"),
            Err(e) => return bad("events", format!("a waiting message {}: {e}", m.id)),
        },
    };
    ok(
        "events",
        format!(
            "{} answers ({waiting} waiting, {redrive}){sample}",
            queue.url()
        ),
    )
}

/// KMS, when the newest object sampled is client-side encrypted: its data key decrypts.
pub fn kms(
    client: &crate::s3::client::Client,
    kms: &crate::aws::kms::Kms,
    prefix: &str,
) -> Finding {
    let key = match client.probe(prefix) {
        Ok(page) => match page.objects.into_iter().next() {
            Some(o) => o.key,
            None => return ok("kms", "no object to look at yet"),
        },
        Err(e) => return bad("kms", format!("cannot list an object to look at: {e}")),
    };
    let head = match client.head(&key) {
        Ok(h) => h,
        Err(e) => return bad("kms", format!("{key}: {e}")),
    };
    match crate::aws::kms::Envelope::from_metadata(&head.meta) {
        Ok(None) => ok(
            "kms",
            format!("{key} is not client-side encrypted; KMS not needed"),
        ),
        Ok(Some(env)) => match kms.data_key(&env) {
            Ok(_) => ok(
                "kms",
                format!("{key} is encrypted and its data key decrypts"),
            ),
            Err(e) => bad("kms", format!("{key} is encrypted: {e}")),
        },
        Err(e) => bad("kms", format!("{key}: {e}")),
    }
}

/// The users file: it parses, every password's scheme is one the server verifies.
pub fn users(path: &Path) -> Finding {
    let entries = match crate::auth::passwd::load(path) {
        Ok(e) => e,
        Err(e) => return bad("users", e.to_string()),
    };
    let mut problems = Vec::new();
    for e in &entries {
        if e.password.trim().is_empty() {
            problems.push(format!("{:?} has no password (it cannot log in)", e.user));
        } else if let Err(err) = Scheme::parse(&e.password) {
            problems.push(format!("{:?}: {err}", e.user));
        }
    }
    if problems.is_empty() {
        ok(
            "users",
            format!("{}: {} users", path.display(), entries.len()),
        )
    } else {
        bad(
            "users",
            format!(
                "{}: {}; set a password with `s3imap user passwd ADDRESS`",
                path.display(),
                problems.join("; ")
            ),
        )
    }
}

/// The mail root: a directory that takes writes and hard links (Maildir delivery links
/// tmp/ into new/), owned by whoever owns the Maildirs in it.
pub fn mail_root(root: &Path) -> Finding {
    let part = "mail root";
    let meta = match fs::metadata(root) {
        Ok(m) if m.is_dir() => m,
        Ok(_) => return bad(part, format!("{} is not a directory", root.display())),
        Err(e) => {
            return bad(
                part,
                format!(
                    "{}: {e}; create it (owned by the user the server runs as) or fix --mail-root",
                    root.display()
                ),
            );
        }
    };
    let probe = root.join(format!(".s3imap-check-{}", std::process::id()));
    let linked = root.join(format!(".s3imap-check-{}.link", std::process::id()));
    let tried = fs::write(&probe, b"check")
        .map_err(|e| ("write", e))
        .and_then(|()| {
            let r = fs::hard_link(&probe, &linked).map_err(|e| ("hard-link", e));
            let _ = fs::remove_file(&linked);
            r
        });
    let _ = fs::remove_file(&probe);
    if let Err((what, e)) = tried {
        return bad(
            part,
            match what {
                "write" => format!(
                    "{} takes no writes ({e}); the server's user must own it, and it must not be mounted read-only",
                    root.display()
                ),
                _ => format!(
                    "{} does not allow hard links ({e}); Maildir delivery needs them: use a local file system or NFS, not one without links",
                    root.display()
                ),
            },
        );
    }
    // Maildirs owned by someone else than the root: the server (as the root's owner) could
    // not write them, or the other way round.
    let mut strangers = Vec::new();
    if let Ok(rd) = fs::read_dir(root) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if let Ok(m) = e.metadata()
                && m.is_dir()
                && m.uid() != meta.uid()
            {
                strangers.push(format!("{name} (uid {})", m.uid()));
            }
        }
    }
    if !strangers.is_empty() {
        strangers.sort();
        return bad(
            part,
            format!(
                "{} is owned by uid {} but {} not: chown -R them to the server's user",
                root.display(),
                meta.uid(),
                strangers.join(", ")
            ),
        );
    }
    ok(
        part,
        format!(
            "{} takes writes and hard links, owned by uid {}",
            root.display(),
            meta.uid()
        ),
    )
}

/// The TLS pair: loads, fits, and the certificate's end date (Unix seconds `now`).
pub fn tls(cert: &str, key: &str, now: u64) -> Finding {
    let part = "tls";
    if let Err(e) = crate::imap::tls::CertFiles::load(cert, key) {
        return bad(part, e.to_string());
    }
    let der = match rustls::pki_types::pem::PemObject::pem_file_iter(cert)
        .ok()
        .and_then(|mut it| it.next())
    {
        Some(Ok(d)) => d,
        _ => return bad(part, format!("--tls-cert {cert}: no certificate")),
    };
    let der: rustls::pki_types::CertificateDer<'static> = der;
    let Some(not_after) = not_after(&der) else {
        return bad(part, format!("--tls-cert {cert}: cannot read its validity"));
    };
    if not_after <= now {
        return bad(
            part,
            format!(
                "--tls-cert {cert} expired on {}; renew it (the server reloads it by itself)",
                crate::time::utc_timestamp(not_after)
            ),
        );
    }
    let days = (not_after - now) / 86_400;
    ok(
        part,
        format!(
            "{cert} fits its key, valid until {} ({days} days left){}",
            crate::time::utc_timestamp(not_after),
            if days < 14 { "; renew it soon" } else { "" }
        ),
    )
}

/// One DER element at the start of `b`: (tag, content, rest).
fn der(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&first, mut b) = b.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || b.len() < n {
            return None;
        }
        let v = b[..n]
            .iter()
            .fold(0usize, |a, &x| (a << 8) | usize::from(x));
        b = &b[n..];
        v
    };
    (b.len() >= len).then(|| (tag, &b[..len], &b[len..]))
}

/// The certificate's notAfter (RFC 5280 §4.1.2.5) as Unix seconds.
pub fn not_after(cert: &[u8]) -> Option<u64> {
    let (0x30, c, _) = der(cert)? else {
        return None;
    };
    let (0x30, tbs, _) = der(c)? else { return None };
    let mut rest = tbs;
    // version [0] (optional), serialNumber, signature, issuer, then validity.
    let (tag, _, r) = der(rest)?;
    rest = if tag == 0xa0 { der(r)?.2 } else { r };
    rest = der(rest)?.2; // signature
    rest = der(rest)?.2; // issuer
    let (0x30, validity, _) = der(rest)? else {
        return None;
    };
    let (_, _, after) = der(validity)?; // notBefore
    let (tag, t, _) = der(after)?;
    let s = std::str::from_utf8(t).ok()?;
    let digits = |a: usize, n: usize| s.get(a..a + n)?.parse::<u64>().ok();
    let (year, at) = match tag {
        // UTCTime: YYMMDDHHMMSSZ, 50..99 is 19xx.
        0x17 => {
            let y = digits(0, 2)?;
            (if y >= 50 { 1900 + y } else { 2000 + y }, 2)
        }
        // GeneralizedTime: YYYYMMDDHHMMSSZ.
        0x18 => (digits(0, 4)?, 4),
        _ => return None,
    };
    crate::time::from_civil(
        year,
        digits(at, 2)?,
        digits(at + 2, 2)?,
        digits(at + 4, 2)?,
        digits(at + 6, 2)?,
        digits(at + 8, 2)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_and_bad_input() {
        assert_eq!(
            der(&[0x30, 0x02, 1, 2, 9]),
            Some((0x30, &[1u8, 2][..], &[9u8][..]))
        );
        assert_eq!(
            der(&[0x30, 0x81, 0x02, 1, 2]),
            Some((0x30, &[1u8, 2][..], &[][..]))
        );
        assert_eq!(der(&[0x30, 0x05, 1]), None);
        assert_eq!(not_after(b"not a certificate"), None);
        assert_eq!(not_after(&[]), None);
    }
}
