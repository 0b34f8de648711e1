//! The S3 → Maildir sync: list the bucket, deliver each new object into its recipients'
//! Maildirs exactly once, record it, then keep, delete or move the object.
//!
//! One run ([`Syncer::run_once`]): take the mail root's lock; load the users file and the
//! ledger; a lister thread pages through ListObjectsV2 and hands every object the ledger does
//! not know to a pool of workers; each worker streams its object (GetObject) into `tmp/` of the
//! first destination, routing on the header block as it arrives, fsyncs it and links it into
//! `new/` of every destination ([`crate::maildir`]); the main thread records outcomes in the
//! ledger and shows progress. Only after a message is durable in every Maildir is the object
//! deleted or moved.
//!
//! Exactly once across crashes: a message's file name is derived from (key, ETag), so linking
//! it again finds it in `new/`; a run that did not finish leaves a `<bucket>.running` marker,
//! and the next run then also looks for the name in `cur/` before delivering.

pub mod adopt;
pub mod events;
pub mod ledger;
pub mod lock;
pub mod notice;
pub mod route;

use crate::aws::kms::{Envelope, Kms};
use crate::crypto::gcm;
use crate::mail::header;
use crate::maildir;
use crate::s3::client::{Client, ClientConfig, Endpoint, S3Error};
use crate::s3::xml::Object;
use ledger::{Id, Ledger, LedgerError, Outcome};
use route::{Directory, Folders};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The object SES writes when a receipt rule is created: never a message.
pub const SES_SETUP_NOTIFICATION: &str = "AMAZON_SES_SETUP_NOTIFICATION";

/// The largest header block routed on; a longer one is routed on its first part.
const MAX_HEAD: usize = 256 * 1024;
/// Copy buffer per worker.
const CHUNK: usize = 32 * 1024;

/// What to do with an object once its message is durable in every Maildir.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum After {
    Keep,
    Delete,
    /// Copy to `<prefix><key without --prefix>`, then delete.
    Move(String),
}

/// An `--after` that is none of keep, delete, move:<prefix>.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadAfter;

impl std::fmt::Display for BadAfter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("use keep, delete or move:<prefix> (e.g. move:processed/)")
    }
}

impl After {
    pub fn parse(s: &str) -> Result<After, BadAfter> {
        match s {
            "keep" => Ok(After::Keep),
            "delete" => Ok(After::Delete),
            _ => match s.strip_prefix("move:") {
                Some(p) if !p.is_empty() => Ok(After::Move(p.to_string())),
                _ => Err(BadAfter),
            },
        }
    }
}

/// Everything one sync needs.
#[derive(Clone, Debug)]
pub struct SyncConfig {
    pub s3: ClientConfig,
    pub prefix: String,
    pub mail_root: PathBuf,
    pub users: Option<PathBuf>,
    pub catch_all: Option<String>,
    pub folders: Folders,
    pub after: After,
    pub workers: usize,
    /// Redraw a progress line on stderr (a terminal); otherwise log progress every 10 s.
    pub progress_line: bool,
    /// `sync --adopt`: an object whose message a recipient's Maildir already holds (an earlier
    /// copy, e.g. by `aws s3 sync`) is recorded as delivered there, not copied again
    /// ([`adopt`]).
    pub adopt: bool,
    /// KMS, for objects SES stored client-side encrypted.
    pub kms_endpoint: Endpoint,
    /// The listing leaves objects younger than this to the events path (which knows their
    /// envelope recipients); zero without an events queue.
    pub fresh_grace: Duration,
}

/// The counts a run ends with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub listed: u64,
    pub delivered: u64,
    pub skipped: u64,
    pub failed: u64,
    /// Found in every recipient's Maildir already and recorded, not copied (`--adopt`).
    pub adopted: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "listed {}, delivered {}, skipped {}, failed {}",
            self.listed, self.delivered, self.skipped, self.failed,
        )?;
        if self.adopted > 0 {
            write!(f, ", adopted {} (already in the Maildirs)", self.adopted)?;
        }
        write!(
            f,
            " ({} in {:.1} s)",
            human_bytes(self.bytes),
            self.elapsed.as_secs_f64()
        )
    }
}

fn human_bytes(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
    } else if b >= 1 << 10 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{b} B")
    }
}

/// A run that could not go on.
#[derive(Debug)]
pub enum SyncError {
    Lock(lock::LockError),
    Ledger(LedgerError),
    Users(crate::auth::passwd::LoadError),
    /// Listing failed, or an error that every object would hit (credentials, endpoint, clock).
    S3(S3Error),
    /// KMS refused or could not be reached: no encrypted object can be read.
    Kms(crate::aws::json::AwsError),
    Io {
        path: PathBuf,
        err: io::Error,
    },
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncError::Lock(e) => e.fmt(f),
            SyncError::Ledger(e) => e.fmt(f),
            SyncError::Users(e) => e.fmt(f),
            SyncError::S3(e) => e.fmt(f),
            SyncError::Kms(e) => e.fmt(f),
            SyncError::Io { path, err } => write!(f, "{}: {err}", path.display()),
        }
    }
}

impl std::error::Error for SyncError {}

impl SyncError {
    /// True when another run holds the lock (not a failure of this one).
    pub fn is_busy(&self) -> bool {
        matches!(self, SyncError::Lock(lock::LockError::Busy { .. }))
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SyncError + '_ {
    move |err| SyncError::Io {
        path: path.to_path_buf(),
        err,
    }
}

/// Errors that every request would hit: no point going on with the run.
fn is_fatal(e: &S3Error) -> bool {
    matches!(
        e,
        S3Error::Unreachable { .. }
            | S3Error::BadCredentials { .. }
            | S3Error::ClockSkew { .. }
            | S3Error::NoSuchBucket { .. }
            | S3Error::AccessDenied { .. }
            | S3Error::WrongRegion { .. }
    )
}

/// Runs syncs for one configuration; keeps its HTTP connections between runs.
pub struct Syncer {
    cfg: SyncConfig,
    client: Client,
    kms: Kms,
    on_delivery: Option<Box<DeliveryHook>>,
}

/// Told the Maildir of every delivery (the IMAP server wakes IDLE sessions with it).
pub type DeliveryHook = dyn Fn(&Path) + Send + Sync;

enum Job {
    Deliver(Object, Id),
    /// Delivered in an earlier run; only the after-action is left.
    AfterOnly(Object),
}

enum Event {
    Listed(u64),
    Skipped,
    Done {
        obj: Object,
        id: Id,
        result: Result<Delivered, Failure>,
    },
    AfterDone,
    Fatal(S3Error),
    FatalIo(SyncError),
    ListingDone(Option<HashSet<Id>>),
}

struct Delivered {
    recipients: Vec<String>,
    folder: Option<String>,
    size: u64,
    /// Every recipient had it already (`--adopt`): nothing was written.
    adopted: bool,
}

enum Failure {
    /// Stays in S3; recorded so it is not tried again.
    Refused(String),
    /// Stays in S3; tried again next run.
    Transient(String),
    /// Gone from the bucket since it was listed.
    Vanished,
}

impl Syncer {
    pub fn new(cfg: SyncConfig) -> Syncer {
        let client = Client::new(cfg.s3.clone());
        let kms = Kms::new(
            cfg.kms_endpoint.clone(),
            cfg.s3.region.clone(),
            cfg.s3.credentials.clone(),
            cfg.s3.retry.clone(),
        );
        Syncer {
            cfg,
            client,
            kms,
            on_delivery: None,
        }
    }

    /// Called with each Maildir that received a message (for IDLE wake-ups).
    pub fn on_delivery(mut self, f: impl Fn(&Path) + Send + Sync + 'static) -> Syncer {
        self.on_delivery = Some(Box::new(f));
        self
    }

    pub fn config(&self) -> &SyncConfig {
        &self.cfg
    }

    /// One whole pass over the bucket.
    pub fn run_once(&self) -> Result<Summary, SyncError> {
        let start = Instant::now();
        let cfg = &self.cfg;
        let (_lock, mut ledger, run) = self.begin(Duration::ZERO, true)?;
        let shared = self.shared(run.directory, run.recovering);
        let running = run.running;
        let mut sum = Summary::default();
        let mut fatal: Option<SyncError> = None;
        let mut seen: Option<HashSet<Id>> = None;
        let mut progress = Progress::new(cfg.progress_line);

        let known = ledger.take_known();
        let (ev_tx, ev_rx) = mpsc::channel::<Event>();
        std::thread::scope(|s| {
            let (job_tx, job_rx) = mpsc::sync_channel::<Job>(cfg.workers * 4);
            let job_rx = Arc::new(Mutex::new(job_rx));
            for _ in 0..cfg.workers.max(1) {
                let rx = Arc::clone(&job_rx);
                let tx = ev_tx.clone();
                let shared = &shared;
                s.spawn(move || worker(shared, &rx, &tx));
            }
            {
                let tx = ev_tx.clone();
                let shared = &shared;
                let known = &known;
                s.spawn(move || lister(shared, known, job_tx, &tx));
            }
            drop(ev_tx);
            loop {
                let ev = match ev_rx.recv_timeout(Duration::from_millis(250)) {
                    Ok(ev) => ev,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        progress.tick(&sum);
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                };
                match ev {
                    Event::Listed(n) => sum.listed += n,
                    Event::Skipped => sum.skipped += 1,
                    Event::AfterDone => {}
                    Event::Done { obj, id, result } => {
                        if let Err(e) = record(&mut ledger, &mut sum, &obj, id, &result) {
                            shared.stop.store(true, Ordering::Relaxed);
                            fatal.get_or_insert(SyncError::Ledger(e));
                        }
                    }
                    Event::Fatal(e) => {
                        fatal.get_or_insert(SyncError::S3(e));
                    }
                    Event::FatalIo(e) => {
                        fatal.get_or_insert(e);
                    }
                    Event::ListingDone(s) => seen = s,
                }
                if let Err(e) = ledger.sync_if_due() {
                    shared.stop.store(true, Ordering::Relaxed);
                    fatal.get_or_insert(SyncError::Ledger(e));
                }
                progress.tick(&sum);
            }
        });
        ledger.restore_known(known);
        progress.finish();
        ledger.sync().map_err(SyncError::Ledger)?;
        if let Some(e) = fatal {
            return Err(e);
        }
        if let Some(live) = seen {
            match ledger.compact_if_worth_it(&live) {
                Ok(true) => crate::info!("sync", "compacted the ledger to {} entries", live.len()),
                Ok(false) => {}
                Err(e) => crate::warn!("sync", "ledger compaction skipped: {e}"),
            }
        }
        std::fs::remove_file(&running).map_err(io_err(&running))?;
        crate::metrics::get().ledger_entries(ledger.known().all.len());
        sum.elapsed = start.elapsed();
        Ok(sum)
    }

    /// What every delivery run starts with: the lock (waiting up to `patience`), the users,
    /// the ledger and, for a listing pass, the marker of a run in progress. The events path
    /// leaves the marker to the listing and always looks for a name in the Maildirs before
    /// linking it (it delivers a few named objects, so that costs one directory read each).
    fn begin(
        &self,
        patience: Duration,
        listing: bool,
    ) -> Result<(lock::SyncLock, Ledger, Run), SyncError> {
        let cfg = &self.cfg;
        let state = cfg.mail_root.join(".s3imap");
        std::fs::DirBuilder::new()
            .recursive(true)
            .create(&state)
            .map_err(io_err(&state))?;
        let lock = lock::acquire_within(&state, patience).map_err(SyncError::Lock)?;
        let users = match &cfg.users {
            Some(p) => Some(
                crate::auth::passwd::load(p)
                    .map_err(SyncError::Users)?
                    .into_iter()
                    .map(|e| e.user),
            ),
            None => None,
        };
        let directory = Directory::new(users, cfg.catch_all.clone());
        let ledger = Ledger::open(&state, cfg.s3.bucket.as_str()).map_err(SyncError::Ledger)?;
        if !listing {
            return Ok((
                lock,
                ledger,
                Run {
                    directory,
                    recovering: true,
                    running: state.join(format!("{}.running", cfg.s3.bucket)),
                },
            ));
        }
        // Marks a run in progress; found at start, it means the last run did not finish.
        let running = state.join(format!("{}.running", cfg.s3.bucket));
        let recovering = running.exists();
        if recovering {
            crate::info!(
                "sync",
                "the last run did not finish; checking Maildirs for messages it may have delivered"
            );
        }
        File::create(&running).map_err(io_err(&running))?;
        maildir::sync_dir(&state).map_err(io_err(&state))?;
        Ok((
            lock,
            ledger,
            Run {
                directory,
                recovering,
                running,
            },
        ))
    }

    fn shared(&self, directory: Directory, recovering: bool) -> Shared<'_> {
        Shared {
            cfg: &self.cfg,
            client: &self.client,
            kms: &self.kms,
            directory,
            recovering,
            stop: AtomicBool::new(false),
            created: Mutex::new(HashSet::new()),
            present: Mutex::new(HashMap::new()),
            on_delivery: self.on_delivery.as_deref(),
            dirs: maildir::DirSyncer::new(),
            adopt: adopt::Index::default(),
        }
    }

    /// Delivers the objects an events queue named, each exactly once (the ledger is the
    /// listing's: a notice repeated, or one the listing got to first, delivers nothing), and
    /// makes the outcomes durable before returning; only then may the queue forget them.
    /// SES's envelope recipients, when given, are the recipients.
    pub fn deliver_notices(&self, notices: &[notice::Notice]) -> Result<Vec<Handled>, SyncError> {
        let cfg = &self.cfg;
        let (_lock, mut ledger, run) = self.begin(LOCK_PATIENCE, false)?;
        let sh = self.shared(run.directory, run.recovering);
        let mut sum = Summary::default();
        let mut out = Vec::with_capacity(notices.len());
        let mut buf = vec![0u8; CHUNK];
        for n in notices {
            let moved = matches!(&cfg.after, After::Move(p) if n.key.starts_with(p.as_str()));
            if n.bucket != cfg.s3.bucket || !n.key.starts_with(&cfg.prefix) || moved {
                out.push(Handled::NotOurs);
                continue;
            }
            let head = match self.client.head(&n.key) {
                Ok(h) => h,
                Err(S3Error::NoSuchKey { .. }) => {
                    out.push(Handled::Gone);
                    continue;
                }
                Err(e) if is_fatal(&e) => return Err(SyncError::S3(e)),
                Err(e) => {
                    out.push(Handled::Failed(e.to_string()));
                    continue;
                }
            };
            let obj = Object {
                key: n.key.clone(),
                etag: head.etag,
                size: head.size,
                last_modified: head.last_modified,
            };
            let id = Id::of(&obj.key, &obj.etag);
            if ledger.contains(&id) {
                out.push(Handled::Known);
                continue;
            }
            let result = match deliver(&sh, &obj, id, n.recipients.as_deref(), &mut buf) {
                Ok(r) => r,
                Err(Fatal::S3(e)) => return Err(SyncError::S3(e)),
                Err(Fatal::Io(e)) => return Err(e),
                Err(Fatal::Corrupt(why)) => Err(Failure::Refused(why)),
            };
            record(&mut ledger, &mut sum, &obj, id, &result).map_err(SyncError::Ledger)?;
            // Durable before the next one: a crash then loses no record of a linked message.
            ledger.sync().map_err(SyncError::Ledger)?;
            out.push(match result {
                Ok(d) => {
                    after_action(&sh, &obj.key);
                    Handled::Delivered(d.recipients)
                }
                Err(Failure::Refused(why)) => Handled::Refused(why),
                Err(Failure::Vanished) => Handled::Gone,
                Err(Failure::Transient(why)) => Handled::Failed(why),
            });
        }
        ledger.sync().map_err(SyncError::Ledger)?;
        let m = crate::metrics::get();
        m.delivered(sum.delivered, sum.failed);
        m.ledger_entries(ledger.known().all.len());
        Ok(out)
    }
}

/// What [`Syncer::begin`] sets up beside the lock and ledger.
struct Run {
    directory: Directory,
    /// Look for each name in new/ and cur/ before linking it.
    recovering: bool,
    /// The marker of a listing pass in progress.
    running: PathBuf,
}

/// How long the events path waits for a listing pass to let go of the lock (the queue's
/// messages are received hidden for longer: [`crate::aws::sqs::RECEIVE_VISIBILITY`]).
pub const LOCK_PATIENCE: Duration = Duration::from_secs(600);

/// What became of one notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Durable in these Maildirs.
    Delivered(Vec<String>),
    /// Delivered already (a repeated notice, or the listing was first).
    Known,
    /// The object is no longer in the bucket.
    Gone,
    /// Another bucket, outside `--prefix`, or under the `--after move:` prefix.
    NotOurs,
    /// Will never be delivered (recorded; stays in the bucket), e.g. no local recipient.
    Refused(String),
    /// Not delivered this time; worth another try.
    Failed(String),
}

impl Handled {
    /// Whether the queue message may go: everything but a failure worth retrying.
    pub fn settled(&self) -> bool {
        !matches!(self, Handled::Failed(_))
    }
}

/// Records a delivery's outcome in the ledger and the run's counts.
fn record(
    ledger: &mut Ledger,
    sum: &mut Summary,
    obj: &Object,
    id: Id,
    result: &Result<Delivered, Failure>,
) -> Result<(), LedgerError> {
    match result {
        Ok(d) => {
            if d.adopted {
                sum.adopted += 1;
            } else {
                sum.delivered += 1;
                sum.bytes += d.size;
            }
            crate::debug!(
                "sync",
                "{} {} ({} B) to {}{}",
                if d.adopted { "adopted" } else { "delivered" },
                obj.key,
                d.size,
                d.recipients.join(", "),
                d.folder
                    .as_ref()
                    .map(|f| format!(" folder {f}"))
                    .unwrap_or_default()
            );
            ledger.record(id, &obj.etag, &obj.key, &Outcome::Delivered)
        }
        Err(Failure::Refused(why)) => {
            sum.failed += 1;
            crate::warn!("sync", "{}: left in the bucket: {why}", obj.key);
            ledger.record(id, &obj.etag, &obj.key, &Outcome::Refused(why.clone()))
        }
        Err(Failure::Transient(why)) => {
            sum.failed += 1;
            crate::warn!("sync", "{}: not delivered, will retry: {why}", obj.key);
            Ok(())
        }
        Err(Failure::Vanished) => {
            sum.skipped += 1;
            crate::debug!("sync", "{}: removed from the bucket meanwhile", obj.key);
            Ok(())
        }
    }
}

/// What the lister and workers share during a run.
struct Shared<'a> {
    cfg: &'a SyncConfig,
    client: &'a Client,
    kms: &'a Kms,
    directory: Directory,
    recovering: bool,
    stop: AtomicBool,
    /// Maildirs known to exist (created or checked) in this run.
    created: Mutex<HashSet<PathBuf>>,
    /// When recovering: unique names already in each Maildir's new/ and cur/.
    present: Mutex<HashMap<PathBuf, HashSet<String>>>,
    on_delivery: Option<&'a DeliveryHook>,
    /// Shares `new/` fsyncs between workers delivering to the same Maildir.
    dirs: maildir::DirSyncer,
    /// `--adopt`: what each recipient's Maildir holds already.
    adopt: adopt::Index,
}

fn lister(
    sh: &Shared<'_>,
    known: &ledger::Known,
    jobs: mpsc::SyncSender<Job>,
    ev: &mpsc::Sender<Event>,
) {
    let cfg = sh.cfg;
    let moved_under = match &cfg.after {
        After::Move(p) if p.starts_with(&cfg.prefix) => Some(p.as_str()),
        _ => None,
    };
    let mut seen = HashSet::new();
    let young_after = (cfg.fresh_grace > Duration::ZERO)
        .then(|| now_unix().saturating_sub(cfg.fresh_grace.as_secs()));
    let mut token: Option<String> = None;
    // Continuation tokens already followed: a server that hands one out again would have the
    // listing go round forever.
    let mut followed: HashSet<String> = HashSet::new();
    // Whether the listing reached its end (only then may the ledger forget what it did not see).
    let mut complete = true;
    loop {
        if sh.stop.load(Ordering::Relaxed) {
            let _ = ev.send(Event::ListingDone(None));
            return;
        }
        let page = match sh.client.list_page(&cfg.prefix, token.as_deref()) {
            Ok(p) => p,
            Err(e) => {
                sh.stop.store(true, Ordering::Relaxed);
                let _ = ev.send(Event::Fatal(e));
                let _ = ev.send(Event::ListingDone(None));
                return;
            }
        };
        let mut listed = 0;
        for obj in page.objects {
            if moved_under.is_some_and(|p| obj.key.starts_with(p)) {
                continue; // already handled and moved aside
            }
            listed += 1;
            let base = obj.key.rsplit('/').next().unwrap_or(&obj.key);
            if base == SES_SETUP_NOTIFICATION || obj.key.ends_with('/') {
                let _ = ev.send(Event::Skipped);
                continue;
            }
            let id = Id::of(&obj.key, &obj.etag);
            if !seen.insert(id) {
                // Listed twice in this run (a buggy or eventually consistent server): one job
                // per object, or two workers would race on one delivery.
                crate::debug!("sync", "{} listed twice; once is enough", obj.key);
                continue;
            }
            let job = if known.all.contains(&id) {
                let _ = ev.send(Event::Skipped);
                if cfg.after == After::Keep || known.refused.contains(&id) {
                    continue;
                }
                Job::AfterOnly(obj)
            } else if young_after.is_some_and(|t| obj.last_modified.is_some_and(|m| m > t)) {
                // Its notification is due on the events queue, with the envelope recipients
                // that its header lacks; the next listing takes it if none comes.
                continue;
            } else {
                Job::Deliver(obj, id)
            };
            if jobs.send(job).is_err() {
                break;
            }
        }
        let _ = ev.send(Event::Listed(listed));
        match (page.is_truncated, page.next_continuation_token) {
            (true, Some(t)) if followed.insert(t.clone()) => token = Some(t),
            (true, Some(t)) => {
                crate::warn!(
                    "sync",
                    "the S3 server gave the continuation token {t:?} a second time; listing \
                     stopped there (the rest waits for the next run)"
                );
                complete = false;
                break;
            }
            _ => break,
        }
    }
    let _ = ev.send(Event::ListingDone(complete.then_some(seen)));
}

fn worker(sh: &Shared<'_>, jobs: &Mutex<mpsc::Receiver<Job>>, ev: &mpsc::Sender<Event>) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        if sh.stop.load(Ordering::Relaxed) {
            continue; // drain without work
        }
        match job {
            Job::AfterOnly(obj) => {
                after_action(sh, &obj.key);
                let _ = ev.send(Event::AfterDone);
            }
            Job::Deliver(obj, id) => match deliver(sh, &obj, id, None, &mut buf) {
                Ok(result) => {
                    if result.is_ok() {
                        after_action(sh, &obj.key);
                    }
                    let _ = ev.send(Event::Done { obj, id, result });
                }
                Err(Fatal::S3(e)) => {
                    sh.stop.store(true, Ordering::Relaxed);
                    let _ = ev.send(Event::Fatal(e));
                }
                Err(Fatal::Io(e)) => {
                    sh.stop.store(true, Ordering::Relaxed);
                    let _ = ev.send(Event::FatalIo(e));
                }
                Err(Fatal::Corrupt(why)) => {
                    let result = Err(Failure::Refused(why));
                    let _ = ev.send(Event::Done { obj, id, result });
                }
            },
        }
    }
}

enum Fatal {
    S3(S3Error),
    Io(SyncError),
    /// The decrypted body failed its tag (or the envelope's length): damaged or tampered.
    Corrupt(String),
}

/// Deletes or moves a delivered object; a failure is logged and retried next run.
fn after_action(sh: &Shared<'_>, key: &str) {
    let r = match &sh.cfg.after {
        After::Keep => return,
        After::Delete => sh.client.delete(key),
        After::Move(p) => {
            let rel = key.strip_prefix(&sh.cfg.prefix).unwrap_or(key);
            let to = format!("{p}{rel}");
            sh.client
                .copy(key, &to)
                .and_then(|()| sh.client.delete(key))
        }
    };
    if let Err(e) = r {
        crate::warn!(
            "sync",
            "{key}: delivered, but --after failed (will retry next run): {e}"
        );
    }
}

/// The message file's unique part: arrival time, then the object's id. Stable across runs, so
/// a second delivery of the same object finds the first one.
fn unique_name(obj: &Object, id: &Id) -> String {
    format!("{}.S3I{}.s3imap", obj.last_modified.unwrap_or(0), id.hex())
}

/// Delivers one object; `envelope`: SES's recipients, when a notification named them.
fn deliver(
    sh: &Shared<'_>,
    obj: &Object,
    id: Id,
    envelope: Option<&[String]>,
    buf: &mut [u8],
) -> Result<Result<Delivered, Failure>, Fatal> {
    const STREAM_ATTEMPTS: u32 = 3;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match deliver_attempt(sh, obj, id, envelope, buf) {
            Err(Fatal::Corrupt(why)) if attempt < STREAM_ATTEMPTS => {
                crate::warn!("sync", "{}: {why}; downloading again", obj.key);
            }
            Err(Fatal::Corrupt(why)) => return Ok(Err(Failure::Refused(why))),
            Err(Fatal::S3(e)) if !is_fatal(&e) => {
                let r = match e {
                    S3Error::NoSuchKey { .. } => Err(Failure::Vanished),
                    S3Error::Http { status, .. }
                        if (400..500).contains(&status) && status != 408 && status != 429 =>
                    {
                        Err(Failure::Refused(e.to_string()))
                    }
                    ref other if other.is_retryable() && attempt < STREAM_ATTEMPTS => {
                        crate::warn!("sync", "{}: {other}; downloading again", obj.key);
                        std::thread::sleep(sh.cfg.s3.retry.delay(attempt));
                        continue;
                    }
                    other => Err(Failure::Transient(other.to_string())),
                };
                return Ok(r);
            }
            other => return other,
        }
    }
}

fn deliver_attempt(
    sh: &Shared<'_>,
    obj: &Object,
    id: Id,
    envelope: Option<&[String]>,
    buf: &mut [u8],
) -> Result<Result<Delivered, Failure>, Fatal> {
    let mut o = sh.client.get(&obj.key).map_err(Fatal::S3)?;
    // A client-side-encrypted object (an SES rule with a KMS key) is decrypted as it streams;
    // its tag is checked at the end of the body, before anything is linked into new/.
    match Envelope::from_metadata(&o.meta) {
        Ok(None) => {}
        Ok(Some(env)) => {
            use crate::aws::json::AwsError;
            let key = match sh.kms.data_key(&env) {
                Ok(k) => k,
                // Every encrypted object would fail the same way: stop the run.
                Err(
                    e @ (AwsError::Unreachable { .. }
                    | AwsError::BadCredentials { .. }
                    | AwsError::AccessDenied { .. }),
                ) => return Err(Fatal::Io(SyncError::Kms(e))),
                // Also what a wrong KMS region or endpoint looks like: retried, not recorded.
                Err(e) => return Ok(Err(Failure::Transient(e.to_string()))),
            };
            o.content_length = env
                .plaintext_len
                .or(o.content_length.map(|l| l.saturating_sub(16)));
            o.reader = Box::new(gcm::Decryptor::new(o.reader, &key, &env.iv));
        }
        Err(e) => return Ok(Err(Failure::Refused(e.to_string()))),
    }
    let net = |e: io::Error| {
        if e.kind() == io::ErrorKind::InvalidData
            && e.get_ref().is_some_and(|i| i.is::<gcm::GcmError>())
        {
            return Fatal::Corrupt(format!("the encrypted object does not decrypt: {e}"));
        }
        Fatal::S3(S3Error::Network {
            detail: format!("reading the object: {e}"),
        })
    };

    // Read the header block (bounded) to decide where the message goes.
    let mut head: Vec<u8> = Vec::with_capacity(8192.min(obj.size as usize + 1));
    let mut eof = false;
    let head_end = loop {
        if let Some(end) = header::header_end(&head) {
            break end;
        }
        if head.len() >= MAX_HEAD {
            break head.len();
        }
        let want = (MAX_HEAD - head.len()).min(buf.len());
        let n = o.reader.read(&mut buf[..want]).map_err(net)?;
        if n == 0 {
            eof = true;
            break head.len();
        }
        head.extend_from_slice(&buf[..n]);
    };
    if head.is_empty() {
        return Ok(Err(Failure::Refused("empty object".into())));
    }
    if !header::looks_like_message(&head) {
        let shown: String = head
            .iter()
            .take(24)
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        return Ok(Err(Failure::Refused(format!(
            "not a mail message (it starts with {shown:?})"
        ))));
    }
    let routed = match envelope {
        Some(env) => route::route_envelope(env, &head[..head_end], &sh.directory, &sh.cfg.folders),
        None => route::route(&head[..head_end], &sh.directory, &sh.cfg.folders),
    };
    let route = match routed {
        Ok(r) => r,
        Err(e) => return Ok(Err(Failure::Refused(e.to_string()))),
    };

    let dests: Result<Vec<maildir::MaildirPath>, &str> = route
        .recipients
        .iter()
        .map(|r| {
            let user = maildir::user_dir(&sh.cfg.mail_root, r)?;
            Ok(maildir::folder_dir(&user, route.folder.as_deref()))
        })
        .collect();
    let dests = match dests {
        Ok(d) => d,
        Err(why) => return Ok(Err(Failure::Refused(why.to_string()))),
    };
    for d in &dests {
        ensure_maildir(sh, d, route.folder.is_some()).map_err(Fatal::Io)?;
    }
    // --adopt: the recipients whose Maildir holds this message already keep that copy.
    let dests: Vec<maildir::MaildirPath> = if sh.cfg.adopt {
        let key = adopt::Key::of(&head[..head_end], obj.size);
        let mut left = Vec::new();
        for d in dests {
            if !sh.adopt.holds(&d, &key).map_err(Fatal::Io)? {
                left.push(d);
            }
        }
        if left.is_empty() {
            return Ok(Ok(Delivered {
                recipients: route.recipients,
                folder: route.folder,
                size: obj.size,
                adopted: true,
            }));
        }
        left
    } else {
        dests
    };
    let unique = unique_name(obj, &id);

    // Stream into tmp/ of the first destination (the one delivery primitive: maildir::Incoming).
    let tmp = dests[0].join("tmp").join(&unique);
    let file_err = |err| {
        Fatal::Io(SyncError::Io {
            path: tmp.clone(),
            err,
        })
    };
    let mut file = maildir::Incoming::create(&dests[0], &unique).map_err(file_err)?;
    let written = (|| {
        file.write(&head).map_err(file_err)?;
        if !eof {
            loop {
                let n = o.reader.read(buf).map_err(net)?;
                if n == 0 {
                    break;
                }
                file.write(&buf[..n]).map_err(file_err)?;
            }
        }
        if let Some(len) = o.content_length
            && len != file.size()
        {
            return Err(Fatal::S3(S3Error::Network {
                detail: format!("the object ended after {} of {len} bytes", file.size()),
            }));
        }
        Ok(())
    })();
    // An unfinished Incoming removes its tmp file when dropped.
    written?;
    // The arrival time becomes the message's INTERNALDATE (Dovecot reads the mtime).
    let mtime = obj
        .last_modified
        .map(|t| UNIX_EPOCH + Duration::from_secs(t));
    let durable = file.finish(mtime).map_err(file_err)?;

    let name = durable.name();
    for d in &dests {
        if sh.recovering && already_present(sh, d, &unique).map_err(Fatal::Io)? {
            continue;
        }
        maildir::link_into(durable.path(), d, maildir::Sub::New, &name).map_err(|err| {
            Fatal::Io(SyncError::Io {
                path: d.join("new").join(&name),
                err,
            })
        })?;
        let new = d.join("new");
        sh.dirs
            .sync(&new)
            .map_err(|err| Fatal::Io(SyncError::Io { path: new, err }))?;
        if let Some(f) = sh.on_delivery {
            f(d);
        }
    }
    let size = durable.size;
    drop(durable);
    Ok(Ok(Delivered {
        recipients: route.recipients,
        folder: route.folder,
        size,
        adopted: false,
    }))
}

fn ensure_maildir(sh: &Shared<'_>, dir: &Path, is_folder: bool) -> Result<(), SyncError> {
    if sh.created.lock().map(|s| s.contains(dir)).unwrap_or(false) {
        return Ok(());
    }
    maildir::create(dir, is_folder).map_err(|err| SyncError::Io {
        path: dir.to_path_buf(),
        err,
    })?;
    if let Ok(mut s) = sh.created.lock() {
        s.insert(dir.to_path_buf());
    }
    Ok(())
}

/// After an unfinished run: is a message with this unique name in the Maildir already
/// (perhaps moved to cur/ by a mail client)?
fn already_present(sh: &Shared<'_>, dir: &Path, unique: &str) -> Result<bool, SyncError> {
    let mut map = sh.present.lock().map_err(|_| SyncError::Io {
        path: dir.to_path_buf(),
        err: io::Error::other("a worker panicked"),
    })?;
    if !map.contains_key(dir) {
        let set = maildir::unique_parts(dir).map_err(|err| SyncError::Io {
            path: dir.to_path_buf(),
            err,
        })?;
        map.insert(dir.to_path_buf(), set);
    }
    Ok(map.get(dir).is_some_and(|s| s.contains(unique)))
}

/// Progress display: a redrawn line on a terminal, a log line every 10 s otherwise.
struct Progress {
    line: bool,
    start: Instant,
    last: Instant,
    drawn: bool,
}

impl Progress {
    fn new(line: bool) -> Progress {
        let now = Instant::now();
        Progress {
            line,
            start: now,
            last: now,
            drawn: false,
        }
    }

    fn tick(&mut self, s: &Summary) {
        let now = Instant::now();
        let every = if self.line {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(10)
        };
        if now.duration_since(self.last) < every {
            return;
        }
        self.last = now;
        let secs = now.duration_since(self.start).as_secs_f64().max(0.001);
        let text = format!(
            "{} delivered, {} skipped, {} failed of {} listed · {:.0} msg/s · {}/s",
            s.delivered,
            s.skipped,
            s.failed,
            s.listed,
            s.delivered as f64 / secs,
            human_bytes((s.bytes as f64 / secs) as u64)
        );
        if self.line {
            let mut err = io::stderr().lock();
            let _ = write!(err, "\r\x1b[Ksync: {text}");
            let _ = err.flush();
            self.drawn = true;
        } else {
            crate::info!("sync", "progress: {text}");
        }
    }

    fn finish(&mut self) {
        if self.drawn {
            let _ = write!(io::stderr().lock(), "\r\x1b[K");
        }
    }
}

/// True when progress should be a redrawn line (stderr is a terminal).
pub fn stderr_is_terminal() -> bool {
    io::stderr().is_terminal()
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
