//! Per-message metadata that FETCH, SORT and THREAD need and that costs a file read to
//! compute: the parsed MIME tree (for BODY[section]), the rendered ENVELOPE, BODYSTRUCTURE and
//! BODY strings, PREVIEW snippets, and the header facts messages are sorted and threaded on.
//!
//! Shared by every session in the process and bounded: rendered strings up to
//! [`RENDERED_BUDGET`] bytes, sort facts up to [`SORT_BUDGET`], parsed trees for the most
//! recent [`TREES`] messages. Keys are the Maildir path plus the message's unique name (sort
//! facts: plus UIDVALIDITY and UID), neither of which changes for a message.

use super::sort::SortFields;
use crate::mail::{envelope, mime};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

/// Bytes of rendered ENVELOPE/BODYSTRUCTURE kept (about 10 MiB holds ~10k messages).
pub const RENDERED_BUDGET: usize = 16 << 20;
/// Parsed MIME trees kept.
pub const TREES: usize = 64;
/// Bytes of sort facts kept (about 200 bytes a message: 40k messages).
pub const SORT_BUDGET: usize = 8 << 20;

/// The rendered strings of one message.
#[derive(Debug)]
pub struct Rendered {
    pub envelope: Vec<u8>,
    pub bodystructure: Vec<u8>,
    pub body: Vec<u8>,
}

#[derive(Default)]
struct Cache {
    rendered: HashMap<String, Arc<Rendered>>,
    rendered_bytes: usize,
    /// PREVIEW snippets (RFC 8970), counted in the rendered budget.
    previews: HashMap<String, Arc<str>>,
    trees: HashMap<String, Arc<mime::Part>>,
    tree_order: VecDeque<String>,
    /// Sort facts by Maildir and UIDVALIDITY, then by UID (a message's file never changes,
    /// and one UID names one message while the UIDVALIDITY holds).
    sort: HashMap<(std::path::PathBuf, u32), HashMap<u32, Arc<SortFields>>>,
    sort_bytes: usize,
}

fn cache() -> &'static Mutex<Cache> {
    static C: OnceLock<Mutex<Cache>> = OnceLock::new();
    C.get_or_init(|| Mutex::new(Cache::default()))
}

fn key(dir: &Path, unique: &str) -> String {
    format!("{}\0{unique}", dir.display())
}

/// The MIME tree of a message file (scanned once, then cached).
pub fn tree(dir: &Path, unique: &str, file: impl Read) -> io::Result<Arc<mime::Part>> {
    let k = key(dir, unique);
    if let Some(t) = cache().lock().ok().and_then(|c| c.trees.get(&k).cloned()) {
        return Ok(t);
    }
    let part = Arc::new(mime::scan(io::BufReader::with_capacity(32 * 1024, file))?);
    if let Ok(mut c) = cache().lock() {
        if c.tree_order.len() >= TREES
            && let Some(old) = c.tree_order.pop_front()
        {
            c.trees.remove(&old);
        }
        c.tree_order.push_back(k.clone());
        c.trees.insert(k, Arc::clone(&part));
    }
    Ok(part)
}

/// The rendered strings of a message, from the cache or computed from `tree`.
pub fn rendered(
    dir: &Path,
    unique: &str,
    tree: impl FnOnce() -> io::Result<Arc<mime::Part>>,
) -> io::Result<Arc<Rendered>> {
    let k = key(dir, unique);
    if let Some(r) = cache()
        .lock()
        .ok()
        .and_then(|c| c.rendered.get(&k).cloned())
    {
        return Ok(r);
    }
    let part = tree()?;
    let r = Arc::new(Rendered {
        envelope: envelope::envelope(part.header()),
        bodystructure: envelope::bodystructure(&part, true),
        body: envelope::bodystructure(&part, false),
    });
    if let Ok(mut c) = cache().lock() {
        let size = r.envelope.len() + r.bodystructure.len() + r.body.len() + k.len() + 64;
        if c.rendered_bytes + size > RENDERED_BUDGET {
            c.rendered.clear();
            c.previews.clear();
            c.rendered_bytes = 0;
        }
        c.rendered_bytes += size;
        c.rendered.insert(k, Arc::clone(&r));
    }
    Ok(r)
}

/// The PREVIEW of a message (RFC 8970), from the cache or computed by `make`.
pub fn preview(
    dir: &Path,
    unique: &str,
    make: impl FnOnce() -> io::Result<String>,
) -> io::Result<Arc<str>> {
    let k = key(dir, unique);
    if let Some(p) = cache()
        .lock()
        .ok()
        .and_then(|c| c.previews.get(&k).cloned())
    {
        return Ok(p);
    }
    let p: Arc<str> = Arc::from(make()?);
    if let Ok(mut c) = cache().lock() {
        let size = p.len() + k.len() + 64;
        if c.rendered_bytes + size > RENDERED_BUDGET {
            c.rendered.clear();
            c.previews.clear();
            c.rendered_bytes = 0;
        }
        c.rendered_bytes += size;
        c.previews.insert(k, Arc::clone(&p));
    }
    Ok(p)
}

/// The cached SORT/THREAD facts of messages `uids` of the Maildir `dir` (None where not
/// cached yet), in one look at the cache.
pub fn sort_fields_cached(
    dir: &Path,
    uid_validity: u32,
    uids: &[u32],
) -> Vec<Option<Arc<SortFields>>> {
    let Ok(c) = cache().lock() else {
        return vec![None; uids.len()];
    };
    match c.sort.get(&(dir.to_path_buf(), uid_validity)) {
        Some(m) => uids.iter().map(|u| m.get(u).cloned()).collect(),
        None => vec![None; uids.len()],
    }
}

/// Keeps the SORT/THREAD facts of messages of `dir` (computed by the caller), by UID.
pub fn keep_sort_fields(dir: &Path, uid_validity: u32, facts: Vec<(u32, Arc<SortFields>)>) {
    let Ok(mut c) = cache().lock() else { return };
    let size: usize = facts.iter().map(|(_, f)| f.weight() + 48).sum();
    if c.sort_bytes + size > SORT_BUDGET {
        c.sort.clear();
        c.sort_bytes = 0;
    }
    c.sort_bytes += size;
    c.sort
        .entry((dir.to_path_buf(), uid_validity))
        .or_default()
        .extend(facts);
}
