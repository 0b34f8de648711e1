//! SPECIAL-USE (RFC 6154) and CREATE-SPECIAL-USE: which folder has which attribute, the
//! folders every user has, and the user's own choices (`<address>/s3imap-special-use`).

use crate::imap::command::SpecialUse;
use crate::maildir::UserDir;
use crate::maildir::folders;

/// Folders every user has, created at first login, with their SPECIAL-USE attribute.
pub const SPECIAL_FOLDERS: [(&str, &str); 5] = [
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
];

/// Where a user's own special-use choices are kept (`CREATE name (USE (\\Sent))`): lines
/// `\\Attr<TAB>folder`. Attributes not named there fall back to [`SPECIAL_FOLDERS`].
const SPECIAL_USE_FILE: &str = "s3imap-special-use";

/// The attribute CREATE may give (the ones a folder can be made for).
pub(super) fn special_use_name(u: &SpecialUse<'_>) -> Option<&'static str> {
    use SpecialUse as U;
    Some(match u {
        U::Archive => "\\Archive",
        U::Drafts => "\\Drafts",
        U::Junk => "\\Junk",
        U::Sent => "\\Sent",
        U::Trash => "\\Trash",
        U::All | U::Flagged | U::Other(_) => return None,
    })
}

/// The user's special-use folders: (attribute, folder name), defaults overridden by choices.
pub(super) fn special_uses(user_dir: &UserDir) -> Vec<(String, String)> {
    let mut map: Vec<(String, String)> = SPECIAL_FOLDERS
        .iter()
        .map(|(f, a)| (a.to_string(), f.to_string()))
        .collect();
    if let Ok(text) = std::fs::read_to_string(user_dir.join(SPECIAL_USE_FILE)) {
        for line in text.lines() {
            if let Some((attr, folder)) = line.split_once('\t') {
                map.retain(|(a, _)| a != attr);
                if !folder.is_empty() {
                    map.push((attr.to_string(), folder.to_string()));
                }
            }
        }
    }
    map
}

/// Gives `attr` to `folder` (None: to no folder), replacing whatever had it. Atomic.
pub(super) fn set_special_use(
    user_dir: &UserDir,
    attr: &str,
    folder: Option<&str>,
) -> std::io::Result<()> {
    let path = user_dir.join(SPECIAL_USE_FILE);
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let mut text: String = old
        .lines()
        .filter(|l| l.split_once('\t').is_none_or(|(a, _)| a != attr))
        .map(|l| format!("{l}\n"))
        .collect();
    text.push_str(&format!("{attr}\t{}\n", folder.unwrap_or("")));
    let tmp = user_dir.join(format!("{SPECIAL_USE_FILE}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)
}

/// A folder was renamed or deleted: its special uses follow it (or go).
pub(super) fn follow(user_dir: &UserDir, from: &str, to: Option<&str>) {
    for (attr, folder) in special_uses(user_dir) {
        if folder == from {
            let _ = set_special_use(user_dir, &attr, to);
        }
    }
}

/// INBOX and the special-use folders, created (and subscribed) when missing.
pub(super) fn ensure_special_folders(dir: &UserDir) -> Result<(), folders::FolderError> {
    folders::ensure_inbox(dir)?;
    // A user who never subscribed to anything starts with INBOX subscribed (clients that
    // show subscribed folders only would hide it otherwise).
    if !dir.join(folders::SUBSCRIPTIONS).exists() {
        folders::set_subscribed(dir, "INBOX", true)?;
    }
    for (name, _) in SPECIAL_FOLDERS {
        if !folders::folder_path(dir, name)?.join("cur").is_dir() {
            folders::create(dir, name)?;
            folders::set_subscribed(dir, name, true)?;
        }
    }
    Ok(())
}
