//! Per-message metadata that FETCH, SORT and THREAD need and that costs a file read to
//! compute: the parsed MIME tree (for BODY[section]), the rendered ENVELOPE, BODYSTRUCTURE and
//! BODY strings, and the header facts messages are sorted and threaded on.
//!
//! Shared by every session in the process and bounded: rendered strings up to
//! [`RENDERED_BUDGET`] bytes, sort facts up to [`SORT_BUDGET`], parsed trees for the most
//! recent [`TREES`] messages. Keys are
//! the Maildir path plus the message's unique name, which never changes for a message.

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
    trees: HashMap<String, Arc<mime::Part>>,
    tree_order: VecDeque<String>,
    sort: HashMap<String, Arc<SortFields>>,
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
            c.rendered_bytes = 0;
        }
        c.rendered_bytes += size;
        c.rendered.insert(k, Arc::clone(&r));
    }
    Ok(r)
}

/// The SORT/THREAD facts of a message, from the cache or from its `header` block.
pub fn sort_fields(
    dir: &Path,
    unique: &str,
    header: impl FnOnce() -> io::Result<Vec<u8>>,
) -> io::Result<Arc<SortFields>> {
    let k = key(dir, unique);
    if let Some(f) = cache().lock().ok().and_then(|c| c.sort.get(&k).cloned()) {
        return Ok(f);
    }
    let f = Arc::new(SortFields::from_header(&header()?));
    if let Ok(mut c) = cache().lock() {
        let size = f.weight() + k.len() + 64;
        if c.sort_bytes + size > SORT_BUDGET {
            c.sort.clear();
            c.sort_bytes = 0;
        }
        c.sort_bytes += size;
        c.sort.insert(k, Arc::clone(&f));
    }
    Ok(f)
}
