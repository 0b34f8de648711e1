//! `s3imap check`: reads the configuration serve and sync read (flags, then environment)
//! and runs [`crate::check`] on each part it names, one line per part. Exit codes: 0 all
//! good; 1 something to fix; 2 the configuration cannot even be read.

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::check::{self, Finding};
use crate::config::{self, Env, SyncFlags};
use argh::FromArgs;
use std::path::PathBuf;

/// Check the configuration: S3 access, KMS, the events queue, the users file, the mail root, the TLS pair.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check")]
pub struct CheckCmd {
    /// the S3 bucket (unset: S3 is not checked) [env S3IMAP_BUCKET]
    #[argh(option)]
    pub bucket: Option<String>,
    /// the key prefix the SES rule writes under [env S3IMAP_PREFIX]
    #[argh(option)]
    pub prefix: Option<String>,
    /// the mail root (default /var/mail/vmail) [env S3IMAP_MAIL_ROOT]
    #[argh(option)]
    pub mail_root: Option<String>,
    /// the Dovecot passwd-file (default /etc/s3imap/users) [env S3IMAP_USERS]
    #[argh(option)]
    pub users: Option<String>,
    /// PEM certificate chain (unset: TLS is not checked) [env S3IMAP_TLS_CERT]
    #[argh(option)]
    pub tls_cert: Option<String>,
    /// PEM private key [env S3IMAP_TLS_KEY]
    #[argh(option)]
    pub tls_key: Option<String>,
    /// the SQS queue URL of SES's notifications (unset: not checked) [env S3IMAP_EVENTS_QUEUE]
    #[argh(option)]
    pub events_queue: Option<String>,
}

fn usage(e: impl std::fmt::Display) -> i32 {
    crate::error!("check", "{e}");
    EXIT_USAGE
}

pub fn run(c: CheckCmd, env: &Env) -> i32 {
    let get = |flag: &Option<String>, var: &str| config::flag_or_env(flag, env, var);
    let mut findings: Vec<Finding> = Vec::new();
    let mail_root = match config::mail_root(&c.mail_root, env) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let users = match get(&c.users, "S3IMAP_USERS") {
        Ok(u) => PathBuf::from(u.unwrap_or_else(|| super::user::DEFAULT_USERS.into())),
        Err(e) => return usage(e),
    };
    match get(&c.bucket, "S3IMAP_BUCKET") {
        Ok(None) => {}
        Ok(Some(bucket)) => {
            let flags = SyncFlags {
                bucket: Some(bucket),
                prefix: c.prefix.clone(),
                mail_root: Some(mail_root.to_string_lossy().into_owned()),
                users: Some(users.to_string_lossy().into_owned()),
                ..Default::default()
            };
            match config::sync_config(&flags, env) {
                Ok(cfg) => {
                    let client = crate::s3::client::Client::new(cfg.s3.clone());
                    findings.push(check::s3(&client, &cfg.prefix));
                    let kms = crate::aws::kms::Kms::new(
                        cfg.kms_endpoint.clone(),
                        cfg.s3.region.clone(),
                        cfg.s3.credentials.clone(),
                        cfg.s3.retry.clone(),
                    );
                    findings.push(check::kms(&client, &kms, &cfg.prefix));
                    match get(&c.events_queue, "S3IMAP_EVENTS_QUEUE") {
                        Ok(None) => {}
                        Ok(Some(u)) => match crate::aws::sqs::QueueUrl::parse(&u) {
                            Ok(q) => findings.push(check::events(&crate::aws::sqs::Queue::new(
                                &q,
                                &cfg.s3.region,
                                cfg.s3.credentials.clone(),
                                cfg.s3.retry.clone(),
                            ))),
                            Err(e) => findings.push(Finding {
                                part: "events",
                                ok: false,
                                detail: format!("{u:?}: {e}"),
                            }),
                        },
                        Err(e) => return usage(e),
                    }
                }
                Err(e) => findings.push(Finding {
                    part: "s3",
                    ok: false,
                    detail: e.to_string(),
                }),
            }
        }
        Err(e) => return usage(e),
    }
    findings.push(check::users(&users));
    findings.push(check::mail_root(&mail_root));
    let (cert, key) = match (
        get(&c.tls_cert, "S3IMAP_TLS_CERT"),
        get(&c.tls_key, "S3IMAP_TLS_KEY"),
    ) {
        (Ok(c), Ok(k)) => (c, k),
        (Err(e), _) | (_, Err(e)) => return usage(e),
    };
    match (cert, key) {
        (None, None) => {}
        (Some(cert), Some(key)) => findings.push(check::tls(&cert, &key, crate::sync::now_unix())),
        _ => findings.push(Finding {
            part: "tls",
            ok: false,
            detail: "give both --tls-cert and --tls-key, or neither".into(),
        }),
    }
    let mut failed = 0;
    for f in &findings {
        println!(
            "{} {}: {}",
            if f.ok { "ok  " } else { "FAIL" },
            f.part,
            f.detail
        );
        failed += usize::from(!f.ok);
    }
    if failed > 0 {
        println!("{failed} of {} checks failed", findings.len());
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}
