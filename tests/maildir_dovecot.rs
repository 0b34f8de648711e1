//! Dovecot compatibility of the Maildir store: a mail root Dovecot 2.3 wrote must read the same
//! through s3imap (UIDVALIDITY, UIDs, flags, keywords, folders, subscriptions), and after
//! s3imap changed it, Dovecot must read back exactly what s3imap shows. Runs only where
//! `dovecot` is installed (CI installs dovecot-imapd); prints "skipped" otherwise.

mod dovecot;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use s3imap::maildir::folders;
use s3imap::maildir::store::{Flags, Mailbox};
use s3imap::utf7;

use dovecot::Dovecot;

const USER: &str = "a@b.c";
const PASS: &str = "secret";

/// uid → system flags and keywords.
type Messages = BTreeMap<u32, BTreeSet<String>>;

/// One view of a user's mail, comparable between Dovecot and us.
#[derive(Debug, Default, PartialEq, Eq)]
struct State {
    /// name → (UIDVALIDITY, UIDNEXT, uid → flags and keywords)
    boxes: BTreeMap<String, (u32, u32, Messages)>,
    /// (name, selectable)
    list: BTreeSet<(String, bool)>,
    subscriptions: BTreeSet<String>,
}

/// Prints Dovecot's view as tab-separated lines (names in modified UTF-7).
const DUMP: &str = r#"
def unquote(s):
    if s.startswith('"'):
        return s[1:-1].replace('\\"', '"').replace('\\\\', '\\')
    return s
pat = re.compile(r'\((?P<flags>[^)]*)\) (?:"(?:\\.|.)"|NIL) (?P<name>.*)$')
names = []
for line in ok(M.list('""', '*'))[1]:
    m = pat.match(line.decode())
    name = unquote(m.group('name'))
    sel = '\\Noselect' not in m.group('flags') and '\\NonExistent' not in m.group('flags')
    print('LIST\t%s\t%d' % (name, sel))
    if sel:
        names.append(name)
for line in ok(M.lsub('""', '*'))[1]:
    m = pat.match(line.decode())
    print('LSUB\t%s' % unquote(m.group('name')))
for name in names:
    typ, data = M.select('"%s"' % name.replace('\\', '\\\\').replace('"', '\\"'), readonly=True)
    assert typ == 'OK', (name, data)
    exists = int(data[0])
    uv = M.response('UIDVALIDITY')[1][0].decode()
    un = M.response('UIDNEXT')[1][0].decode()
    print('MBOX\t%s\t%s\t%s' % (name, uv, un))
    if exists:
        for item in ok(M.fetch('1:*', '(UID FLAGS)'))[1]:
            m = re.search(r'UID (\d+) FLAGS \(([^)]*)\)', item.decode())
            flags = [f for f in m.group(2).split() if f != '\\Recent']
            print('MSG\t%s\t%s\t%s' % (name, m.group(1), ' '.join(flags)))
"#;

fn decode(name: &str) -> String {
    utf7::decode(name.as_bytes()).unwrap_or_else(|e| panic!("{name:?}: {e}"))
}

fn parse_dump(out: &str) -> State {
    let mut st = State::default();
    for line in out.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f[0] {
            "LIST" => {
                st.list.insert((decode(f[1]), f[2] == "1"));
            }
            "LSUB" => {
                st.subscriptions.insert(decode(f[1]));
            }
            "MBOX" => {
                st.boxes.insert(
                    decode(f[1]),
                    (
                        f[2].parse().unwrap(),
                        f[3].parse().unwrap(),
                        BTreeMap::new(),
                    ),
                );
            }
            "MSG" => {
                let flags = f[3].split(' ').filter(|s| !s.is_empty());
                st.boxes
                    .get_mut(&decode(f[1]))
                    .unwrap()
                    .2
                    .insert(f[2].parse().unwrap(), flags.map(str::to_string).collect());
            }
            other => panic!("unexpected line {other:?} in {out}"),
        }
    }
    st
}

fn dovecot_state(root: &Path) -> State {
    let dv = Dovecot::start(root, &[(USER, PASS)]);
    parse_dump(&dv.python(USER, PASS, DUMP))
}

fn our_state(user: &s3imap::maildir::UserDir) -> State {
    let mut st = State::default();
    let all = folders::list(user).unwrap();
    for e in folders::tree(&all) {
        st.list.insert((e.name, e.selectable));
    }
    for f in &all {
        let mb = Mailbox::open(&f.path(user), true).unwrap();
        let mut msgs = BTreeMap::new();
        for m in mb.messages() {
            let mut flags: BTreeSet<String> = m.flags().imap_names().map(str::to_string).collect();
            flags.extend(mb.keyword_names(m.uid()).into_iter().map(str::to_string));
            msgs.insert(m.uid(), flags);
        }
        st.boxes
            .insert(f.name.clone(), (mb.uid_validity(), mb.uid_next(), msgs));
    }
    st.subscriptions = folders::subscriptions(user).unwrap().into_iter().collect();
    st
}

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn flags_of(st: &State, mbox: &str, uid: u32) -> Vec<String> {
    st.boxes[mbox].2[&uid].iter().cloned().collect()
}

#[test]
fn dovecot_round_trip() {
    if !dovecot::require() {
        return;
    }
    let scratch = Scratch(std::env::temp_dir().join(format!("s3imap-dvrt-{}", std::process::id())));
    let _ = fs::remove_dir_all(&scratch.0);
    let root = scratch.0.join("mail");
    fs::create_dir_all(&root).unwrap();
    let user = s3imap::maildir::user_dir(&root, USER).unwrap();

    // 1. Dovecot writes a mail root.
    {
        let dv = Dovecot::start(&root, &[(USER, PASS)]);
        dv.python(
            USER,
            PASS,
            r#"
msg = lambda n: b"From: a@b.c\r\nSubject: m%d\r\n\r\nbody %d\r\n" % (n, n)
ok(M.append('INBOX', r'(\Seen)', imaplib.Time2Internaldate(1700000000), msg(1)))
ok(M.append('INBOX', r'(\Flagged $Forwarded custom1)', None, msg(2)))
ok(M.append('INBOX', None, None, msg(3)))
ok(M.append('INBOX', r'($Junk \Answered \Draft)', None, msg(4)))
ok(M.append('INBOX', None, None, msg(5)))
for name in ['Lists/rust', '&AMk-crits', '"Tom &- Jerry"', 'Lists/go/deep']:
    ok(M.create(name))
for name in ['Lists/rust', '&AMk-crits', 'INBOX']:
    ok(M.subscribe(name))
ok(M.append('Lists/rust', r'(\Seen custom2)', None, msg(6)))
ok(M.append('&AMk-crits', None, None, msg(7)))
ok(M.select('INBOX'))
ok(M.store('3', '+FLAGS', r'(\Deleted)'))
ok(M.expunge())
ok(M.store('1', '+FLAGS', r'(other $Junk)'))
"#,
        );
    }
    // A message the way `s3imap sync` delivers it, before anyone opened it.
    let body = "From: x@y\r\nSubject: s3\r\n\r\nhi\r\n";
    fs::write(
        user.join(format!(
            "new/1700000100.S3I0123456789abcdef0123456789abcdef.s3imap,S={0},W={0}",
            body.len()
        )),
        body,
    )
    .unwrap();

    let theirs = dovecot_state(&root);
    let ours = our_state(&user);
    assert_eq!(
        ours, theirs,
        "s3imap must read Dovecot's mail root as Dovecot does"
    );
    assert_eq!(
        flags_of(&ours, "INBOX", 1),
        vec!["$Junk", "\\Seen", "other"]
    );
    assert_eq!(
        flags_of(&ours, "INBOX", 2),
        vec!["$Forwarded", "\\Flagged", "custom1"]
    );
    assert!(!ours.boxes["INBOX"].2.contains_key(&3), "expunged");
    assert_eq!(
        ours.boxes["INBOX"].2.len(),
        5,
        "4 appended + the delivered one"
    );
    assert!(ours.list.contains(&("Lists".into(), false)));
    assert!(ours.list.contains(&("Tom & Jerry".into(), true)));
    assert_eq!(
        ours.subscriptions,
        ["Lists/rust", "Écrits", "INBOX"].map(String::from).into()
    );
    let inbox_uv = ours.boxes["INBOX"].0;

    // 2. s3imap changes it.
    let mut inbox = Mailbox::open(&user, false).unwrap();
    assert_eq!(inbox.uid_validity(), inbox_uv);
    let (new_uid, uv) = inbox
        .append(
            &b"Subject: ours\r\n\r\nx\r\n"[..],
            Flags::SEEN | Flags::FLAGGED,
            &["$Label1", "custom1"],
            None,
        )
        .unwrap();
    assert_eq!(uv, inbox_uv);
    inbox.refresh().unwrap();
    inbox
        .set_flags(2, Flags::ANSWERED, &["$Junk", "$Forwarded"])
        .unwrap();
    inbox.expunge(&[4]).unwrap();
    let rust = folders::folder_path(&user, "Lists/rust").unwrap();
    let (copied, _) = inbox.copy_to(new_uid, &rust).unwrap();
    let neu = folders::create(&user, "Neu/Écrits ünd").unwrap();
    let (neu_uid, neu_uv) = Mailbox::open(&neu, false)
        .unwrap()
        .append(&b"Subject: neu\r\n\r\n"[..], Flags::DRAFT, &["$Junk"], None)
        .unwrap();
    assert_eq!(neu_uid, 1);
    folders::rename(&user, "Tom & Jerry", "Archive/Tom").unwrap();
    folders::delete(&user, "Lists/go/deep").unwrap();
    folders::set_subscribed(&user, "Neu/Écrits ünd", true).unwrap();
    folders::set_subscribed(&user, "Écrits", false).unwrap();
    drop(inbox);
    // Delivered after our last look: Dovecot will number it, and must give it UIDNEXT.
    fs::write(
        user.join(".Lists.rust/new/1700000200.S3Ifeed.s3imap,S=1,W=1"),
        "x",
    )
    .unwrap();

    let mut ours = our_state(&user);
    assert_eq!(ours.boxes["Neu/Écrits ünd"].0, neu_uv);
    assert_eq!(
        flags_of(&ours, "INBOX", 2),
        vec!["$Forwarded", "$Junk", "\\Answered"]
    );
    assert_eq!(
        flags_of(&ours, "Lists/rust", copied),
        vec!["$Label1", "\\Flagged", "\\Seen", "custom1"]
    );
    // our_state's read-only open numbered the late delivery already; Dovecot must agree.
    let late = ours.boxes["Lists/rust"].1 - 1;
    assert!(ours.boxes["Lists/rust"].2.contains_key(&late));

    // 3. Dovecot reads what s3imap left.
    let theirs = dovecot_state(&root);
    assert_eq!(
        theirs, ours,
        "Dovecot must read s3imap's changes as s3imap shows them"
    );

    // 4. One more delivery that only Dovecot numbers; we read its UID back.
    fs::write(user.join("new/1700000300.S3Ibeef.s3imap,S=1,W=1"), "y").unwrap();
    let theirs = dovecot_state(&root);
    ours = our_state(&user);
    assert_eq!(ours, theirs);
    assert_eq!(ours.boxes["INBOX"].0, inbox_uv, "UIDVALIDITY never changed");
}
