//! The conformance suite: every script in tests/conformance/*.imap (format: harness.rs) played
//! against `s3imap serve` and against a private Dovecot 2.3 on loopback, each on its own copy
//! of the same Maildirs. A script must pass on both servers; where the RFCs allow both servers'
//! different answers, the script says so in a `differs` line with the RFC section.
//!
//! `CONFORMANCE=name[,name]` plays only those scripts; `CONFORMANCE_SERVER=s3imap|dovecot` only
//! one server (for working on a script; CI always plays all on both).

mod dovecot;
#[path = "conformance/harness.rs"]
mod harness;
mod support;

use harness::{Only, PASSWORD, Script, Seed};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};

/// The special-use folders s3imap creates at first login, configured the same in Dovecot so
/// that both start from the same folder list.
const DOVECOT_NAMESPACE: &str = r"
  mailbox INBOX {
    auto = subscribe
  }
  mailbox Drafts {
    auto = subscribe
    special_use = \Drafts
  }
  mailbox Sent {
    auto = subscribe
    special_use = \Sent
  }
  mailbox Trash {
    auto = subscribe
    special_use = \Trash
  }
  mailbox Junk {
    auto = subscribe
    special_use = \Junk
  }
  mailbox Archive {
    auto = subscribe
    special_use = \Archive
  }
";

/// Dovecot settings that make its answers comparable: no per-IP connection cap below what
/// the scripts open, no delay beyond s3imap's after a failed login.
const DOVECOT_CONF: &str = r"
mail_max_userip_connections = 100
auth_failure_delay = 2 secs
imap_idle_notify_interval = 1 secs
";

fn scripts() -> Vec<Script> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "imap"))
        .collect();
    paths.sort();
    let only: Option<Vec<String>> = std::env::var("CONFORMANCE")
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| v.split(',').map(str::to_string).collect());
    let mut out = Vec::new();
    for p in paths {
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        if only.as_ref().is_some_and(|o| !o.contains(&name)) {
            continue;
        }
        let text = fs::read_to_string(&p).unwrap();
        out.push(Script::parse(&name, &text).unwrap_or_else(|e| panic!("{e}")));
    }
    out
}

/// Maildir flag letters of IMAP flags, sorted as Maildir wants them.
fn letters(flags: &[String]) -> String {
    let mut l: Vec<char> = flags
        .iter()
        .filter_map(|f| match f.to_ascii_lowercase().as_str() {
            "\\draft" => Some('D'),
            "\\flagged" => Some('F'),
            "\\answered" => Some('R'),
            "\\seen" => Some('S'),
            "\\deleted" => Some('T'),
            _ => None,
        })
        .collect();
    l.sort_unstable();
    l.into_iter().collect()
}

/// Puts one script's folders and messages into `root` (the user's Maildir++ tree).
fn seed(root: &Path, script: &Script) {
    let user = s3imap::maildir::user_dir(root, &script.user).unwrap();
    s3imap::maildir::create(&user, false).unwrap();
    for f in &script.folders {
        s3imap::maildir::folders::create(&user, f).unwrap();
    }
    for (
        i,
        Seed {
            mailbox,
            file,
            flags,
            date,
        },
    ) in script.seeds.iter().enumerate()
    {
        let dir = if mailbox.eq_ignore_ascii_case("INBOX") {
            user.inbox()
        } else {
            let d = s3imap::maildir::folders::folder_path(&user, mailbox).unwrap();
            if !d.join("cur").is_dir() {
                s3imap::maildir::folders::create(&user, mailbox).unwrap();
            }
            d
        };
        let body = fs::read(file).unwrap();
        let vsize = body.len()
            + body
                .windows(2)
                .filter(|w| w[1] == b'\n' && w[0] != b'\r')
                .count()
            + usize::from(body.first() == Some(&b'\n'));
        let t = date.unwrap_or(1_767_261_600 + i as i64 * 60);
        let name = format!(
            "{t}.M{i}P1.conftest,S={},W={vsize}:2,{}",
            body.len(),
            letters(flags)
        );
        let path = dir.join("cur").join(name);
        fs::write(&path, &body).unwrap();
        let f = fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(UNIX_EPOCH + Duration::from_secs(t as u64))
            .unwrap();
    }
}

#[test]
fn conformance_scripts_pass_on_s3imap_and_dovecot() {
    let scripts = scripts();
    assert!(!scripts.is_empty(), "no scripts selected");
    let servers: Vec<Only> = match std::env::var("CONFORMANCE_SERVER").as_deref() {
        Ok("s3imap") => vec![Only::S3imap],
        Ok("dovecot") => vec![Only::Dovecot],
        _ => vec![Only::S3imap, Only::Dovecot],
    };
    let work = support::TempDir::new("conformance");
    let users: Vec<(String, String)> = scripts
        .iter()
        .map(|s| (s.user.clone(), PASSWORD.to_string()))
        .collect();
    let users_file = work.path().join("users");
    fs::write(
        &users_file,
        users
            .iter()
            .map(|(u, p)| format!("{u}:{{PLAIN}}{p}\n"))
            .collect::<String>(),
    )
    .unwrap();

    let mut ports = Vec::new();
    let mut _s3imap = None;
    let mut _dovecot = None;
    for server in &servers {
        let root = work.path().join(format!("{server:?}"));
        fs::create_dir_all(&root).unwrap();
        for s in &scripts {
            seed(&root, s);
        }
        match server {
            Only::S3imap => {
                let s = support::Serve::start(&users_file, &root);
                ports.push((*server, s.port));
                _s3imap = Some(s);
            }
            _ => {
                if !dovecot::require() {
                    continue;
                }
                let u: Vec<(&str, &str)> = users
                    .iter()
                    .map(|(a, b)| (a.as_str(), b.as_str()))
                    .collect();
                let d = dovecot::Dovecot::start_with(&root, &u, DOVECOT_NAMESPACE, DOVECOT_CONF);
                ports.push((*server, d.port));
                _dovecot = Some(d);
            }
        }
    }

    // Four scripts at a time per server: each script has its own user and Maildir.
    let failures = Mutex::new(Vec::new());
    let queue = Mutex::new(
        scripts
            .iter()
            .flat_map(|s| {
                ports
                    .iter()
                    .filter(move |p| s.only.is_none_or(|o| o == p.0))
                    .map(move |p| (s, *p))
            })
            .collect::<Vec<_>>(),
    );
    std::thread::scope(|sc| {
        for _ in 0..4 {
            sc.spawn(|| {
                loop {
                    let Some((script, (server, port))) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    if let Err(e) = harness::play(script, port, server) {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{}.imap on {server:?}: {e}", script.name));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    let exchanges: usize = scripts.iter().map(|s| s.exchanges).sum();
    eprintln!(
        "conformance: {} scripts, {exchanges} scripted exchanges, on {:?}: {} failed",
        scripts.len(),
        ports.iter().map(|p| p.0).collect::<Vec<_>>(),
        failures.len()
    );
    if let Some(d) = &_dovecot
        && !failures.is_empty()
        && failures.iter().any(|f| f.contains("on Dovecot"))
    {
        eprintln!("--- dovecot log (tail) ---");
        let log = d.log();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        for l in tail.into_iter().rev() {
            eprintln!("{l}");
        }
    }
    assert!(failures.is_empty(), "\n\n{}\n", failures.join("\n\n"));
    if std::env::var("CONFORMANCE").is_err() {
        assert!(
            exchanges >= 150,
            "the suite should script at least 150 exchanges, has {exchanges}"
        );
    }
}
