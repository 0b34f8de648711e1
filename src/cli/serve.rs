//! `s3imap serve`: the IMAP server over the mail root, with the S3 sync running in-process
//! when a bucket is configured.

use crate::auth::users::UserDb;
use crate::config::{self, Env, SyncFlags};
use crate::imap::server::{self, ServerConfig};
use crate::imap::session::Context;
use crate::sync::Syncer;
use argh::FromArgs;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// With an events queue, the listing leaves objects younger than this to it: longer than the
/// first retries of a message that failed (30 s doubling), so that its notification, which
/// names the Bcc recipients, and not the header, decides where it goes.
const EVENTS_GRACE: Duration = Duration::from_secs(60 * 60);

/// Serve the Maildirs over IMAP (and run the S3 sync in-process when a bucket is set).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "serve")]
pub struct ServeCmd {
    /// plaintext IMAP address (default 0.0.0.0:143) [env S3IMAP_LISTEN]
    #[argh(option)]
    pub listen: Option<String>,
    /// implicit-TLS IMAP address, e.g. 0.0.0.0:993 [env S3IMAP_TLS_LISTEN]
    #[argh(option)]
    pub tls_listen: Option<String>,
    /// PEM certificate chain for TLS (993 and STARTTLS) [env S3IMAP_TLS_CERT]
    #[argh(option)]
    pub tls_cert: Option<String>,
    /// PEM private key for TLS [env S3IMAP_TLS_KEY]
    #[argh(option)]
    pub tls_key: Option<String>,
    /// the Dovecot passwd-file of users [env S3IMAP_USERS]
    #[argh(option)]
    pub users: Option<String>,
    /// the mail root holding <address>/ Maildirs (default /var/mail/vmail) [env S3IMAP_MAIL_ROOT]
    #[argh(option)]
    pub mail_root: Option<String>,
    /// how often the in-process sync lists the bucket (default 60s; 15m with --events-queue) [env S3IMAP_SYNC_INTERVAL]
    #[argh(option)]
    pub sync_interval: Option<String>,
    /// SQS queue URL that SES's notifications reach (through SNS): new mail in under a second, to every envelope recipient [env S3IMAP_EVENTS_QUEUE]
    #[argh(option)]
    pub events_queue: Option<String>,
    /// most simultaneous connections (default 1000) [env S3IMAP_MAX_CONNECTIONS]
    #[argh(option)]
    pub max_connections: Option<String>,
    /// connections from one address, IPv6 by its /64 (default 100) [env S3IMAP_MAX_CONNECTIONS_PER_ADDRESS]
    #[argh(option)]
    pub max_connections_per_address: Option<String>,
    /// connections from one address that have not logged in (default 10) [env S3IMAP_MAX_UNAUTHENTICATED_PER_ADDRESS]
    #[argh(option)]
    pub max_unauthenticated_per_address: Option<String>,
    /// how long after connecting a client must have logged in (default 60s) [env S3IMAP_LOGIN_DEADLINE]
    #[argh(option)]
    pub login_deadline: Option<String>,
    /// how long the first failed login waits for its answer; each further one doubles it, up to 8 times (default 2s) [env S3IMAP_LOGIN_FAILURE_DELAY]
    #[argh(option)]
    pub login_failure_delay: Option<String>,
    /// failed logins from one address within 10 minutes that block it; 0: never (default 10) [env S3IMAP_LOGIN_BLOCK_AFTER]
    #[argh(option)]
    pub login_block_after: Option<String>,
    /// how long such an address stays blocked (default 15m) [env S3IMAP_LOGIN_BLOCK_FOR]
    #[argh(option)]
    pub login_block_for: Option<String>,
    /// password checks run at once at most (default: one per 16 GiB of memory available, at least one, at most one per core) [env S3IMAP_AUTH_WORKERS]
    #[argh(option)]
    pub auth_workers: Option<String>,
    /// sessions one user may have at once (default 30) [env S3IMAP_MAX_USER_CONNECTIONS]
    #[argh(option)]
    pub max_user_connections: Option<String>,
    /// allow LOGIN without TLS: yes (default, for a VPN or tailnet) or no [env S3IMAP_PLAINTEXT_AUTH]
    #[argh(option)]
    pub plaintext_auth: Option<String>,
    /// what a login's password may be: password (the users file's), token (app passwords only) or both (default) [env S3IMAP_AUTH]
    #[argh(option)]
    pub auth: Option<String>,
    /// the app password directory (default <mail root>/.s3imap/tokens) [env S3IMAP_TOKEN_DIR]
    #[argh(option)]
    pub token_dir: Option<String>,
    /// health and metrics over HTTP (/healthz, /readyz, /metrics), e.g. 0.0.0.0:9090; off unless set [env S3IMAP_HTTP_LISTEN]
    #[argh(option)]
    pub http_listen: Option<String>,
    /// the S3 bucket to sync from; unset: no sync [env S3IMAP_BUCKET]
    #[argh(option)]
    pub bucket: Option<String>,
}

/// Password checks at once by default: ARGON2ID at Dovecot's settings takes 64 MiB, and checks
/// may hold at most 1/256 of the memory this process may use (the cgroup's limit, else what
/// the system has available): one per 16 GiB, at least one, at most one per core. A Pi (or a
/// pod limited to 64 MiB) checks one password at a time.
fn default_auth_workers() -> usize {
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let available = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find(|l| l.starts_with("MemAvailable:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    let mem = match (cgroup, available) {
        (Some(c), Some(a)) => c.min(a),
        (Some(c), None) => c,
        (None, Some(a)) => a,
        (None, None) => 256 << 20,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    ((mem / (16 << 30)) as usize).clamp(1, cores)
}

fn usage(e: impl std::fmt::Display) -> i32 {
    crate::error!("config", "{e}");
    super::EXIT_USAGE
}

pub fn run(c: ServeCmd, env: &Env) -> i32 {
    let get = |flag: &Option<String>, var: &str| config::flag_or_env(flag, env, var);
    let listen = match get(&c.listen, "S3IMAP_LISTEN") {
        Ok(v) => v.unwrap_or_else(|| "0.0.0.0:143".into()),
        Err(e) => return usage(e),
    };
    let listen: Option<SocketAddr> = if listen == "none" {
        None
    } else {
        match listen.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                return usage(format!(
                    "--listen {listen:?}: expected ADDRESS:PORT, e.g. 0.0.0.0:143"
                ));
            }
        }
    };
    let tls_listen: Option<SocketAddr> = match get(&c.tls_listen, "S3IMAP_TLS_LISTEN") {
        Ok(None) => None,
        Ok(Some(a)) => match a.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                return usage(format!(
                    "--tls-listen {a:?}: expected ADDRESS:PORT, e.g. 0.0.0.0:993"
                ));
            }
        },
        Err(e) => return usage(e),
    };
    let tls = match (
        get(&c.tls_cert, "S3IMAP_TLS_CERT"),
        get(&c.tls_key, "S3IMAP_TLS_KEY"),
    ) {
        (Ok(None), Ok(None)) => None,
        (Ok(Some(cert)), Ok(Some(key))) => match crate::imap::tls::CertFiles::load(&cert, &key) {
            Ok(files) => {
                // Re-read when the files change (cert-manager, certbot renewals).
                files.watch();
                match crate::imap::tls::server_config(files) {
                    Ok(t) => Some(t),
                    Err(e) => return usage(e),
                }
            }
            Err(e) => return usage(e),
        },
        (Ok(_), Ok(_)) => return usage("--tls-cert and --tls-key go together"),
        (Err(e), _) | (_, Err(e)) => return usage(e),
    };
    if tls_listen.is_some() && tls.is_none() {
        return usage("--tls-listen needs --tls-cert and --tls-key");
    }
    let users_path = match get(&c.users, "S3IMAP_USERS") {
        Ok(Some(p)) => p,
        Ok(None) => {
            return usage("the users file is not set: pass --users FILE or set S3IMAP_USERS");
        }
        Err(e) => return usage(e),
    };
    let users = match UserDb::open(std::path::Path::new(&users_path)) {
        Ok(u) => u,
        Err(e) => return usage(e),
    };
    let mail_root = match config::mail_root(&c.mail_root, env) {
        Ok(m) => m,
        Err(e) => return usage(e),
    };
    let max_connections = match get(&c.max_connections, "S3IMAP_MAX_CONNECTIONS") {
        Ok(None) => 1000,
        Ok(Some(n)) => match n.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => return usage(format!("--max-connections {n:?}: a positive number")),
        },
        Err(e) => return usage(e),
    };
    let count = |flag: &Option<String>, var: &str, name: &str, default: usize| match get(flag, var)
    {
        Ok(None) => Ok(default),
        Ok(Some(n)) => match n.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("--{name} {n:?}: a positive number")),
        },
        Err(e) => Err(e.to_string()),
    };
    let mut admission = crate::imap::admission::Limits::for_max(max_connections);
    match count(
        &c.max_connections_per_address,
        "S3IMAP_MAX_CONNECTIONS_PER_ADDRESS",
        "max-connections-per-address",
        admission.per_address,
    ) {
        Ok(n) => admission.per_address = n,
        Err(e) => return usage(e),
    }
    match count(
        &c.max_unauthenticated_per_address,
        "S3IMAP_MAX_UNAUTHENTICATED_PER_ADDRESS",
        "max-unauthenticated-per-address",
        admission.unauthenticated_per_address,
    ) {
        Ok(n) => admission.unauthenticated_per_address = n,
        Err(e) => return usage(e),
    }
    let login_deadline = match get(&c.login_deadline, "S3IMAP_LOGIN_DEADLINE") {
        Ok(None) => Duration::from_secs(60),
        Ok(Some(s)) => match config::parse_duration(&s) {
            Ok(d) if d >= Duration::from_secs(1) => d,
            _ => return usage(format!("--login-deadline {s:?}: a duration of at least 1s")),
        },
        Err(e) => return usage(e),
    };
    let max_user_connections = match get(&c.max_user_connections, "S3IMAP_MAX_USER_CONNECTIONS") {
        Ok(None) => 30,
        Ok(Some(n)) => match n.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => return usage(format!("--max-user-connections {n:?}: a positive number")),
        },
        Err(e) => return usage(e),
    };
    let plaintext_auth = match get(&c.plaintext_auth, "S3IMAP_PLAINTEXT_AUTH") {
        Ok(None) => true,
        Ok(Some(v)) => match v.as_str() {
            "yes" | "true" | "1" => true,
            "no" | "false" | "0" => false,
            _ => return usage(format!("--plaintext-auth {v:?}: yes or no")),
        },
        Err(e) => return usage(e),
    };
    let duration =
        |flag: &Option<String>, var: &str, name: &str, default: Duration| match get(flag, var) {
            Ok(None) => Ok(default),
            Ok(Some(s)) => config::parse_duration(&s)
                .map_err(|_| format!("--{name} {s:?}: a duration such as 2s or 15m")),
            Err(e) => Err(e.to_string()),
        };
    let mut policy = crate::auth::throttle::Policy::default();
    match duration(
        &c.login_failure_delay,
        "S3IMAP_LOGIN_FAILURE_DELAY",
        "login-failure-delay",
        policy.first_delay,
    ) {
        Ok(d) => {
            policy.first_delay = d;
            policy.max_delay = d.saturating_mul(8);
        }
        Err(e) => return usage(e),
    }
    match get(&c.login_block_after, "S3IMAP_LOGIN_BLOCK_AFTER") {
        Ok(None) => {}
        Ok(Some(n)) => match n.parse::<u32>() {
            Ok(0) => policy.block_after = u32::MAX,
            Ok(n) => policy.block_after = n,
            Err(_) => return usage(format!("--login-block-after {n:?}: a number (0: never)")),
        },
        Err(e) => return usage(e),
    }
    match duration(
        &c.login_block_for,
        "S3IMAP_LOGIN_BLOCK_FOR",
        "login-block-for",
        policy.block_for,
    ) {
        Ok(d) => policy.block_for = d,
        Err(e) => return usage(e),
    }
    let auth_workers = match count(
        &c.auth_workers,
        "S3IMAP_AUTH_WORKERS",
        "auth-workers",
        default_auth_workers(),
    ) {
        Ok(n) => n,
        Err(e) => return usage(e),
    };
    let mut context = Context::new(
        mail_root.clone(),
        users,
        plaintext_auth,
        max_user_connections,
    );
    context.throttle = crate::auth::throttle::Throttle::new(policy);
    context.auth_mode = match get(&c.auth, "S3IMAP_AUTH") {
        Ok(None) => crate::auth::login::AuthMode::Both,
        Ok(Some(m)) => match crate::auth::login::AuthMode::parse(&m) {
            Some(m) => m,
            None => return usage(format!("--auth {m:?}: password, token or both")),
        },
        Err(e) => return usage(e),
    };
    let mail_root_flag = Some(mail_root.to_string_lossy().into_owned());
    match super::token::token_dir(&c.token_dir, &mail_root_flag, env) {
        Ok(d) => context.tokens = crate::auth::tokens::TokenStore::new(d),
        Err(e) => return usage(e),
    }
    let ctx = Arc::new(context);
    // The in-process sync, when a bucket is configured.
    let bucket = match get(&c.bucket, "S3IMAP_BUCKET") {
        Ok(b) => b,
        Err(e) => return usage(e),
    };
    let http_listen: Option<SocketAddr> = match get(&c.http_listen, "S3IMAP_HTTP_LISTEN") {
        Ok(None) => None,
        Ok(Some(a)) => match a.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                return usage(format!(
                    "--http-listen {a:?}: expected ADDRESS:PORT, e.g. 0.0.0.0:9090"
                ));
            }
        },
        Err(e) => return usage(e),
    };
    let mut sync_every = None;
    let events_queue = match get(&c.events_queue, "S3IMAP_EVENTS_QUEUE") {
        Ok(None) => None,
        Ok(Some(_)) if bucket.is_none() => {
            return usage(
                "--events-queue needs --bucket (S3IMAP_BUCKET): the notifications name \
                          objects in it"
                    .to_string(),
            );
        }
        Ok(Some(u)) => match crate::aws::sqs::QueueUrl::parse(&u) {
            Ok(q) => Some(q),
            Err(e) => return usage(format!("--events-queue {u:?}: {e}")),
        },
        Err(e) => return usage(e),
    };
    if bucket.is_some() {
        let flags = SyncFlags {
            bucket: bucket.clone(),
            mail_root: Some(mail_root.to_string_lossy().into_owned()),
            users: Some(users_path.clone()),
            ..Default::default()
        };
        let mut cfg = match config::sync_config(&flags, env) {
            Ok(c) => c,
            Err(e) => return usage(e),
        };
        if events_queue.is_some() {
            // The listing is the safety net; fresh objects are the events path's, which knows
            // their envelope recipients.
            cfg.fresh_grace = EVENTS_GRACE;
        }
        let every = match get(&c.sync_interval, "S3IMAP_SYNC_INTERVAL") {
            Ok(None) if events_queue.is_some() => Duration::from_secs(15 * 60),
            Ok(None) => Duration::from_secs(60),
            Ok(Some(s)) => match config::parse_duration(&s) {
                Ok(d) if d >= Duration::from_secs(1) => d,
                _ => return usage(format!("--sync-interval {s:?}: a duration of at least 1s")),
            },
            Err(e) => return usage(e),
        };
        sync_every = Some(every);
        let wake = Arc::clone(&ctx);
        // Each delivery wakes the sessions of that mailbox only.
        let queue = events_queue.as_ref().map(|q| {
            crate::aws::sqs::Queue::new(
                q,
                &cfg.s3.region,
                cfg.s3.credentials.clone(),
                cfg.s3.retry.clone(),
            )
        });
        let syncer = Arc::new(Syncer::new(cfg).on_delivery(move |maildir| {
            wake.mailboxes.changed(maildir);
        }));
        if let Some(queue) = queue {
            let syncer = Arc::clone(&syncer);
            crate::info!("events", "receiving notifications from {}", queue.url());
            std::thread::Builder::new()
                .name("events".into())
                .spawn(move || crate::sync::events::run(&syncer, &queue, || true))
                .expect("spawn the events thread");
        }
        std::thread::Builder::new()
            .name("sync".into())
            .spawn(move || {
                loop {
                    let result = syncer.run_once();
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    let m = crate::metrics::get();
                    match &result {
                        Ok(s) => m.sync_pass(Some((s.delivered, s.skipped, s.failed)), now),
                        // The events path holds the lock: not a failed pass.
                        Err(e) if e.is_busy() => {}
                        Err(_) => m.sync_pass(None, now),
                    }
                    match result {
                        Ok(s) if s.delivered > 0 || s.failed > 0 => {
                            crate::info!("sync", "sync: {s}")
                        }
                        Ok(_) => {}
                        Err(e) if e.is_busy() => crate::debug!("sync", "{e}"),
                        Err(e) => crate::error!("sync", "sync failed: {e}"),
                    }
                    std::thread::sleep(every);
                }
            })
            .expect("spawn the sync thread");
    }
    let cfg = ServerConfig {
        http_listen,
        sync_every,
        events: events_queue.is_some(),
        listen,
        tls_listen,
        tls,
        admission,
        auth_workers,
        watchdog: crate::notify::watchdog_interval(),
        login_deadline,
        login_timeout: login_deadline.min(Duration::from_secs(30)),
        threads: std::thread::available_parallelism()
            .map(|n| n.get().min(4))
            .unwrap_or(2),
        ..ServerConfig::default()
    };
    match server::run(cfg, ctx, |plain, tls| {
        crate::info!(
            "imap",
            "listening{}{}{}",
            plain.map(|a| format!(" on {a}")).unwrap_or_default(),
            tls.map(|a| format!(" and {a} (TLS)")).unwrap_or_default(),
            if bucket.is_some() {
                ", syncing S3 in-process"
            } else {
                ""
            }
        );
        // systemd (Type=notify): the listeners are bound, clients can connect.
        crate::notify::notify("READY=1");
    }) {
        Ok(()) => super::EXIT_OK,
        Err(e) => {
            crate::error!("imap", "{e}");
            super::EXIT_FAILED
        }
    }
}
