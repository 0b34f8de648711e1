//! LIST and LSUB answers (RFC 3501 §6.3.8/§6.3.9, RFC 5258 LIST-EXTENDED, RFC 6154
//! SPECIAL-USE), computed from what the user has: folders, subscriptions, special uses. Pure:
//! the session reads those and writes the lines.
//!
//! What goes out:
//! - LIST: every folder the pattern matches, and every parent that exists only through its
//!   children (`\Noselect`); `\HasChildren`/`\HasNoChildren`; special-use attributes;
//!   `\Subscribed` when asked for (RETURN (SUBSCRIBED) or the SUBSCRIBED selection).
//! - The SUBSCRIBED selection: subscribed names only, those that do not exist with
//!   `\NonExistent`; with RECURSIVEMATCH, also the names whose descendants are subscribed, with
//!   `CHILDINFO ("SUBSCRIBED")` (RFC 5258 §3.5).
//! - LSUB: subscribed names; with `%`, an unsubscribed parent of a subscribed name appears
//!   with `\Noselect` (RFC 3501 §6.3.9). No child information (LSUB has none).
//! - The SPECIAL-USE selection: folders with a special use only.

use super::command::ListArgs;
use crate::maildir::folders::{self, ListEntry, SEPARATOR};

/// One LIST/LSUB response line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListLine {
    pub name: String,
    pub attrs: Vec<String>,
    /// `CHILDINFO ("SUBSCRIBED")`: a descendant is subscribed (RECURSIVEMATCH).
    pub childinfo_subscribed: bool,
    /// A folder that exists and can be selected (RETURN (STATUS) is answered for it).
    pub selectable: bool,
}

/// What the user has, for [`answer`].
pub struct Have<'a> {
    /// Folders and implied parents (`folders::tree`), INBOX included.
    pub entries: &'a [ListEntry],
    pub subscribed: &'a [String],
    /// (attribute, folder) pairs.
    pub special: &'a [(String, String)],
}

/// IMAP LIST pattern matching: `*` matches anything, `%` anything but the separator. Linear
/// in the product of the lengths (dynamic programming), never exponential.
pub fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // row[j]: pattern prefix p[..i] matches n[..j].
    let mut row = vec![false; n.len() + 1];
    row[0] = true;
    for &pc in &p {
        let mut next = vec![false; n.len() + 1];
        match pc {
            '*' => {
                let mut any = false;
                for j in 0..=n.len() {
                    any |= row[j];
                    next[j] = any;
                }
            }
            '%' => {
                let mut any = false;
                for j in 0..=n.len() {
                    if j > 0 && n[j - 1] == SEPARATOR {
                        any = false;
                    }
                    any |= row[j];
                    next[j] = any;
                }
            }
            c => {
                for j in 1..=n.len() {
                    next[j] = row[j - 1] && n[j - 1] == c;
                }
            }
        }
        row = next;
    }
    row[n.len()]
}

/// Whether `name` matches `pattern`; INBOX case-insensitively (RFC 3501 §5.1).
pub fn matches(pattern: &str, name: &str) -> bool {
    if folders::is_inbox(name) {
        return wildcard(&pattern.to_ascii_uppercase(), "INBOX");
    }
    wildcard(pattern, name)
}

fn is_subscribed(subscribed: &[String], name: &str) -> bool {
    subscribed
        .iter()
        .any(|s| s == name || (folders::is_inbox(name) && folders::is_inbox(s)))
}

fn special_attrs(special: &[(String, String)], name: &str) -> Vec<String> {
    special
        .iter()
        .filter(|(_, f)| f == name)
        .map(|(a, _)| a.clone())
        .collect()
}

/// The lines for `args` with `full` patterns (reference + pattern, decoded).
pub fn answer(
    args: &ListArgs<'_>,
    patterns: &[String],
    lsub: bool,
    have: &Have<'_>,
) -> Vec<ListLine> {
    let mut out: Vec<ListLine> = Vec::new();
    let push = |out: &mut Vec<ListLine>, line: ListLine| {
        if !out.iter().any(|l| l.name == line.name) {
            out.push(line);
        }
    };
    let sel = &args.select;
    let by_subscription = lsub || sel.subscribed;
    for pat in patterns {
        if by_subscription {
            // Subscribed names, existing or not.
            for s in have.subscribed {
                let name = if folders::is_inbox(s) {
                    "INBOX".to_string()
                } else {
                    s.clone()
                };
                let entry = have.entries.iter().find(|e| e.name == name);
                if matches(pat, &name) {
                    let mut attrs = Vec::new();
                    match entry {
                        None if !lsub => attrs.push("\\NonExistent".to_string()),
                        Some(e) if !e.selectable => attrs.push("\\Noselect".to_string()),
                        _ => {}
                    }
                    if !lsub {
                        attrs.push("\\Subscribed".to_string());
                        if let Some(e) = entry
                            && (args.returns.children || !args.extended)
                        {
                            attrs.push(children_attr(e));
                        }
                    }
                    attrs.extend(special_attrs(have.special, &name));
                    let childinfo =
                        !lsub && sel.recursive_match && has_subscribed_child(have, &name);
                    push(
                        &mut out,
                        ListLine {
                            name,
                            attrs,
                            childinfo_subscribed: childinfo,
                            selectable: entry.is_some_and(|e| e.selectable),
                        },
                    );
                    continue;
                }
                // An ancestor the pattern matches at a `%` level.
                let mut at = 0;
                while let Some(i) = name[at..].find(SEPARATOR) {
                    let parent = &name[..at + i];
                    at += i + 1;
                    if !matches(pat, parent) || is_subscribed(have.subscribed, parent) {
                        continue;
                    }
                    if lsub {
                        push(
                            &mut out,
                            ListLine {
                                name: parent.to_string(),
                                attrs: vec!["\\Noselect".to_string()],
                                childinfo_subscribed: false,
                                selectable: false,
                            },
                        );
                    } else if sel.recursive_match {
                        let pe = have.entries.iter().find(|e| e.name == parent);
                        let mut attrs = Vec::new();
                        match pe {
                            None => attrs.push("\\NonExistent".to_string()),
                            Some(e) if !e.selectable => attrs.push("\\Noselect".to_string()),
                            Some(e) if args.returns.children => attrs.push(children_attr(e)),
                            _ => {}
                        }
                        push(
                            &mut out,
                            ListLine {
                                name: parent.to_string(),
                                attrs,
                                childinfo_subscribed: true,
                                selectable: pe.is_some_and(|e| e.selectable),
                            },
                        );
                    }
                }
            }
            continue;
        }
        for e in have.entries {
            if !matches(pat, &e.name) {
                continue;
            }
            let uses = special_attrs(have.special, &e.name);
            if sel.special_use && uses.is_empty() {
                continue;
            }
            let mut attrs = Vec::new();
            if !e.selectable {
                // A parent that exists only through its children: LIST-EXTENDED calls it
                // \NonExistent (RFC 5258 §3.4; it implies \Noselect).
                attrs.push(
                    if args.extended {
                        "\\NonExistent"
                    } else {
                        "\\Noselect"
                    }
                    .to_string(),
                );
            }
            attrs.push(children_attr(e));
            attrs.extend(uses);
            if args.returns.subscribed && is_subscribed(have.subscribed, &e.name) {
                attrs.push("\\Subscribed".to_string());
            }
            push(
                &mut out,
                ListLine {
                    name: e.name.clone(),
                    attrs,
                    childinfo_subscribed: false,
                    selectable: e.selectable,
                },
            );
        }
    }
    out
}

fn children_attr(e: &ListEntry) -> String {
    if e.has_children {
        "\\HasChildren".into()
    } else {
        "\\HasNoChildren".into()
    }
}

fn has_subscribed_child(have: &Have<'_>, name: &str) -> bool {
    let prefix = format!("{name}{SEPARATOR}");
    have.subscribed.iter().any(|s| s.starts_with(&prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::command::{ListReturn, ListSelect, Mailbox};
    use std::borrow::Cow;

    #[test]
    fn wildcards() {
        for (p, n, want) in [
            ("*", "a/b/c", true),
            ("%", "a/b", false),
            ("%", "a", true),
            ("a/%", "a/b", true),
            ("a/%", "a/b/c", false),
            ("%/%", "a/b", true),
            ("W*s", "Work/Projects", true),
            ("W*s", "Work/Projects/Alpha", false),
            ("*o*", "Notes", true),
            ("", "", true),
            ("a", "ab", false),
        ] {
            assert_eq!(wildcard(p, n), want, "{p} vs {n}");
        }
        // Linear, not exponential: a pattern of many stars against a long name.
        let p = "*a".repeat(30) + "b";
        let n = "a".repeat(3000);
        assert!(!wildcard(&p, &n));
        assert!(matches("inbox", "INBOX"));
        assert!(matches("*o*", "INBOX"));
    }

    fn args(select: ListSelect) -> ListArgs<'static> {
        ListArgs {
            select,
            reference: Mailbox(Cow::Borrowed(b"")),
            patterns: vec![],
            returns: ListReturn::default(),
            extended: true,
        }
    }

    fn entry(name: &str, selectable: bool, has_children: bool) -> ListEntry {
        ListEntry {
            name: name.into(),
            selectable,
            has_children,
        }
    }

    #[test]
    fn rfc5258_childinfo_and_lsub_noselect() {
        let entries = vec![
            entry("INBOX", true, false),
            entry("Foo", true, true),
            entry("Foo/Bar", true, false),
            entry("Moo", true, false),
        ];
        let subscribed = vec!["Foo/Bar".to_string(), "Moo".to_string(), "Gone".to_string()];
        let have = Have {
            entries: &entries,
            subscribed: &subscribed,
            special: &[],
        };
        let a = args(ListSelect {
            subscribed: true,
            recursive_match: true,
            ..Default::default()
        });
        let lines = answer(&a, &["%".into()], false, &have);
        let foo = lines.iter().find(|l| l.name == "Foo").unwrap();
        assert!(foo.childinfo_subscribed && foo.attrs.is_empty(), "{foo:?}");
        let gone = lines.iter().find(|l| l.name == "Gone").unwrap();
        assert!(gone.attrs.contains(&"\\NonExistent".to_string()));
        let lsub = answer(&args(ListSelect::default()), &["%".into()], true, &have);
        let foo = lsub.iter().find(|l| l.name == "Foo").unwrap();
        assert_eq!(foo.attrs, vec!["\\Noselect".to_string()]);
        assert!(!lsub.iter().any(|l| l.name == "Foo/Bar"));
    }
}
