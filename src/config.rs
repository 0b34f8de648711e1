//! Configuration: flags, then environment variables (each also readable from a file named by
//! `<NAME>_FILE`, for Kubernetes secrets and systemd credentials), then defaults — into one
//! typed value per command, validated with messages that say what to change.
//!
//! AWS settings are read as the AWS tools read them: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` / `AWS_DEFAULT_REGION`,
//! `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, `AWS_MAX_ATTEMPTS`, and the shared credentials
//! file (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`, profile `AWS_PROFILE`).

use crate::s3::client::{ClientConfig, Endpoint, RetryPolicy};
use crate::s3::sigv4::Credentials;
use crate::sync::route::{self, Folders};
use crate::sync::{After, SyncConfig};
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where settings come from: the process environment, or a map in tests.
pub struct Env {
    vars: Option<HashMap<String, String>>,
}

impl Env {
    /// The real environment.
    pub fn process() -> Env {
        Env { vars: None }
    }

    /// A fixed set of variables (tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
        Env {
            vars: Some(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        }
    }

    fn raw(&self, name: &str) -> Option<String> {
        match &self.vars {
            Some(m) => m.get(name).cloned(),
            None => std::env::var(name).ok(),
        }
        .filter(|v| !v.is_empty())
    }

    /// `NAME`, or the contents of the file `NAME_FILE` names (trailing newline removed).
    pub fn get(&self, name: &str) -> Result<Option<String>, ConfigError> {
        let file_var = format!("{name}_FILE");
        match (self.raw(name), self.raw(&file_var)) {
            (Some(_), Some(_)) => Err(ConfigError::Both {
                name: name.to_string(),
            }),
            (Some(v), None) => Ok(Some(v)),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(&path).map_err(|err| ConfigError::File {
                    var: file_var,
                    path: path.clone(),
                    err: err.to_string(),
                })?;
                let v = text.trim_end_matches(['\n', '\r']).to_string();
                Ok(if v.is_empty() { None } else { Some(v) })
            }
            (None, None) => Ok(None),
        }
    }
}

/// A setting that is missing or wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    Missing {
        what: String,
        hint: String,
    },
    Both {
        name: String,
    },
    File {
        var: String,
        path: String,
        err: String,
    },
    Invalid {
        what: String,
        value: String,
        why: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Missing { what, hint } => write!(f, "{what} is not set: {hint}"),
            ConfigError::Both { name } => {
                write!(f, "both {name} and {name}_FILE are set; set only one")
            }
            ConfigError::File { var, path, err } => {
                write!(f, "{var}={path}: cannot read the file: {err}")
            }
            ConfigError::Invalid { what, value, why } => write!(f, "{what} {value:?}: {why}"),
        }
    }
}

impl std::error::Error for ConfigError {}

fn invalid(what: &str, value: &str, why: impl fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        what: what.to_string(),
        value: value.to_string(),
        why: why.to_string(),
    }
}

/// A flag's value, else the environment variable's (or its `_FILE`).
pub fn flag_or_env(
    flag: &Option<String>,
    env: &Env,
    var: &str,
) -> Result<Option<String>, ConfigError> {
    match flag {
        Some(v) if !v.is_empty() => Ok(Some(v.clone())),
        _ => env.get(var),
    }
}

/// Why a duration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationError {
    NotANumber,
    UnknownUnit,
    OutOfRange,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DurationError::NotANumber => "not a duration (e.g. 30s, 5m, 1h)",
            DurationError::UnknownUnit => "unknown unit (use ms, s, m, h or d)",
            DurationError::OutOfRange => "out of range",
        })
    }
}

impl std::error::Error for DurationError {}

/// `90`, `90s`, `500ms`, `5m`, `1h`, `1d`.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let n: f64 = num.parse().map_err(|_| DurationError::NotANumber)?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "sec" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        _ => return Err(DurationError::UnknownUnit),
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(DurationError::OutOfRange);
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The region requests are signed for.
pub fn region(env: &Env) -> Result<String, ConfigError> {
    Ok(env
        .get("AWS_REGION")?
        .or(env.get("AWS_DEFAULT_REGION")?)
        .unwrap_or_else(|| "us-east-1".to_string()))
}

/// Credentials from the environment, else from the shared credentials file.
pub fn credentials(env: &Env) -> Result<Credentials, ConfigError> {
    let id = env.get("AWS_ACCESS_KEY_ID")?;
    let secret = env.get("AWS_SECRET_ACCESS_KEY")?;
    let token = env.get("AWS_SESSION_TOKEN")?;
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Credentials {
            access_key_id,
            secret_access_key,
            session_token: token,
        }),
        (Some(_), None) => Err(ConfigError::Missing {
            what: "AWS_SECRET_ACCESS_KEY".into(),
            hint: "AWS_ACCESS_KEY_ID is set, so set AWS_SECRET_ACCESS_KEY (or \
                   AWS_SECRET_ACCESS_KEY_FILE) too"
                .into(),
        }),
        (None, Some(_)) => Err(ConfigError::Missing {
            what: "AWS_ACCESS_KEY_ID".into(),
            hint: "AWS_SECRET_ACCESS_KEY is set, so set AWS_ACCESS_KEY_ID (or \
                   AWS_ACCESS_KEY_ID_FILE) too"
                .into(),
        }),
        (None, None) => shared_credentials(env)?.ok_or_else(|| ConfigError::Missing {
            what: "AWS credentials".into(),
            hint: "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or their _FILE variants), \
                   or a profile in ~/.aws/credentials"
                .into(),
        }),
    }
}

/// The `[profile]` of the shared credentials file, if the file exists.
fn shared_credentials(env: &Env) -> Result<Option<Credentials>, ConfigError> {
    let path = match env.get("AWS_SHARED_CREDENTIALS_FILE")? {
        Some(p) => PathBuf::from(p),
        None => match env.raw("HOME") {
            Some(h) => PathBuf::from(h).join(".aws").join("credentials"),
            None => return Ok(None),
        },
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let profile = env.get("AWS_PROFILE")?.unwrap_or_else(|| "default".into());
    let mut in_profile = false;
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') && l.ends_with(']') {
            in_profile = l[1..l.len() - 1].trim() == profile;
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((k, v)) = l.split_once('=') {
            let v = Some(v.trim().to_string());
            match k.trim() {
                "aws_access_key_id" => id = v,
                "aws_secret_access_key" => secret = v,
                "aws_session_token" => token = v,
                _ => {}
            }
        }
    }
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Some(Credentials {
            access_key_id,
            secret_access_key,
            session_token: token,
        })),
        _ => Ok(None),
    }
}

/// KMS's endpoint: `AWS_ENDPOINT_URL_KMS`, else `AWS_ENDPOINT_URL`, else AWS's for the region.
pub fn kms_endpoint(env: &Env, region: &str) -> Result<Endpoint, ConfigError> {
    match env
        .get("AWS_ENDPOINT_URL_KMS")?
        .or(env.get("AWS_ENDPOINT_URL")?)
    {
        Some(url) => {
            Endpoint::parse_url(&url).map_err(|why| invalid("AWS_ENDPOINT_URL_KMS", &url, why))
        }
        None => Ok(crate::aws::kms::Kms::aws_endpoint(region)),
    }
}

/// The S3 client settings for `bucket`.
pub fn s3_client(env: &Env, bucket: &str) -> Result<ClientConfig, ConfigError> {
    let region = region(env)?;
    let endpoint = match env
        .get("AWS_ENDPOINT_URL_S3")?
        .or(env.get("AWS_ENDPOINT_URL")?)
    {
        Some(url) => {
            Endpoint::parse_url(&url).map_err(|why| invalid("AWS_ENDPOINT_URL", &url, why))?
        }
        None => Endpoint::aws(&region, bucket),
    };
    let mut retry = RetryPolicy::default();
    if let Some(n) = env.get("AWS_MAX_ATTEMPTS")? {
        retry.attempts = n
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=20).contains(n))
            .ok_or_else(|| invalid("AWS_MAX_ATTEMPTS", &n, "must be a number from 1 to 20"))?;
    }
    Ok(ClientConfig {
        endpoint,
        region,
        bucket: bucket.to_string(),
        credentials: credentials(env)?,
        retry,
    })
}

/// Why a bucket name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketNameError {
    Characters,
    Ends,
}

impl fmt::Display for BucketNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BucketNameError::Characters => {
                "a bucket name is 3 to 63 lower-case letters, digits, '.' and '-'"
            }
            BucketNameError::Ends => "a bucket name starts and ends with a letter or digit",
        })
    }
}

/// S3 bucket naming rules, so a typo is caught before any request.
pub fn check_bucket(b: &str) -> Result<(), BucketNameError> {
    let ok_chars = b
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-');
    if !(3..=63).contains(&b.len()) || !ok_chars {
        return Err(BucketNameError::Characters);
    }
    if !b.as_bytes()[0].is_ascii_alphanumeric()
        || !b.as_bytes()[b.len() - 1].is_ascii_alphanumeric()
    {
        return Err(BucketNameError::Ends);
    }
    Ok(())
}

/// The sync's own flags, as given on the command line (all optional there).
#[derive(Debug, Default, Clone)]
pub struct SyncFlags {
    pub bucket: Option<String>,
    pub prefix: Option<String>,
    pub mail_root: Option<String>,
    pub users: Option<String>,
    pub catch_all: Option<String>,
    pub after: Option<String>,
    pub junk_folder: Option<String>,
    pub quarantine_folder: Option<String>,
    pub workers: Option<String>,
}

pub const DEFAULT_MAIL_ROOT: &str = "/var/mail/vmail";

/// The mail root from `--mail-root`, `S3IMAP_MAIL_ROOT` or the default.
pub fn mail_root(flag: &Option<String>, env: &Env) -> Result<PathBuf, ConfigError> {
    Ok(PathBuf::from(
        flag_or_env(flag, env, "S3IMAP_MAIL_ROOT")?.unwrap_or_else(|| DEFAULT_MAIL_ROOT.into()),
    ))
}

/// Builds and checks the sync configuration.
pub fn sync_config(f: &SyncFlags, env: &Env) -> Result<SyncConfig, ConfigError> {
    let bucket =
        flag_or_env(&f.bucket, env, "S3IMAP_BUCKET")?.ok_or_else(|| ConfigError::Missing {
            what: "the bucket".into(),
            hint: "pass --bucket NAME or set S3IMAP_BUCKET".into(),
        })?;
    check_bucket(&bucket).map_err(|why| invalid("bucket", &bucket, why))?;
    let prefix = flag_or_env(&f.prefix, env, "S3IMAP_PREFIX")?.unwrap_or_default();
    let users = flag_or_env(&f.users, env, "S3IMAP_USERS")?.map(PathBuf::from);
    let catch_all = flag_or_env(&f.catch_all, env, "S3IMAP_CATCH_ALL")?;
    if let Some(c) = &catch_all {
        route::check_address(c).map_err(|why| invalid("--catch-all", c, why))?;
    }
    let after = match flag_or_env(&f.after, env, "S3IMAP_AFTER")? {
        Some(a) => After::parse(&a).map_err(|why| invalid("--after", &a, why))?,
        None => After::Keep,
    };
    if let After::Move(p) = &after
        && p == &prefix
    {
        return Err(invalid(
            "--after",
            &format!("move:{p}"),
            "moving into the synced prefix itself would do nothing; pick another prefix",
        ));
    }
    let mut folders = Folders::default();
    if let Some(j) = flag_or_env(&f.junk_folder, env, "S3IMAP_JUNK_FOLDER")? {
        route::check_folder(&j).map_err(|why| invalid("--junk-folder", &j, why))?;
        folders.junk = j;
    }
    if let Some(q) = flag_or_env(&f.quarantine_folder, env, "S3IMAP_QUARANTINE_FOLDER")? {
        route::check_folder(&q).map_err(|why| invalid("--quarantine-folder", &q, why))?;
        folders.quarantine = q;
    }
    let workers = match flag_or_env(&f.workers, env, "S3IMAP_WORKERS")? {
        Some(w) => w
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=256).contains(n))
            .ok_or_else(|| invalid("--workers", &w, "must be a number from 1 to 256"))?,
        None => DEFAULT_WORKERS,
    };
    let s3 = s3_client(env, &bucket)?;
    Ok(SyncConfig {
        kms_endpoint: kms_endpoint(env, &s3.region)?,
        fresh_grace: std::time::Duration::ZERO,
        s3,
        prefix,
        mail_root: mail_root(&f.mail_root, env)?,
        users,
        catch_all,
        folders,
        after,
        workers,
        progress_line: false,
        adopt: false,
    })
}

/// Parallel downloads by default.
pub const DEFAULT_WORKERS: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;

    const AWS: [(&str, &str); 2] = [
        ("AWS_ACCESS_KEY_ID", "AKID"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
    ];

    #[test]
    fn file_variants_and_conflicts() {
        let dir = std::env::temp_dir().join(format!("s3imap-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("secret");
        std::fs::write(&p, "from-file\n").unwrap();
        let ps = p.to_str().unwrap();
        let env = Env::from_pairs([("X_FILE", ps)]);
        assert_eq!(env.get("X").unwrap().as_deref(), Some("from-file"));
        let env = Env::from_pairs([("X", "a"), ("X_FILE", ps)]);
        assert_eq!(
            env.get("X").unwrap_err(),
            ConfigError::Both { name: "X".into() }
        );
        let env = Env::from_pairs([("X_FILE", "/nonexistent/x")]);
        assert!(
            env.get("X")
                .unwrap_err()
                .to_string()
                .contains("X_FILE=/nonexistent/x")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn sync_config_from_env_and_flags() {
        let mut pairs = AWS.to_vec();
        pairs.extend([
            ("S3IMAP_BUCKET", "mail-in"),
            ("S3IMAP_PREFIX", "inbound/"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
        ]);
        let env = Env::from_pairs(pairs);
        let flags = SyncFlags {
            after: Some("move:done/".into()),
            ..Default::default()
        };
        let c = sync_config(&flags, &env).unwrap();
        assert_eq!(c.s3.bucket, "mail-in");
        assert_eq!(c.prefix, "inbound/");
        assert_eq!(c.s3.region, "eu-west-1");
        assert_eq!(c.s3.endpoint.authority, "127.0.0.1:9000");
        assert_eq!(c.after, After::Move("done/".into()));
        assert_eq!(c.mail_root, PathBuf::from(DEFAULT_MAIL_ROOT));
        // A flag beats the environment.
        let flags = SyncFlags {
            bucket: Some("other-bucket".into()),
            ..Default::default()
        };
        assert_eq!(sync_config(&flags, &env).unwrap().s3.bucket, "other-bucket");
    }

    #[test]
    fn helpful_errors() {
        let env = Env::from_pairs(AWS);
        let e = sync_config(&SyncFlags::default(), &env).unwrap_err();
        assert!(e.to_string().contains("--bucket"), "{e}");
        let f = SyncFlags {
            bucket: Some("Bad_Bucket".into()),
            ..Default::default()
        };
        assert!(
            sync_config(&f, &env)
                .unwrap_err()
                .to_string()
                .contains("bucket name")
        );
        let env = Env::from_pairs([("S3IMAP_BUCKET", "mail-in"), ("HOME", "/nonexistent")]);
        let e = sync_config(&SyncFlags::default(), &env).unwrap_err();
        assert!(e.to_string().contains("AWS_ACCESS_KEY_ID"), "{e}");
        let env = Env::from_pairs([("S3IMAP_BUCKET", "mail-in"), ("AWS_ACCESS_KEY_ID", "x")]);
        let e = sync_config(&SyncFlags::default(), &env).unwrap_err();
        assert!(e.to_string().contains("AWS_SECRET_ACCESS_KEY"), "{e}");
        let mut pairs = AWS.to_vec();
        pairs.push(("S3IMAP_BUCKET", "mail-in"));
        pairs.push(("S3IMAP_CATCH_ALL", "../etc@x"));
        let e = sync_config(&SyncFlags::default(), &Env::from_pairs(pairs)).unwrap_err();
        assert!(e.to_string().contains("--catch-all"), "{e}");
    }

    #[test]
    fn shared_credentials_file_profile() {
        let dir = std::env::temp_dir().join(format!("s3imap-creds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("credentials");
        std::fs::write(
            &p,
            "[default]\naws_access_key_id = D\naws_secret_access_key = DS\n\n[mail]\naws_access_key_id=M\naws_secret_access_key=MS\n",
        )
        .unwrap();
        let ps = p.to_str().unwrap();
        let c = credentials(&Env::from_pairs([("AWS_SHARED_CREDENTIALS_FILE", ps)])).unwrap();
        assert_eq!(c.access_key_id, "D");
        let c = credentials(&Env::from_pairs([
            ("AWS_SHARED_CREDENTIALS_FILE", ps),
            ("AWS_PROFILE", "mail"),
        ]))
        .unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), c.secret_access_key.as_str()),
            ("M", "MS")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
