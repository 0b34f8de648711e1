//! The mailbox registry: one shared, authoritative state per open mailbox. Every session that
//! selects a mailbox gets the same [`Shared`] (the message table with UIDs, flags, keywords,
//! sizes and modseqs, kept in step with the disk), and holds only its view of it
//! ([`super::mailbox::Selected`]). Changes go through the shared table and are numbered there;
//! each session turns them into its own untagged responses. The state is dropped when the last
//! session lets go of it.
//!
//! One refresh serves every session: changes by other programs (Dovecot, another s3imap on the
//! same volume, the sync) are read from disk at most once per [`REFRESH_EVERY`] for all of them,
//! and at once when this process knows something changed (a delivery, an APPEND). Listeners of
//! [`Shared::changed`] (IDLE sessions) are woken only for their own mailbox. The last few
//! mailboxes selected are kept for a minute after their last session ends (reconnecting
//! clients).

use crate::maildir::MaildirPath;
use crate::maildir::store::{Mailbox, StoreError};
use event_listener::{Event, EventListener};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

/// At most one disk refresh per mailbox this often for sessions that only look (NOOP, IDLE).
pub const REFRESH_EVERY: Duration = Duration::from_millis(250);

/// The mailboxes open in this process.
#[derive(Default)]
pub struct Registry {
    open: Mutex<HashMap<PathBuf, Weak<Shared>>>,
    /// One lock per mailbox being opened: sessions selecting the same mailbox at once wait
    /// for the first one's read of the disk instead of each reading it (and holding a copy).
    opening: Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>,
    /// The last few mailboxes selected, kept a while after their last session ends: clients
    /// reconnect often (a phone waking up), and re-reading a big Maildir costs more than
    /// keeping its table.
    keep: Mutex<std::collections::VecDeque<(Instant, Arc<Shared>)>>,
}

/// How many closed mailboxes [`Registry`] keeps, and for how long.
const KEEP: usize = 8;
const KEEP_FOR: Duration = Duration::from_secs(60);

/// One open mailbox, shared by the sessions that selected it.
pub struct Shared {
    path: PathBuf,
    state: Mutex<State>,
    /// Notified whenever the mailbox changed (IDLE sessions wait on it).
    changed: Event,
}

struct State {
    mailbox: Mailbox,
    last_refresh: Instant,
    /// Something changed outside this table (a delivery): refresh at the next look.
    dirty: bool,
}

/// The shared state, locked for one command's work.
pub struct Guard<'a> {
    guard: MutexGuard<'a, State>,
}

impl std::ops::Deref for Guard<'_> {
    type Target = Mailbox;
    fn deref(&self) -> &Mailbox {
        &self.guard.mailbox
    }
}

impl std::ops::DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut Mailbox {
        &mut self.guard.mailbox
    }
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// The shared state of the Maildir at `path`, opened (and read from disk) if no session
    /// has it open.
    pub fn open(&self, path: &MaildirPath) -> Result<Arc<Shared>, StoreError> {
        let s = self.open_uncached(path)?;
        let mut keep = self.keep.lock().unwrap_or_else(PoisonError::into_inner);
        keep.retain(|(t, k)| !Arc::ptr_eq(k, &s) && t.elapsed() < KEEP_FOR);
        keep.push_back((Instant::now(), Arc::clone(&s)));
        while keep.len() > KEEP {
            keep.pop_front();
        }
        Ok(s)
    }

    fn open_uncached(&self, path: &Path) -> Result<Arc<Shared>, StoreError> {
        if let Some(s) = self.get(path) {
            return Ok(s);
        }
        // Read from disk without holding the registry (a slow volume or a held Dovecot lock
        // must not stall the opening of other mailboxes), once per mailbox.
        let gate = {
            let mut o = self.opening.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(o.entry(path.to_path_buf()).or_default())
        };
        let _opening = gate.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = self.get(path) {
            return Ok(s);
        }
        let opened = Mailbox::open(path, false);
        {
            let mut o = self.opening.lock().unwrap_or_else(PoisonError::into_inner);
            if Arc::strong_count(&gate) <= 2 {
                o.remove(path);
            }
        }
        let mailbox = opened?;
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = open.get(path).and_then(Weak::upgrade) {
            // Another session opened it meanwhile: share that one.
            return Ok(s);
        }
        open.retain(|_, w| w.strong_count() > 0);
        let s = Arc::new(Shared {
            path: path.to_path_buf(),
            state: Mutex::new(State {
                mailbox,
                last_refresh: Instant::now(),
                dirty: false,
            }),
            changed: Event::new(),
        });
        open.insert(path.to_path_buf(), Arc::downgrade(&s));
        Ok(s)
    }

    /// The shared state of `path` if some session has it open.
    pub fn get(&self, path: &Path) -> Option<Arc<Shared>> {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(path).and_then(Weak::upgrade)
    }

    /// Something outside the sessions changed the Maildir at `path` (the sync delivered, an
    /// APPEND or COPY from a session of another mailbox): its sessions look at once.
    pub fn changed(&self, path: &Path) {
        if let Some(s) = self.get(path) {
            s.state.lock().unwrap_or_else(PoisonError::into_inner).dirty = true;
            s.changed.notify(usize::MAX);
        }
    }

    /// The table of `path` already holds a change (an APPEND through it): wake its sessions,
    /// without a disk refresh.
    pub fn notify(&self, path: &Path) {
        if let Some(s) = self.get(path) {
            s.changed.notify(usize::MAX);
        }
    }

    /// Lets go of the mailboxes kept after their last session (tests; memory pressure).
    pub fn forget_closed(&self) {
        self.keep
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// How many mailboxes are open (tests, metrics).
    pub fn open_count(&self) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.values().filter(|w| w.strong_count() > 0).count()
    }
}

impl Shared {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Locks the table, after looking at the disk when `force`, when marked dirty, or when the
    /// last look is older than [`REFRESH_EVERY`].
    pub fn lock(&self, force: bool) -> Result<Guard<'_>, StoreError> {
        let mut g = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if force || g.dirty || g.last_refresh.elapsed() >= REFRESH_EVERY {
            let before = g.mailbox.highest_modseq();
            g.mailbox.refresh()?;
            g.last_refresh = Instant::now();
            g.dirty = false;
            if g.mailbox.highest_modseq() != before {
                self.changed.notify(usize::MAX);
            }
        }
        Ok(Guard { guard: g })
    }

    /// Whether a look now could find anything: the disk is due for a refresh, something
    /// outside marked it dirty, or the table moved past `told` (a change of another session).
    /// In memory only: an idle session asks this before it spends a thread on a look.
    pub fn worth_a_look(&self, told: u64) -> bool {
        let g = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        g.dirty || g.last_refresh.elapsed() >= REFRESH_EVERY || g.mailbox.highest_modseq() != told
    }

    /// Tells the other sessions of this mailbox that the table changed (after a STORE,
    /// EXPUNGE, APPEND… by one of them).
    pub fn notify(&self) {
        self.changed.notify(usize::MAX);
    }

    /// A listener for the next change (IDLE).
    pub fn listen(&self) -> EventListener {
        self.changed.listen()
    }
}
