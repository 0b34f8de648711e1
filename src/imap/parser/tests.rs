//! Table-driven and property tests of the framer, the grammar and the line parsers.

use super::*;
use crate::imap::command::*;
use std::borrow::Cow;

fn lim() -> Limits {
    Limits::default()
}

fn show(input: &[u8]) -> String {
    String::from_utf8_lossy(input).into_owned()
}

fn ok(input: &[u8]) -> Command<'_> {
    match parse_command(input, &lim()) {
        Ok(Parsed::Complete { command, consumed }) => {
            assert_eq!(consumed, input.len(), "{}", show(input));
            command
        }
        other => panic!("{:?}: {other:?}", show(input)),
    }
}

fn kind(input: &[u8]) -> CommandKind<'_> {
    ok(input).kind
}

/// A rejected complete command: (tag, kind); checks that `skip` covers it all.
fn bad(input: &[u8]) -> (Option<&str>, ParseErrorKind) {
    match parse_command(input, &lim()) {
        Err(e) => {
            assert_eq!(e.skip, input.len(), "{}", show(input));
            assert!(e.resync.is_none());
            (e.tag, e.kind)
        }
        other => panic!("{:?}: expected an error, got {other:?}", show(input)),
    }
}

fn b(s: &str) -> Cow<'_, [u8]> {
    Cow::Borrowed(s.as_bytes())
}

fn mbox(s: &str) -> Mailbox<'_> {
    Mailbox(b(s))
}

fn n(x: u32) -> SeqBound {
    SeqBound::Num(x)
}

fn one(x: u32) -> (SeqBound, SeqBound) {
    (n(x), n(x))
}

fn seq(r: &[(SeqBound, SeqBound)]) -> SequenceArg {
    let ranges = r.iter().map(|&(from, to)| SeqRange { from, to }).collect();
    SequenceArg::Set(SequenceSet::new(ranges).unwrap())
}

fn fetch(input: &[u8]) -> FetchArgs<'_> {
    match kind(input) {
        CommandKind::Fetch(f) => f,
        other => panic!("{other:?}"),
    }
}

fn search(input: &[u8]) -> SearchArgs<'_> {
    match kind(input) {
        CommandKind::Search(s) => s,
        other => panic!("{other:?}"),
    }
}

fn keys(input: &[u8]) -> Vec<SearchKey<'_>> {
    search(input).keys
}

fn date(y: u16, m: u8, d: u8) -> Date {
    Date::new(y, m, d).unwrap()
}

fn header_fields(names: &str) -> Vec<Cow<'_, [u8]>> {
    names.split(' ').map(b).collect()
}

// ----- simple commands and lexical rules -----

#[test]
fn argumentless_commands() {
    let cases: &[(&[u8], CommandKind<'static>)] = &[
        (b"a CAPABILITY\r\n", CommandKind::Capability),
        (b"a NOOP\r\n", CommandKind::Noop),
        (b"a LOGOUT\r\n", CommandKind::Logout),
        (b"a STARTTLS\r\n", CommandKind::StartTls),
        (b"a NAMESPACE\r\n", CommandKind::Namespace),
        (b"a CHECK\r\n", CommandKind::Check),
        (b"a CLOSE\r\n", CommandKind::Close),
        (b"a UNSELECT\r\n", CommandKind::Unselect),
        (b"a EXPUNGE\r\n", CommandKind::Expunge),
        (b"a IDLE\r\n", CommandKind::Idle),
    ];
    for (input, expected) in cases {
        assert_eq!(&kind(input), expected);
        assert_eq!(ok(input).tag, "a");
    }
}

#[test]
fn keywords_are_case_insensitive_and_bare_lf_is_accepted() {
    assert_eq!(kind(b"x1 noop\r\n"), CommandKind::Noop);
    assert_eq!(kind(b"x1 NoOp\n"), CommandKind::Noop);
    assert_eq!(kind(b"x1 capability\n"), CommandKind::Capability);
    let c = ok(b"A.b-c_9]x noop\n");
    assert_eq!(c.tag, "A.b-c_9]x");
    assert_eq!(
        bad(b"a NOOP\rx\r\n"),
        (Some("a"), ParseErrorKind::BadCharacter)
    );
}

#[test]
fn command_names() {
    assert_eq!(kind(b"a uid fetch 1 flags\r\n").name(), "UID FETCH");
    assert_eq!(kind(b"a fetch 1 flags\r\n").name(), "FETCH");
    assert_eq!(kind(b"a UID MOVE 1 x\r\n").name(), "UID MOVE");
}

#[test]
fn login_forms() {
    assert_eq!(
        kind(b"a LOGIN alice s3cret\r\n"),
        CommandKind::Login {
            username: b("alice"),
            password: b("s3cret")
        }
    );
    // Quoted with escapes: owned; without: borrowed.
    let CommandKind::Login { username, password } = kind(b"a LOGIN \"al ice\" \"p\\\"w\\\\d\"\r\n")
    else {
        panic!()
    };
    assert!(matches!(username, Cow::Borrowed(b"al ice")));
    assert!(matches!(&password, Cow::Owned(v) if v == b"p\"w\\d"));
    // Literals, synchronizing and not, carrying 8-bit; ']' is an astring char.
    assert_eq!(
        kind(b"a LOGIN {5}\r\nj\xc3\xbcrg {3+}\r\np w\r\n"),
        CommandKind::Login {
            username: Cow::Borrowed(b"j\xc3\xbcrg"),
            password: b("p w")
        }
    );
    assert_eq!(
        kind(b"a login user]x \"\"\r\n"),
        CommandKind::Login {
            username: b("user]x"),
            password: b("")
        }
    );
    assert_eq!(
        bad(b"a LOGIN alice\r\n"),
        (Some("a"), ParseErrorKind::MissingArgument("password"))
    );
    assert_eq!(
        bad(b"a LOGIN alice pw extra\r\n"),
        (Some("a"), ParseErrorKind::ExtraArguments)
    );
}

#[test]
fn authenticate_forms() {
    assert_eq!(
        kind(b"a AUTHENTICATE PLAIN\r\n"),
        CommandKind::Authenticate {
            mechanism: "PLAIN",
            initial_response: None
        }
    );
    assert_eq!(
        kind(b"a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n"),
        CommandKind::Authenticate {
            mechanism: "PLAIN",
            initial_response: Some(b"AGFsaWNlAHNlY3JldA==")
        }
    );
    assert_eq!(
        kind(b"a authenticate xoauth2 =\r\n"),
        CommandKind::Authenticate {
            mechanism: "xoauth2",
            initial_response: Some(b"")
        }
    );
    assert_eq!(
        bad(b"a AUTHENTICATE PLAIN AGFsaWNl=AHN\r\n"),
        (Some("a"), ParseErrorKind::InvalidBase64)
    );
    assert_eq!(
        bad(b"a AUTHENTICATE PLAIN abc\r\n"),
        (Some("a"), ParseErrorKind::InvalidBase64)
    );
}

#[test]
fn id_forms() {
    assert_eq!(kind(b"a ID NIL\r\n"), CommandKind::Id(None));
    assert_eq!(kind(b"a ID ()\r\n"), CommandKind::Id(Some(vec![])));
    let ios = b"a ID (\"name\" \"iPhone Mail\" \"version\" \"19E258\" \"os\" \"iOS\" \"os-version\" \"15.4.1 (19E258)\")\r\n";
    assert_eq!(
        kind(ios),
        CommandKind::Id(Some(vec![
            (b("name"), Some(b("iPhone Mail"))),
            (b("version"), Some(b("19E258"))),
            (b("os"), Some(b("iOS"))),
            (b("os-version"), Some(b("15.4.1 (19E258)"))),
        ]))
    );
    assert_eq!(
        kind(b"a ID (\"name\" NIL {7}\r\nvendor\xff \"x\")\r\n"),
        CommandKind::Id(Some(vec![
            (b("name"), None),
            (Cow::Borrowed(&b"vendor\xff"[..]), Some(b("x"))),
        ]))
    );
    assert_eq!(
        bad(b"a ID (name \"x\")\r\n"),
        (Some("a"), ParseErrorKind::Expected("ID field name"))
    );
    assert_eq!(
        bad(b"a ID (\"name\" \"x\"\r\n"),
        (Some("a"), ParseErrorKind::UnbalancedParens)
    );
    assert_eq!(
        bad(b"a ID (\"name\")\r\n"),
        (Some("a"), ParseErrorKind::ExpectedSpace("ID field value"))
    );
}

#[test]
fn enable_forms() {
    assert_eq!(
        kind(b"a COMPRESS deflate\r\n"),
        CommandKind::Compress("deflate")
    );
    assert_eq!(
        kind(b"a ENABLE CONDSTORE\r\n"),
        CommandKind::Enable(vec!["CONDSTORE"])
    );
    assert_eq!(
        kind(b"a ENABLE QRESYNC IMAP4rev2 UTF8=ACCEPT\r\n"),
        CommandKind::Enable(vec!["QRESYNC", "IMAP4rev2", "UTF8=ACCEPT"])
    );
    assert_eq!(
        bad(b"a ENABLE\r\n"),
        (Some("a"), ParseErrorKind::MissingArgument("capability"))
    );
}

#[test]
fn select_examine() {
    assert_eq!(
        kind(b"a SELECT INBOX\r\n"),
        CommandKind::Select {
            mailbox: mbox("INBOX"),
            params: SelectParams::default()
        }
    );
    assert_eq!(
        kind(b"a examine \"Sent Items\" (CONDSTORE)\r\n"),
        CommandKind::Examine {
            mailbox: mbox("Sent Items"),
            params: SelectParams {
                condstore: true,
                qresync: None
            }
        }
    );
    for q in [
        &b"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n"[..],
        b"a SELECT INBOX (QRESYNC (67890007 90060115194045000))\r\n",
        b"a SELECT INBOX (CONDSTORE QRESYNC (1 2 1:9 (1,5 10,50)))\r\n",
        b"a SELECT INBOX (QRESYNC (1 2 (1 10)))\r\n",
    ] {
        let CommandKind::Select { params, .. } = kind(q) else {
            panic!()
        };
        assert!(params.qresync.is_some(), "{}", show(q));
    }
    assert_eq!(
        bad(b"a SELECT INBOX (FOO)\r\n"),
        (Some("a"), ParseErrorKind::UnknownOption("SELECT parameter"))
    );
    assert_eq!(
        bad(b"a SELECT INBOX (CONDSTORE\r\n"),
        (Some("a"), ParseErrorKind::UnbalancedParens)
    );
    assert_eq!(
        bad(b"a SELECT\r\n"),
        (Some("a"), ParseErrorKind::MissingArgument("mailbox name"))
    );
    let CommandKind::Select { mailbox, .. } = kind(b"a select inbox\r\n") else {
        panic!()
    };
    assert!(mailbox.is_inbox());
    assert_eq!(mailbox.decode().unwrap(), "INBOX");
}

#[test]
fn mailbox_management() {
    assert_eq!(
        kind(b"a CREATE Drafts (USE (\\Drafts))\r\n"),
        CommandKind::Create {
            mailbox: mbox("Drafts"),
            special_use: vec![SpecialUse::Drafts]
        }
    );
    assert_eq!(
        kind(b"a CREATE x (USE (\\All \\Archive \\Flagged \\Junk \\Sent \\Trash \\Important))\r\n"),
        CommandKind::Create {
            mailbox: mbox("x"),
            special_use: vec![
                SpecialUse::All,
                SpecialUse::Archive,
                SpecialUse::Flagged,
                SpecialUse::Junk,
                SpecialUse::Sent,
                SpecialUse::Trash,
                SpecialUse::Other("\\Important")
            ]
        }
    );
    assert_eq!(
        kind(b"a CREATE &AMk-t&AOk-\r\n"),
        CommandKind::Create {
            mailbox: mbox("&AMk-t&AOk-"),
            special_use: vec![]
        }
    );
    assert_eq!(
        bad(b"a CREATE x (FOO (\\Drafts))\r\n"),
        (Some("a"), ParseErrorKind::UnknownOption("CREATE parameter"))
    );
    assert_eq!(
        kind(b"a DELETE \"Old\"\r\n"),
        CommandKind::Delete {
            mailbox: mbox("Old")
        }
    );
    assert_eq!(
        kind(b"a RENAME a b\r\n"),
        CommandKind::Rename {
            from: mbox("a"),
            to: mbox("b")
        }
    );
    assert_eq!(
        kind(b"a SUBSCRIBE x\r\n"),
        CommandKind::Subscribe { mailbox: mbox("x") }
    );
    assert_eq!(
        kind(b"a UNSUBSCRIBE {1}\r\nx\r\n"),
        CommandKind::Unsubscribe { mailbox: mbox("x") }
    );
    assert_eq!(
        bad(b"a RENAME a\r\n"),
        (Some("a"), ParseErrorKind::MissingArgument("mailbox name"))
    );
}

#[test]
fn list_basic_and_extended() {
    assert_eq!(
        kind(b"a LIST \"\" *\r\n"),
        CommandKind::List(ListArgs {
            select: ListSelect::default(),
            reference: mbox(""),
            patterns: vec![b("*")],
            returns: ListReturn::default(),
            extended: false,
        })
    );
    assert_eq!(
        kind(b"a list \"\" INBOX.%]\r\n"),
        CommandKind::List(ListArgs {
            select: ListSelect::default(),
            reference: mbox(""),
            patterns: vec![b("INBOX.%]")],
            returns: ListReturn::default(),
            extended: false,
        })
    );
    assert_eq!(
        kind(
            b"a LIST (SUBSCRIBED REMOTE RECURSIVEMATCH SPECIAL-USE) \"\" (\"INBOX\" \"Sent/%\" *) RETURN (SUBSCRIBED CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN))\r\n"
        ),
        CommandKind::List(ListArgs {
            select: ListSelect {
                subscribed: true,
                remote: true,
                recursive_match: true,
                special_use: true
            },
            reference: mbox(""),
            patterns: vec![b("INBOX"), b("Sent/%"), b("*")],
            returns: ListReturn {
                subscribed: true,
                children: true,
                special_use: true,
                status: Some(vec![StatusItem::Messages, StatusItem::Unseen]),
            },
            extended: true,
        })
    );
    let CommandKind::List(l) = kind(b"a LIST () \"\" % RETURN ()\r\n") else {
        panic!()
    };
    assert!(l.extended);
    assert_eq!(l.returns, ListReturn::default());
    assert_eq!(
        bad(b"a LIST (RECURSIVEMATCH) \"\" *\r\n"),
        (
            Some("a"),
            ParseErrorKind::Invalid("RECURSIVEMATCH needs SUBSCRIBED or SPECIAL-USE")
        )
    );
    assert_eq!(
        bad(b"a LIST (BOGUS) \"\" *\r\n"),
        (
            Some("a"),
            ParseErrorKind::UnknownOption("LIST selection option")
        )
    );
    assert_eq!(
        bad(b"a LIST \"\" * RETURN (BOGUS)\r\n"),
        (
            Some("a"),
            ParseErrorKind::UnknownOption("LIST return option")
        )
    );
    assert_eq!(
        bad(b"a LIST \"\" * FOO\r\n"),
        (Some("a"), ParseErrorKind::Expected("RETURN"))
    );
    assert_eq!(
        bad(b"a LIST \"\"\r\n"),
        (
            Some("a"),
            ParseErrorKind::MissingArgument("mailbox pattern")
        )
    );
    assert_eq!(
        kind(b"a LSUB \"\" \"*\"\r\n"),
        CommandKind::Lsub {
            reference: mbox(""),
            pattern: b("*")
        }
    );
}

#[test]
fn status_items() {
    assert_eq!(
        kind(
            b"a STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN SIZE HIGHESTMODSEQ DELETED)\r\n"
        ),
        CommandKind::Status {
            mailbox: mbox("INBOX"),
            items: vec![
                StatusItem::Messages,
                StatusItem::Recent,
                StatusItem::UidNext,
                StatusItem::UidValidity,
                StatusItem::Unseen,
                StatusItem::Size,
                StatusItem::HighestModSeq,
                StatusItem::Deleted
            ]
        }
    );
    assert_eq!(
        bad(b"a STATUS INBOX (MESSAGES FOO)\r\n"),
        (Some("a"), ParseErrorKind::UnknownStatusItem)
    );
    assert_eq!(
        bad(b"a STATUS INBOX ()\r\n"),
        (Some("a"), ParseErrorKind::Expected("status item"))
    );
    assert_eq!(
        bad(b"a STATUS INBOX MESSAGES\r\n"),
        (Some("a"), ParseErrorKind::Expected("status items"))
    );
}

#[test]
fn append_forms() {
    assert_eq!(
        kind(b"a APPEND INBOX {5}\r\nhello\r\n"),
        CommandKind::Append {
            mailbox: mbox("INBOX"),
            messages: vec![AppendMessage {
                flags: vec![],
                date: None,
                data: b"hello",
                binary: false
            }]
        }
    );
    let dt = DateTime {
        date: date(2024, 1, 7),
        hour: 9,
        minute: 5,
        second: 59,
        offset_minutes: -270,
    };
    assert_eq!(
        kind(b"a APPEND Drafts (\\Seen \\Draft $Forwarded) \" 7-Jan-2024 09:05:59 -0430\" {2+}\r\nhi\r\n"),
        CommandKind::Append {
            mailbox: mbox("Drafts"),
            messages: vec![AppendMessage {
                flags: vec![Flag::Seen, Flag::Draft, Flag::Keyword("$Forwarded")],
                date: Some(dt),
                data: b"hi",
                binary: false
            }]
        }
    );
    assert_eq!(
        kind(b"a APPEND x \"07-Jan-2024 09:05:59 -0430\" {0}\r\n\r\n"),
        CommandKind::Append {
            mailbox: mbox("x"),
            messages: vec![AppendMessage {
                flags: vec![],
                date: Some(dt),
                data: b"",
                binary: false
            }]
        }
    );
    // MULTIAPPEND, literal8 with NUL.
    let CommandKind::Append { messages, .. } =
        kind(b"a APPEND x {1}\r\nA (\\Flagged) ~{3}\r\nB\x00C () {1+}\r\nD\r\n")
    else {
        panic!()
    };
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[1].data, b"B\x00C");
    assert!(messages[1].binary);
    assert_eq!(messages[1].flags, vec![Flag::Flagged]);
    assert_eq!(messages[2].data, b"D");
    // Errors (those before the literal are reported at the announcing line).
    assert_eq!(
        bad(b"a APPEND x {3}\r\nB\x00C\r\n"),
        (Some("a"), ParseErrorKind::Nul)
    );
    assert_eq!(
        bad(b"a APPEND x (\\Recent) {1}\r\n"),
        (Some("a"), ParseErrorKind::FlagNotAllowed)
    );
    assert_eq!(
        bad(b"a APPEND x (\\*) {1}\r\n"),
        (Some("a"), ParseErrorKind::FlagNotAllowed)
    );
    assert_eq!(
        bad(b"a APPEND x \"32-Jan-2024 09:05:59 +0000\" {1}\r\n"),
        (Some("a"), ParseErrorKind::InvalidDateTime)
    );
    assert_eq!(
        bad(b"a APPEND x \"7-Jan-2024 09:05:59 +0000\" {1}\r\n"),
        (Some("a"), ParseErrorKind::InvalidDateTime)
    );
    assert_eq!(
        bad(b"a APPEND x \"07-Jan-2024 24:05:59 +0000\" {1}\r\n"),
        (Some("a"), ParseErrorKind::InvalidDateTime)
    );
    assert_eq!(
        bad(b"a APPEND x \"07-Jan-2024 09:05:59 +0060\" {1}\r\n"),
        (Some("a"), ParseErrorKind::InvalidDateTime)
    );
    assert_eq!(
        bad(b"a APPEND x\r\n"),
        (
            Some("a"),
            ParseErrorKind::MissingArgument("message literal")
        )
    );
    assert_eq!(
        bad(b"a APPEND x \"hello\"\r\n"),
        (Some("a"), ParseErrorKind::InvalidDateTime)
    );
    assert_eq!(
        bad(b"a APPEND x {1}\r\nxy\r\n"),
        (Some("a"), ParseErrorKind::ExtraArguments)
    );
    assert_eq!(
        bad(b"a LOGIN ~{1}\r\n"),
        (Some("a"), ParseErrorKind::ExpectedSpace("password"))
    );
}

#[test]
fn mbsync_append_sample() {
    let mut msg = b"a001 APPEND \"INBOX\" (\\Seen) {123+}\r\n".to_vec();
    let body = [b'm'; 123];
    msg.extend_from_slice(&body);
    msg.extend_from_slice(b"\r\n");
    let CommandKind::Append { mailbox, messages } = kind(&msg) else {
        panic!()
    };
    assert!(mailbox.is_inbox());
    assert_eq!(messages[0].flags, vec![Flag::Seen]);
    assert_eq!(messages[0].data, &body[..]);
}

#[test]
fn expunge_copy_move() {
    assert_eq!(
        kind(b"a UID EXPUNGE 3000:3002,4000\r\n"),
        CommandKind::UidExpunge(seq(&[(n(3000), n(3002)), one(4000)]))
    );
    assert_eq!(
        kind(b"a COPY 2:4 MEETING\r\n"),
        CommandKind::Copy {
            uid: false,
            set: seq(&[(n(2), n(4))]),
            mailbox: mbox("MEETING")
        }
    );
    assert_eq!(
        kind(b"a uid copy 1:* \"Trash\"\r\n"),
        CommandKind::Copy {
            uid: true,
            set: seq(&[(n(1), SeqBound::Star)]),
            mailbox: mbox("Trash")
        }
    );
    assert_eq!(
        kind(b"a MOVE $ Archive\r\n"),
        CommandKind::Move {
            uid: false,
            set: SequenceArg::Saved,
            mailbox: mbox("Archive")
        }
    );
    assert_eq!(
        kind(b"a UID MOVE 42 Archive\r\n"),
        CommandKind::Move {
            uid: true,
            set: seq(&[one(42)]),
            mailbox: mbox("Archive")
        }
    );
    assert_eq!(
        bad(b"a UID FROB 1\r\n"),
        (Some("a"), ParseErrorKind::UnknownCommand)
    );
    assert_eq!(
        bad(b"a COPY 1\r\n"),
        (Some("a"), ParseErrorKind::MissingArgument("mailbox name"))
    );
}

// ----- sequence sets -----

#[test]
fn sequence_sets() {
    assert_eq!(
        kind(b"a UID EXPUNGE 1,3:5,7:*,*:9,*,4294967295\r\n"),
        CommandKind::UidExpunge(seq(&[
            one(1),
            (n(3), n(5)),
            (n(7), SeqBound::Star),
            (SeqBound::Star, n(9)),
            (SeqBound::Star, SeqBound::Star),
            one(u32::MAX)
        ]))
    );
    let bads: &[(&[u8], ParseErrorKind)] = &[
        (b"a UID EXPUNGE 0\r\n", ParseErrorKind::SequenceZero),
        (b"a UID EXPUNGE 1:0\r\n", ParseErrorKind::SequenceZero),
        (b"a UID EXPUNGE 01\r\n", ParseErrorKind::InvalidSequenceSet),
        (
            b"a UID EXPUNGE 4294967296\r\n",
            ParseErrorKind::NumberTooBig,
        ),
        (
            b"a UID EXPUNGE 99999999999999999999999\r\n",
            ParseErrorKind::NumberTooBig,
        ),
        (
            b"a UID EXPUNGE 1:\r\n",
            ParseErrorKind::MissingArgument("sequence set"),
        ),
        (
            b"a UID EXPUNGE 1,,2\r\n",
            ParseErrorKind::InvalidSequenceSet,
        ),
        (
            b"a UID EXPUNGE 1:2x\r\n",
            ParseErrorKind::InvalidSequenceSet,
        ),
        (b"a UID EXPUNGE -1\r\n", ParseErrorKind::InvalidSequenceSet),
        (b"a UID EXPUNGE 1,$\r\n", ParseErrorKind::InvalidSequenceSet),
        (b"a UID EXPUNGE $1\r\n", ParseErrorKind::InvalidSequenceSet),
        (
            b"a FETCH 1:*(FLAGS)\r\n",
            ParseErrorKind::InvalidSequenceSet,
        ),
    ];
    for (input, expected) in bads {
        assert_eq!(bad(input), (Some("a"), *expected), "{}", show(input));
    }
}

// ----- FETCH -----

#[test]
fn fetch_macros_and_single_items() {
    let f = fetch(b"a FETCH 1 ALL\r\n");
    assert_eq!(
        f.attrs,
        vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size,
            FetchAttr::Envelope
        ]
    );
    assert_eq!(
        fetch(b"a FETCH 1 fast\r\n").attrs,
        vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size
        ]
    );
    assert_eq!(
        fetch(b"a FETCH 1 FULL\r\n").attrs,
        vec![
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822Size,
            FetchAttr::Envelope,
            FetchAttr::Body
        ]
    );
    assert_eq!(fetch(b"a FETCH 1 uid\r\n").attrs, vec![FetchAttr::Uid]);
    assert_eq!(
        fetch(b"a FETCH 1 BODY[]\r\n").attrs,
        vec![FetchAttr::BodySection {
            peek: false,
            section: Section::default(),
            partial: None
        }]
    );
    assert_eq!(
        bad(b"a FETCH 1 (ALL)\r\n"),
        (Some("a"), ParseErrorKind::UnknownFetchAttribute)
    );
    assert_eq!(
        bad(b"a FETCH 1 ALLX\r\n"),
        (Some("a"), ParseErrorKind::UnknownFetchAttribute)
    );
}

#[test]
fn fetch_every_attribute() {
    let f = fetch(
        b"a FETCH 1:3 (ENVELOPE FLAGS INTERNALDATE RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT BODY BODYSTRUCTURE UID MODSEQ BODY[] BODY.PEEK[1.2.3] BODY[HEADER]<0.1024> BODY[TEXT] BODY[2.MIME] BODY[1.HEADER.FIELDS.NOT (Received)] body.peek[header.fields (From \"To\")]<10.20> BODY[3.TEXT] BINARY[1.2] BINARY.PEEK[]<5.6> BINARY.SIZE[4] BINARY.SIZE[])\r\n",
    );
    let sec = |part: Vec<u32>, text: Option<SectionText<'static>>| Section { part, text };
    assert_eq!(
        f.attrs,
        vec![
            FetchAttr::Envelope,
            FetchAttr::Flags,
            FetchAttr::InternalDate,
            FetchAttr::Rfc822,
            FetchAttr::Rfc822Header,
            FetchAttr::Rfc822Size,
            FetchAttr::Rfc822Text,
            FetchAttr::Body,
            FetchAttr::BodyStructure,
            FetchAttr::Uid,
            FetchAttr::ModSeq,
            FetchAttr::BodySection {
                peek: false,
                section: sec(vec![], None),
                partial: None
            },
            FetchAttr::BodySection {
                peek: true,
                section: sec(vec![1, 2, 3], None),
                partial: None
            },
            FetchAttr::BodySection {
                peek: false,
                section: sec(vec![], Some(SectionText::Header)),
                partial: Some(Partial {
                    offset: 0,
                    length: 1024
                })
            },
            FetchAttr::BodySection {
                peek: false,
                section: sec(vec![], Some(SectionText::Text)),
                partial: None
            },
            FetchAttr::BodySection {
                peek: false,
                section: sec(vec![2], Some(SectionText::Mime)),
                partial: None
            },
            FetchAttr::BodySection {
                peek: false,
                section: sec(
                    vec![1],
                    Some(SectionText::HeaderFieldsNot(vec![b("Received")]))
                ),
                partial: None
            },
            FetchAttr::BodySection {
                peek: true,
                section: sec(
                    vec![],
                    Some(SectionText::HeaderFields(header_fields("From To")))
                ),
                partial: Some(Partial {
                    offset: 10,
                    length: 20
                })
            },
            FetchAttr::BodySection {
                peek: false,
                section: sec(vec![3], Some(SectionText::Text)),
                partial: None
            },
            FetchAttr::Binary {
                peek: false,
                part: vec![1, 2],
                partial: None
            },
            FetchAttr::Binary {
                peek: true,
                part: vec![],
                partial: Some(Partial {
                    offset: 5,
                    length: 6
                })
            },
            FetchAttr::BinarySize { part: vec![4] },
            FetchAttr::BinarySize { part: vec![] },
        ]
    );
    assert_eq!(f.set, seq(&[(n(1), n(3))]));
    assert!(!f.uid);
}

#[test]
fn fetch_modifiers() {
    let f = fetch(b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n");
    assert!(f.uid);
    assert_eq!(f.changed_since, Some(12345));
    assert!(f.vanished);
    let f = fetch(b"a FETCH 1 FLAGS (changedsince 18446744073709551615)\r\n");
    assert_eq!(f.changed_since, Some(u64::MAX));
    assert_eq!(
        bad(b"a FETCH 1 FLAGS (FOO)\r\n"),
        (Some("a"), ParseErrorKind::UnknownOption("FETCH modifier"))
    );
}

#[test]
fn fetch_errors() {
    let bads: &[(&[u8], ParseErrorKind)] = &[
        (b"a FETCH 1 (FLAGS\r\n", ParseErrorKind::UnbalancedParens),
        (b"a FETCH 1 FLAGS)\r\n", ParseErrorKind::UnbalancedParens),
        (b"a FETCH 1 (FLAGS))\r\n", ParseErrorKind::UnbalancedParens),
        (
            b"a FETCH 1 ()\r\n",
            ParseErrorKind::Expected("fetch attribute"),
        ),
        (b"a FETCH 1 FOO\r\n", ParseErrorKind::UnknownFetchAttribute),
        (b"a FETCH 1 BODY[MIME]\r\n", ParseErrorKind::InvalidSection),
        (b"a FETCH 1 BODY.PEEK\r\n", ParseErrorKind::InvalidSection),
        (b"a FETCH 1 BODY[0]\r\n", ParseErrorKind::InvalidSection),
        (b"a FETCH 1 BODY[1.]\r\n", ParseErrorKind::InvalidSection),
        (b"a FETCH 1 BODY[1\r\n", ParseErrorKind::InvalidSection),
        (
            b"a FETCH 1 BODY[HEADER.FIELDS]\r\n",
            ParseErrorKind::ExpectedSpace("header field list"),
        ),
        (
            b"a FETCH 1 BODY[HEADER.FIELDS ()]\r\n",
            ParseErrorKind::Expected("header field name"),
        ),
        (b"a FETCH 1 BODY[]<0.0>\r\n", ParseErrorKind::InvalidSection),
        (b"a FETCH 1 BODY[]<5>\r\n", ParseErrorKind::InvalidSection),
        (b"a FETCH 1 BODY[]<x.1>\r\n", ParseErrorKind::InvalidSection),
        (
            b"a FETCH 1 BINARY[TEXT]\r\n",
            ParseErrorKind::InvalidSection,
        ),
        (
            b"a FETCH 1 BINARY.SIZE[1]<0.1>\r\n",
            ParseErrorKind::ExtraArguments,
        ),
        (
            b"a FETCH 1\r\n",
            ParseErrorKind::MissingArgument("fetch attributes"),
        ),
        (
            b"a FETCH\r\n",
            ParseErrorKind::MissingArgument("sequence set"),
        ),
        (
            b"a FETCH 1 FLAGS extra\r\n",
            ParseErrorKind::Expected("FETCH modifiers"),
        ),
    ];
    for (input, expected) in bads {
        assert_eq!(bad(input), (Some("a"), *expected), "{}", show(input));
    }
}

// ----- STORE -----

#[test]
fn store_forms() {
    let st = |input: &'static [u8]| match kind(input) {
        CommandKind::Store(s) => s,
        other => panic!("{other:?}"),
    };
    let s = st(b"a STORE 2:4 +FLAGS (\\Deleted)\r\n");
    assert_eq!(
        s,
        StoreArgs {
            uid: false,
            set: seq(&[(n(2), n(4))]),
            mode: StoreMode::Add,
            silent: false,
            flags: vec![Flag::Deleted],
            unchanged_since: None
        }
    );
    let s = st(b"a UID STORE 1 -flags.silent \\Seen $Junk \\Foo\r\n");
    assert_eq!(s.mode, StoreMode::Remove);
    assert!(s.silent && s.uid);
    assert_eq!(
        s.flags,
        vec![Flag::Seen, Flag::Keyword("$Junk"), Flag::Extension("\\Foo")]
    );
    let s = st(b"a STORE 1 (UNCHANGEDSINCE 320162338) FLAGS.SILENT ()\r\n");
    assert_eq!(s.mode, StoreMode::Replace);
    assert_eq!(s.unchanged_since, Some(320_162_338));
    assert!(s.flags.is_empty());
    let s = st(b"a STORE 1 FLAGS (\\answered \\FLAGGED \\Draft)\r\n");
    assert_eq!(s.flags, vec![Flag::Answered, Flag::Flagged, Flag::Draft]);
    let bads: &[(&[u8], ParseErrorKind)] = &[
        (
            b"a STORE 1 +FLAGS (\\Recent)\r\n",
            ParseErrorKind::FlagNotAllowed,
        ),
        (b"a STORE 1 +FLAGS \\*\r\n", ParseErrorKind::FlagNotAllowed),
        (b"a STORE 1 +FLAGS (\\)\r\n", ParseErrorKind::InvalidFlag),
        (b"a STORE 1 +FLAGS (\"x\")\r\n", ParseErrorKind::InvalidFlag),
        (
            b"a STORE 1 *FLAGS (\\Seen)\r\n",
            ParseErrorKind::Expected("flags item"),
        ),
        (
            b"a STORE 1 FLAGZ (\\Seen)\r\n",
            ParseErrorKind::Expected("FLAGS, +FLAGS or -FLAGS"),
        ),
        (
            b"a STORE 1 FLAGS\r\n",
            ParseErrorKind::MissingArgument("flags"),
        ),
        (
            b"a STORE 1 FLAGS (\\Seen\r\n",
            ParseErrorKind::UnbalancedParens,
        ),
        (
            b"a STORE 1 (FOO 1) FLAGS ()\r\n",
            ParseErrorKind::UnknownOption("STORE modifier"),
        ),
        (
            b"a STORE 1 FLAGS (caf\xc3\xa9)\r\n",
            ParseErrorKind::EightBit,
        ),
    ];
    for (input, expected) in bads {
        assert_eq!(bad(input), (Some("a"), *expected), "{}", show(input));
    }
}

// ----- SEARCH -----

#[test]
fn search_every_key() {
    let k = keys(
        b"a SEARCH ALL ANSWERED BCC x BEFORE 1-Feb-2024 BODY \"y z\" CC {2}\r\ncc DELETED DRAFT FLAGGED FROM f HEADER X-Spam yes KEYWORD $Junk LARGER 100 NEW NOT SEEN OLD ON \"29-Feb-2024\" OR SEEN UNSEEN RECENT SEEN SENTBEFORE 1-Jan-2024 SENTON 02-Jan-2024 SENTSINCE 3-Jan-2024 SINCE 4-Jan-2024 SMALLER 5000 SUBJECT s TEXT t TO to UID 1:5 UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD NonJunk UNSEEN 2,4:* (FLAGGED SEEN) MODSEQ 620162338 MODSEQ \"/flags/\\\\draft\" all 620162338\r\n",
    );
    let s = |x: &'static str| b(x);
    assert_eq!(
        k,
        vec![
            SearchKey::All,
            SearchKey::Answered,
            SearchKey::Bcc(s("x")),
            SearchKey::Before(date(2024, 2, 1)),
            SearchKey::Body(s("y z")),
            SearchKey::Cc(s("cc")),
            SearchKey::Deleted,
            SearchKey::Draft,
            SearchKey::Flagged,
            SearchKey::From(s("f")),
            SearchKey::Header(s("X-Spam"), s("yes")),
            SearchKey::Keyword("$Junk"),
            SearchKey::Larger(100),
            SearchKey::New,
            SearchKey::Not(Box::new(SearchKey::Seen)),
            SearchKey::Old,
            SearchKey::On(date(2024, 2, 29)),
            SearchKey::Or(Box::new(SearchKey::Seen), Box::new(SearchKey::Unseen)),
            SearchKey::Recent,
            SearchKey::Seen,
            SearchKey::SentBefore(date(2024, 1, 1)),
            SearchKey::SentOn(date(2024, 1, 2)),
            SearchKey::SentSince(date(2024, 1, 3)),
            SearchKey::Since(date(2024, 1, 4)),
            SearchKey::Smaller(5000),
            SearchKey::Subject(s("s")),
            SearchKey::Text(s("t")),
            SearchKey::To(s("to")),
            SearchKey::Uid(seq(&[(n(1), n(5))])),
            SearchKey::Unanswered,
            SearchKey::Undeleted,
            SearchKey::Undraft,
            SearchKey::Unflagged,
            SearchKey::Unkeyword("NonJunk"),
            SearchKey::Unseen,
            SearchKey::SequenceSet(seq(&[one(2), (n(4), SeqBound::Star)])),
            SearchKey::And(vec![SearchKey::Flagged, SearchKey::Seen]),
            SearchKey::ModSeq(620_162_338),
            SearchKey::ModSeq(620_162_338),
        ]
    );
}

#[test]
fn search_charset_return_and_nesting() {
    let s = search(
        b"a UID SEARCH RETURN (MIN MAX ALL COUNT SAVE) CHARSET UTF-8 OR (FROM {7}\r\nJ\xc3\xbcrgen) NOT (OR SUBJECT x (TO y)) $\r\n",
    );
    assert!(s.uid);
    assert_eq!(s.charset.as_deref(), Some("UTF-8"));
    assert_eq!(
        s.returns,
        Some(vec![
            SearchReturn::Min,
            SearchReturn::Max,
            SearchReturn::All,
            SearchReturn::Count,
            SearchReturn::Save
        ])
    );
    assert_eq!(
        s.keys,
        vec![
            SearchKey::Or(
                Box::new(SearchKey::And(vec![SearchKey::From(Cow::Borrowed(
                    b"J\xc3\xbcrgen"
                ))])),
                Box::new(SearchKey::Not(Box::new(SearchKey::And(vec![
                    SearchKey::Or(
                        Box::new(SearchKey::Subject(b("x"))),
                        Box::new(SearchKey::And(vec![SearchKey::To(b("y"))]))
                    )
                ]))))
            ),
            SearchKey::SequenceSet(SequenceArg::Saved),
        ]
    );
    let s = search(b"a SEARCH RETURN () charset \"us-ascii\" 1\r\n");
    assert_eq!(s.returns, Some(vec![]));
    assert_eq!(s.charset.as_deref(), Some("us-ascii"));
    // UTF-8 in a quoted string (RFC 9051 utf8-quoted).
    assert_eq!(
        keys(b"a SEARCH SUBJECT \"caf\xc3\xa9\"\r\n"),
        vec![SearchKey::Subject(Cow::Borrowed(b"caf\xc3\xa9"))]
    );
}

#[test]
fn search_depth_limit() {
    let nested = |depth: usize, open: &str, close: &str| {
        let mut s = b"a SEARCH ".to_vec();
        s.extend(open.repeat(depth).as_bytes());
        s.extend(b"ALL");
        s.extend(close.repeat(depth).as_bytes());
        s.extend(b"\r\n");
        s
    };
    let too_deep = ParseErrorKind::TooDeep { max: 64 };
    for (open, close) in [("(", ")"), ("NOT ", ""), ("OR ALL ", "")] {
        let okay = nested(64, open, close);
        assert!(matches!(
            parse_command(&okay, &lim()),
            Ok(Parsed::Complete { .. })
        ));
        assert_eq!(bad(&nested(65, open, close)), (Some("a"), too_deep));
    }
    // Far deeper than any stack would take: an error, not a crash.
    assert_eq!(bad(&nested(30_000, "(", ")")), (Some("a"), too_deep));
    assert_eq!(bad(&nested(15_000, "NOT ", "")), (Some("a"), too_deep));
    // A huge max_depth is capped.
    let limits = Limits {
        max_depth: usize::MAX,
        ..lim()
    };
    let deep = nested(5000, "(", ")");
    let e = parse_command(&deep, &limits).unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::TooDeep { max: DEPTH_CAP });
}

#[test]
fn search_errors() {
    let bads: &[(&[u8], ParseErrorKind)] = &[
        (
            b"a SEARCH\r\n",
            ParseErrorKind::MissingArgument("search criteria"),
        ),
        (b"a SEARCH FOO\r\n", ParseErrorKind::UnknownSearchKey),
        (b"a SEARCH (SEEN\r\n", ParseErrorKind::UnbalancedParens),
        (b"a SEARCH SEEN)\r\n", ParseErrorKind::UnbalancedParens),
        (b"a SEARCH ()\r\n", ParseErrorKind::Expected("search key")),
        (
            b"a SEARCH OR SEEN\r\n",
            ParseErrorKind::MissingArgument("search key"),
        ),
        (
            b"a SEARCH NOT\r\n",
            ParseErrorKind::MissingArgument("search key"),
        ),
        (
            b"a SEARCH BEFORE 31-Feb-2024\r\n",
            ParseErrorKind::InvalidDate,
        ),
        (
            b"a SEARCH BEFORE 1-Foo-2024\r\n",
            ParseErrorKind::InvalidDate,
        ),
        (b"a SEARCH BEFORE 1-Jan-24\r\n", ParseErrorKind::InvalidDate),
        (
            b"a SEARCH BEFORE 123-Jan-2024\r\n",
            ParseErrorKind::InvalidDate,
        ),
        (
            b"a SEARCH BEFORE \"1-Jan-2024\r\n",
            ParseErrorKind::InvalidDate,
        ),
        (b"a SEARCH BEFORE 1-J\r\n", ParseErrorKind::InvalidDate),
        (
            b"a SEARCH SINCE\r\n",
            ParseErrorKind::MissingArgument("date"),
        ),
        (b"a SEARCH LARGER x\r\n", ParseErrorKind::Expected("size")),
        (
            b"a SEARCH LARGER 99999999999999999999\r\n",
            ParseErrorKind::NumberTooBig,
        ),
        (
            b"a SEARCH KEYWORD \\Seen\r\n",
            ParseErrorKind::Expected("keyword"),
        ),
        (b"a SEARCH UID 0\r\n", ParseErrorKind::SequenceZero),
        (b"a SEARCH SUBJECT \"a\\nb\"\r\n", ParseErrorKind::BadEscape),
        (
            b"a SEARCH SUBJECT \"abc\r\n",
            ParseErrorKind::UnterminatedQuoted,
        ),
        (
            b"a SEARCH SUBJECT caf\xc3\xa9\r\n",
            ParseErrorKind::EightBit,
        ),
        (
            b"a SEARCH MODSEQ \"/flags/x\" bogus 1\r\n",
            ParseErrorKind::Expected("entry type (priv, shared or all)"),
        ),
        (
            b"a SEARCH CHARSET \xc3\xa9 ALL\r\n",
            ParseErrorKind::EightBit,
        ),
        (
            b"a SEARCH RETURN (BOGUS) ALL\r\n",
            ParseErrorKind::UnknownOption("search return option"),
        ),
    ];
    for (input, expected) in bads {
        assert_eq!(bad(input), (Some("a"), *expected), "{}", show(input));
    }
}

// ----- malformed input in general -----

#[test]
fn malformed_commands() {
    let bads: &[(&[u8], Option<&str>, ParseErrorKind)] = &[
        (b"\r\n", None, ParseErrorKind::EmptyLine),
        (b"\n", None, ParseErrorKind::EmptyLine),
        (b" NOOP\r\n", None, ParseErrorKind::BadTag),
        (b"+ NOOP\r\n", None, ParseErrorKind::BadTag),
        (b"a+b NOOP\r\n", None, ParseErrorKind::BadTag),
        (b"* NOOP\r\n", None, ParseErrorKind::BadTag),
        (b"t\xc3\xa9 NOOP\r\n", None, ParseErrorKind::BadTag),
        (b"a\x00 NOOP\r\n", None, ParseErrorKind::Nul),
        (b"a\r\n", Some("a"), ParseErrorKind::MissingCommand),
        (b"a \r\n", Some("a"), ParseErrorKind::MissingCommand),
        (
            b"a  NOOP\r\n",
            Some("a"),
            ParseErrorKind::Expected("command name"),
        ),
        (b"a FROB\r\n", Some("a"), ParseErrorKind::UnknownCommand),
        (
            b"a9 XLIST \"\" *\r\n",
            Some("a9"),
            ParseErrorKind::UnknownCommand,
        ),
        (b"a N\xc3\x96OP\r\n", Some("a"), ParseErrorKind::EightBit),
        (b"a NO\x00OP\r\n", Some("a"), ParseErrorKind::Nul),
        (b"a NOOP \r\n", Some("a"), ParseErrorKind::ExtraArguments),
        (b"a NOOP x\r\n", Some("a"), ParseErrorKind::ExtraArguments),
        (b"a LOGIN \"a\x00b\" c\r\n", Some("a"), ParseErrorKind::Nul),
        (
            b"a LOGIN {3}\r\na\x00b c\r\n",
            Some("a"),
            ParseErrorKind::Nul,
        ),
        (b"a LOGIN a\x00 b\r\n", Some("a"), ParseErrorKind::Nul),
        (
            b"a LOGIN \"a\\x\" b\r\n",
            Some("a"),
            ParseErrorKind::BadEscape,
        ),
        (
            b"a LOGIN \"a\" \"b\"c\r\n",
            Some("a"),
            ParseErrorKind::ExtraArguments,
        ),
        (
            b"a LOGIN \"a\"\"b\"\r\n",
            Some("a"),
            ParseErrorKind::ExpectedSpace("password"),
        ),
        (b"a LOGIN {x}\r\n", Some("a"), ParseErrorKind::BadLiteral),
        (b"a LOGIN {}\r\n", Some("a"), ParseErrorKind::BadLiteral),
        (b"a LOGIN {1}x\r\n", Some("a"), ParseErrorKind::BadLiteral),
        (b"a LOGIN {1-}\r\n", Some("a"), ParseErrorKind::BadLiteral),
        (
            b"a LOGIN us\x01er pw\r\n",
            Some("a"),
            ParseErrorKind::ExpectedSpace("password"),
        ),
        (
            b"a SELECT (INBOX)\r\n",
            Some("a"),
            ParseErrorKind::Expected("mailbox name"),
        ),
    ];
    for (input, tag, expected) in bads {
        assert_eq!(bad(input), (*tag, *expected), "{}", show(input));
    }
}

#[test]
fn error_messages_are_actionable() {
    let kinds = [
        ParseErrorKind::EmptyLine,
        ParseErrorKind::MissingArgument("mailbox name"),
        ParseErrorKind::Expected("flag list"),
        ParseErrorKind::LineTooLong { max: 10 },
        ParseErrorKind::LiteralTooBig { len: 5, max: 4 },
        ParseErrorKind::TooDeep { max: 64 },
        ParseErrorKind::BadLiteral,
    ];
    let msgs: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
    assert_eq!(msgs[1], "Missing argument: expected mailbox name");
    assert_eq!(msgs[3], "Command line too long (limit 10 bytes)");
    assert_eq!(msgs[4], "Literal of 5 bytes exceeds the limit of 4 bytes");
    assert!(msgs.iter().all(|m| !m.is_empty() && !m.contains('\n')));
}

// ----- real clients -----

#[test]
fn real_client_samples() {
    let f = fetch(b"1 UID fetch 1:* (FLAGS)\r\n");
    assert!(f.uid);
    assert_eq!(f.set, seq(&[(n(1), SeqBound::Star)]));
    assert_eq!(f.attrs, vec![FetchAttr::Flags]);

    let f = fetch(b"5 uid fetch 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])\r\n");
    assert_eq!(
        f.attrs,
        vec![
            FetchAttr::Uid,
            FetchAttr::Rfc822Size,
            FetchAttr::Flags,
            FetchAttr::BodySection {
                peek: true,
                section: Section {
                    part: vec![],
                    text: Some(SectionText::HeaderFields(header_fields(
                        "From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To"
                    )))
                },
                partial: None
            }
        ]
    );

    let f = fetch(b"a0003 UID FETCH 1:5 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (DATE FROM SENDER SUBJECT TO CC MESSAGE-ID REFERENCES CONTENT-TYPE CONTENT-DESCRIPTION IN-REPLY-TO REPLY-TO LINES LIST-POST X-LABEL)])\r\n");
    assert_eq!(f.set, seq(&[(n(1), n(5))]));
    assert_eq!(f.attrs.len(), 5);
    assert_eq!(
        f.attrs[4],
        FetchAttr::BodySection {
            peek: true,
            section: Section {
                part: vec![],
                text: Some(SectionText::HeaderFields(header_fields(
                    "DATE FROM SENDER SUBJECT TO CC MESSAGE-ID REFERENCES CONTENT-TYPE CONTENT-DESCRIPTION IN-REPLY-TO REPLY-TO LINES LIST-POST X-LABEL"
                )))
            },
            partial: None
        }
    );

    let f = fetch(b"7 UID FETCH 1:* (UID FLAGS)\r\n");
    assert_eq!(f.attrs, vec![FetchAttr::Uid, FetchAttr::Flags]);

    // Thunderbird's other staples.
    for line in [
        &b"2 capability\r\n"[..],
        b"3 authenticate PLAIN\r\n",
        b"4 namespace\r\n",
        b"6 list (subscribed) \"\" \"*\" return (special-use)\r\n",
        b"8 select \"INBOX\" (CONDSTORE)\r\n",
        b"9 UID fetch 418:* (FLAGS) (CHANGEDSINCE 4)\r\n",
        b"10 UID STORE 418 +FLAGS (\\Seen)\r\n",
        b"11 IDLE\r\n",
        b"12 UID MOVE 418 \"Trash\"\r\n",
        b"13 getquotaroot \"INBOX\"\r\n",
        b"A3 STATUS \"Archive/2023\" (UIDNEXT MESSAGES UNSEEN RECENT)\r\n",
        b"a0007 UID SEARCH UID 1:* NOT DELETED\r\n",
    ] {
        match parse_command(line, &lim()) {
            Ok(Parsed::Complete { consumed, .. }) => assert_eq!(consumed, line.len()),
            Err(e) if e.kind == ParseErrorKind::UnknownCommand => {
                assert!(line.starts_with(b"13 "), "{}", show(line));
            }
            other => panic!("{}: {other:?}", show(line)),
        }
    }
}

// ----- incremental feeding -----

/// What a server sees, with literal continuations counted separately and APPEND data
/// merged, so that different splittings can be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Cmd(Result<String, (Option<String>, ParseErrorKind)>),
    Err(Option<String>, ParseErrorKind),
    Start(String, Vec<u8>, LiteralHead),
    Next(LiteralHead),
    Data(Vec<u8>),
    Done,
}

#[derive(Debug, Default)]
struct Run {
    events: Vec<Ev>,
    continuations: usize,
    leftover: Vec<u8>,
}

fn drive_with(framer: &mut Framer, chunks: &[&[u8]], reject_append: bool) -> Run {
    let mut run = Run::default();
    let mut buf: Vec<u8> = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let limits = *framer.limits();
            match framer.poll(&buf) {
                FrameEvent::NeedMore => break,
                FrameEvent::Continuation { .. } => run.continuations += 1,
                FrameEvent::Command { len } => {
                    let r = match parse_command(&buf[..len], &limits) {
                        Ok(Parsed::Complete { command, consumed }) => {
                            assert_eq!(consumed, len);
                            Ok(format!("{command:?}"))
                        }
                        Ok(Parsed::Incomplete(n)) => panic!("framed but incomplete: {n:?}"),
                        Err(e) => {
                            assert_eq!(e.skip, len);
                            assert_ne!(e.kind, ParseErrorKind::Truncated);
                            Err((e.tag.map(str::to_owned), e.kind))
                        }
                    };
                    run.events.push(Ev::Cmd(r));
                    buf.drain(..len);
                }
                FrameEvent::Error { tag, kind } => {
                    run.events.push(Ev::Err(tag.map(|t| t.into_owned()), kind));
                }
                FrameEvent::Skip { len } => {
                    assert!(len > 0 && len <= buf.len());
                    buf.drain(..len);
                }
                FrameEvent::AppendStart { len, head } => {
                    run.events.push(Ev::Start(
                        head.tag.to_owned(),
                        head.mailbox.as_bytes().to_vec(),
                        head.message.literal,
                    ));
                    buf.drain(..len);
                    if reject_append {
                        framer.reject_literal();
                    }
                }
                FrameEvent::AppendNext { len, message } => {
                    run.events.push(Ev::Next(message.literal));
                    buf.drain(..len);
                }
                FrameEvent::AppendData { data } => {
                    assert!(!data.is_empty());
                    let n = data.len();
                    match run.events.last_mut() {
                        Some(Ev::Data(d)) => d.extend_from_slice(data),
                        _ => run.events.push(Ev::Data(data.to_vec())),
                    }
                    buf.drain(..n);
                }
                FrameEvent::AppendDone { len } => {
                    run.events.push(Ev::Done);
                    buf.drain(..len);
                }
            }
        }
    }
    run.leftover = buf;
    run
}

fn drive(framer: &mut Framer, chunks: &[&[u8]]) -> Run {
    drive_with(framer, chunks, false)
}

fn samples() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        &b"a NOOP\r\n"[..],
        b"1 UID fetch 1:* (FLAGS)\r\n",
        b"5 uid fetch 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])\r\n",
        b"a ID (\"name\" \"iPhone Mail\" \"version\" \"19E258\")\r\n",
        b"a LOGIN {5}\r\nalice {6+}\r\nsecret\r\n",
        b"a LOGIN \"al\\\"ice\" {0}\r\n\r\n",
        b"a SEARCH CHARSET UTF-8 OR (FROM {7}\r\nJ\xc3\xbcrgen) NOT SUBJECT \"x\" 1:4\n",
        b"a APPEND INBOX (\\Seen) \"17-Jan-2024 10:04:05 +0200\" {11}\r\nhello world\r\n",
        b"a001 APPEND \"INBOX\" (\\Seen) {12+}\r\nhello\r\nworld\r\n",
        b"a APPEND {5}\r\nINBOX {3}\r\nabc (\\Flagged) ~{4}\r\nx\x00\ny\r\n",
        b"a FROB {3}\r\nabc\r\n",
        b"a LOGIN \"unterminated\r\n",
        b"a APPEND INBOX (\\Recent) {5}\r\n",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect();
    // Broader grammar, so that every form is also checked split at every byte.
    for line in [
        &b"a FETCH 1:3 (ENVELOPE BODY[1.2.HEADER.FIELDS.NOT (Received)]<0.10> BINARY.PEEK[1]<5.6> BINARY.SIZE[2] MODSEQ) (CHANGEDSINCE 7)\r\n"[..],
        b"a UID SEARCH RETURN (MIN COUNT) CHARSET UTF-8 OR (NOT SEEN) HEADER X-A {2+}\r\nyy SINCE \"1-Feb-2024\" UID 1:5,7 MODSEQ \"/flags/x\" all 5\r\n",
        b"a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (INBOX \"Sent/%\") RETURN (CHILDREN STATUS (MESSAGES SIZE))\r\n",
        b"a UID STORE 1:* (UNCHANGEDSINCE 9) +FLAGS.SILENT (\\Seen $Forwarded)\r\n",
        b"a CREATE {6}\r\nDrafts (USE (\\Drafts))\r\n",
        b"a SELECT INBOX (CONDSTORE QRESYNC (1 2 1:9 (1,5 10,50)))\r\n",
        b"a STATUS INBOX (MESSAGES UIDNEXT HIGHESTMODSEQ)\r\n",
        b"a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n",
        b"a APPEND x (\\Seen) {1+}\r\nA ~{2}\r\nB\x00 \" 7-Jan-2024 09:05:59 -0430\" {0}\r\n\r\n",
    ] {
        v.push(line.to_vec());
    }
    // Two commands pipelined.
    v.push(b"a NOOP\r\nb UID FETCH 1 (FLAGS)\r\n".to_vec());
    v
}

#[test]
fn framer_every_split_gives_the_same_result() {
    for sample in samples() {
        let whole = drive(&mut Framer::new(lim()), &[&sample]);
        assert!(whole.leftover.is_empty(), "{}", show(&sample));
        assert!(!whole.events.is_empty());
        for k in 1..sample.len() {
            let (a, b2) = sample.split_at(k);
            let split = drive(&mut Framer::new(lim()), &[a, b2]);
            assert_eq!(split.events, whole.events, "{} split at {k}", show(&sample));
            assert!(split.leftover.is_empty());
        }
        let bytes: Vec<&[u8]> = sample.chunks(1).collect();
        let trickle = drive(&mut Framer::new(lim()), &bytes);
        assert_eq!(
            trickle.events,
            whole.events,
            "{} byte by byte",
            show(&sample)
        );
        // Without APPEND streaming, the same commands come out as one Command each.
        let mut plain = Framer::new(lim());
        plain.set_stream_append(false);
        let p = drive(&mut plain, &bytes);
        assert!(
            p.events
                .iter()
                .all(|e| matches!(e, Ev::Cmd(_) | Ev::Err(..)))
        );
    }
}

#[test]
fn samples_parse_cleanly_except_the_bad_ones() {
    for sample in samples() {
        let run = drive(&mut Framer::new(lim()), &[&sample]);
        let failed = run
            .events
            .iter()
            .any(|e| matches!(e, Ev::Err(..) | Ev::Cmd(Err(_))));
        let meant_bad = [&b"FROB"[..], b"unterminated", b"Recent"]
            .iter()
            .any(|w| sample.windows(w.len()).any(|x| x == *w));
        assert_eq!(failed, meant_bad, "{}: {:?}", show(&sample), run.events);
    }
}

#[test]
fn parse_command_every_prefix_is_incomplete() {
    for sample in samples() {
        let full = parse_command(&sample, &lim()).map(|p| format!("{p:?}"));
        let full = full.map_err(|e| (e.tag, e.kind, e.skip));
        for k in 0..sample.len() {
            let prefix = &sample[..k];
            match parse_command(prefix, &lim()) {
                Ok(Parsed::Incomplete(needed)) => {
                    if let Needed::Continuation { .. } = needed {
                        // Only right after a synchronizing announcement.
                        assert!(prefix.ends_with(b"}\r\n") || prefix.ends_with(b"}\n"));
                    }
                }
                // A complete first command of a pipelined pair.
                Ok(Parsed::Complete { consumed, .. }) => {
                    assert!(consumed <= k && sample[..consumed].ends_with(b"\n"));
                }
                Err(e) => {
                    // Errors are only reported once the offending line is complete.
                    assert_eq!(Err((e.tag, e.kind, e.skip)), full, "{}", show(prefix));
                }
            }
        }
    }
}

#[test]
fn literal_trickling_in_one_byte_at_a_time() {
    let mut input = b"a LOGIN {20}\r\n".to_vec();
    input.extend_from_slice(b"abcdefghijklmnopqrst");
    input.extend_from_slice(b" pw\r\nb NOOP\r\n");
    let mut framer = Framer::new(lim());
    let mut buf = Vec::new();
    let mut events = Vec::new();
    for &byte in &input {
        buf.push(byte);
        loop {
            match framer.poll(&buf) {
                FrameEvent::NeedMore => break,
                FrameEvent::Continuation { literal_len } => {
                    assert_eq!(buf.len(), 14, "continuation right after the announcement");
                    events.push(format!("+{literal_len}"));
                }
                FrameEvent::Command { len } => {
                    let c = ok(&buf[..len]).kind.name();
                    events.push(c.to_owned());
                    buf.drain(..len);
                }
                other => panic!("{other:?}"),
            }
        }
        // While the literal arrives, parse_command says exactly how much is missing.
        if (15..34).contains(&buf.len()) && buf.starts_with(b"a LOGIN") {
            assert_eq!(
                parse_command(&buf, &lim()).unwrap(),
                Parsed::Incomplete(Needed::Literal {
                    remaining: 34 - buf.len() as u64
                })
            );
        }
    }
    assert_eq!(events, vec!["+20", "LOGIN", "NOOP"]);
    assert!(buf.is_empty());
    assert_eq!(
        parse_command(b"a LOGIN {20}\r\n", &lim()).unwrap(),
        Parsed::Incomplete(Needed::Continuation { literal_len: 20 })
    );
    assert_eq!(
        parse_command(b"a LOGIN {20+}\r\n", &lim()).unwrap(),
        Parsed::Incomplete(Needed::Literal { remaining: 20 })
    );
    assert_eq!(
        parse_command(b"a LOGIN {2", &lim()).unwrap(),
        Parsed::Incomplete(Needed::More)
    );
}

#[test]
fn framer_cost_is_linear_in_new_bytes() {
    // A 4 MiB literal in 1 KiB reads, and a 60 KiB line in 1-byte reads: each poll only
    // looks at what is new (this would take minutes if it rescanned).
    let mut framer = Framer::new(lim());
    let mut buf = b"a SEARCH TEXT {4194304+}\r\n".to_vec();
    assert_eq!(framer.poll(&buf), FrameEvent::NeedMore);
    let chunk = [b'x'; 1024];
    for _ in 0..4096 {
        buf.extend_from_slice(&chunk);
        assert_eq!(framer.poll(&buf), FrameEvent::NeedMore);
    }
    buf.extend_from_slice(b"\r\n");
    let FrameEvent::Command { len } = framer.poll(&buf) else {
        panic!()
    };
    assert_eq!(len, buf.len());
    let mut framer = Framer::new(lim());
    let mut buf = b"a SEARCH SUBJECT ".to_vec();
    for _ in 0..60_000 {
        buf.push(b'y');
        assert_eq!(framer.poll(&buf), FrameEvent::NeedMore);
    }
    buf.extend_from_slice(b"\r\n");
    assert_eq!(framer.poll(&buf), FrameEvent::Command { len: buf.len() });
}

// ----- limits -----

fn small() -> Limits {
    Limits {
        max_line: 40,
        max_literal: 10,
        max_depth: 64,
    }
}

#[test]
fn line_too_long_is_skipped_to_its_end() {
    let mut input = b"a SEARCH SUBJECT ".to_vec();
    input.extend_from_slice(&[b'z'; 100]);
    input.extend_from_slice(b"\r\nb NOOP\r\n");
    let expected = vec![
        Ev::Err(Some("a".into()), ParseErrorKind::LineTooLong { max: 40 }),
        Ev::Cmd(Ok(format!("{:?}", ok(b"b NOOP\r\n")))),
    ];
    for k in 1..input.len() {
        let (x, y) = input.split_at(k);
        let run = drive(&mut Framer::new(small()), &[x, y]);
        assert_eq!(run.events, expected, "split at {k}");
        assert!(run.leftover.is_empty());
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(drive(&mut Framer::new(small()), &bytes).events, expected);
    // Standalone: the whole line is here, so skip covers it.
    let e = parse_command(&input, &small()).unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::LineTooLong { max: 40 });
    assert_eq!(e.tag, Some("a"));
    assert_eq!(e.skip, input.len() - 8);
    assert!(e.resync.is_none());
    // Standalone, line end not here yet: skip what is here, resume with the framer.
    let e = parse_command(&input[..90], &small()).unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::LineTooLong { max: 40 });
    assert!(e.skip <= 90);
    let mut resync = *e.resync.unwrap();
    let rest = drive(&mut resync, &[&input[e.skip..]]);
    assert_eq!(rest.events, expected[1..]);
}

#[test]
fn long_line_skipping_follows_non_sync_literals() {
    // The discarded line announces a non-synchronizing literal whose bytes contain what
    // looks like a command: it must be skipped, as must the rest of that line.
    let mut input = b"a SEARCH SUBJECT ".to_vec();
    input.extend_from_slice(&[b'z'; 100]);
    input.extend_from_slice(b" BODY {12+}\r\nc LOGOUT\r\nxx NOT SEEN\r\nb NOOP\r\n");
    let expected = vec![
        Ev::Err(Some("a".into()), ParseErrorKind::LineTooLong { max: 40 }),
        Ev::Cmd(Ok(format!("{:?}", ok(b"b NOOP\r\n")))),
    ];
    for k in 1..input.len() {
        let (x, y) = input.split_at(k);
        assert_eq!(
            drive(&mut Framer::new(small()), &[x, y]).events,
            expected,
            "split at {k}"
        );
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(drive(&mut Framer::new(small()), &bytes).events, expected);
}

#[test]
fn too_big_synchronizing_literal_gets_no_continuation() {
    let input = b"a LOGIN {11}\r\nb NOOP\r\n";
    let run = drive(&mut Framer::new(small()), &[&input[..14]]);
    assert_eq!(run.continuations, 0);
    assert_eq!(
        run.events,
        vec![Ev::Err(
            Some("a".into()),
            ParseErrorKind::LiteralTooBig { len: 11, max: 10 }
        )]
    );
    assert!(run.leftover.is_empty(), "the announcing line is skipped");
    let run = drive(&mut Framer::new(small()), &[input]);
    assert_eq!(run.events.len(), 2);
    assert_eq!(
        run.events[1],
        Ev::Cmd(Ok(format!("{:?}", ok(b"b NOOP\r\n"))))
    );
    let e = parse_command(input, &small()).unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::LiteralTooBig { len: 11, max: 10 });
    assert_eq!((e.tag, e.skip), (Some("a"), 14));
    assert!(e.resync.is_none());
}

#[test]
fn too_big_non_synchronizing_literal_is_skipped() {
    let input = b"a LOGIN {11+}\r\nb NOOP\r\nxxx pw\r\nc NOOP\r\n";
    let expected = vec![
        Ev::Err(
            Some("a".into()),
            ParseErrorKind::LiteralTooBig { len: 11, max: 10 },
        ),
        Ev::Cmd(Ok(format!("{:?}", ok(b"c NOOP\r\n")))),
    ];
    for k in 1..input.len() {
        let (x, y) = input.split_at(k);
        assert_eq!(
            drive(&mut Framer::new(small()), &[x, y]).events,
            expected,
            "split at {k}"
        );
    }
    let e = parse_command(input, &small()).unwrap_err();
    assert_eq!(e.skip, input.len() - 8);
    assert!(e.resync.is_none());
    // Literal still arriving: skip what is here, the framer knows the rest.
    let e = parse_command(&input[..20], &small()).unwrap_err();
    assert_eq!(e.skip, 20);
    let mut resync = *e.resync.unwrap();
    assert_eq!(drive(&mut resync, &[&input[20..]]).events, expected[1..]);
    // The sum of a command's literals counts too.
    let e = parse_command(b"a LOGIN {6}\r\nabcdef {6}\r\n", &small()).unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::LiteralTooBig { len: 12, max: 10 });
}

#[test]
fn huge_literal_lengths() {
    let e = parse_command(b"a LOGIN {99999999999999999999}\r\n", &lim()).unwrap_err();
    assert_eq!(
        e.kind,
        ParseErrorKind::LiteralTooBig {
            len: u64::MAX,
            max: lim().max_literal
        }
    );
    let limits = Limits {
        max_literal: u64::MAX,
        ..lim()
    };
    // More than 20 digits is not a literal at all.
    let e = parse_command(b"a LOGIN {000000000000000000001}\r\nx y\r\n", &lim()).unwrap_err();
    assert_eq!((e.kind, e.skip), (ParseErrorKind::BadLiteral, 33));
    // Accepted by the limit, but the bytes never come.
    assert_eq!(
        parse_command(b"a LOGIN {18446744073709551615+}\r\nab", &limits).unwrap(),
        Parsed::Incomplete(Needed::Literal {
            remaining: u64::MAX - 2
        })
    );
}

#[test]
fn bad_command_is_refused_before_its_literal() {
    // No '+' for a command that is already wrong; the client stops at its line.
    let run = drive(&mut Framer::new(lim()), &[b"a FROB {5}\r\n"]);
    assert_eq!(run.continuations, 0);
    assert_eq!(
        run.events,
        vec![Ev::Err(Some("a".into()), ParseErrorKind::UnknownCommand)]
    );
    assert!(run.leftover.is_empty());
    let run = drive(&mut Framer::new(lim()), &[b"a SELECT INBOX (BOGUS {5}\r\n"]);
    assert_eq!(run.continuations, 0);
    assert_eq!(
        run.events,
        vec![Ev::Err(
            Some("a".into()),
            ParseErrorKind::UnknownOption("SELECT parameter")
        )]
    );
    // A non-synchronizing literal of a bad command is skipped, not buffered.
    let input = b"a FROB {5+}\r\nhello more\r\nb NOOP\r\n";
    let run = drive(&mut Framer::new(lim()), &[input]);
    assert_eq!(run.events.len(), 2);
    assert!(matches!(&run.events[1], Ev::Cmd(Ok(c)) if c.contains("Noop")));
    let e = parse_command(b"a FROB {5}\r\n", &lim()).unwrap_err();
    assert_eq!(
        (e.tag, e.kind, e.skip),
        (Some("a"), ParseErrorKind::UnknownCommand, 12)
    );
    // A good command still gets its continuation.
    let run = drive(&mut Framer::new(lim()), &[b"a LOGIN {5}\r\n"]);
    assert_eq!((run.continuations, run.events.len()), (1, 0));
}

// ----- APPEND streaming -----

#[test]
fn append_is_streamed() {
    let input =
        b"a APPEND INBOX (\\Seen) \"17-Jan-2024 10:04:05 +0200\" {11}\r\nhello world\r\nb NOOP\r\n";
    let announce = input.windows(3).position(|w| w == b"}\r\n").unwrap() + 3;
    let mut framer = Framer::new(lim());
    let mut buf = input[..announce].to_vec();
    let FrameEvent::AppendStart { len, head } = framer.poll(&buf) else {
        panic!()
    };
    assert_eq!(len, announce);
    assert_eq!(head.tag, "a");
    assert!(head.mailbox.is_inbox());
    assert_eq!(head.message.flags, vec![Flag::Seen]);
    assert_eq!(
        head.message.date.unwrap().to_string(),
        "17-Jan-2024 10:04:05 +0200"
    );
    assert_eq!(
        head.message.literal,
        LiteralHead {
            len: 11,
            sync: true,
            binary: false
        }
    );
    buf.drain(..len);
    assert_eq!(
        framer.poll(&buf),
        FrameEvent::Continuation { literal_len: 11 }
    );
    assert_eq!(framer.poll(&buf), FrameEvent::NeedMore);
    buf.extend_from_slice(&input[announce..announce + 5]);
    assert_eq!(framer.poll(&buf), FrameEvent::AppendData { data: b"hello" });
    buf.drain(..5);
    assert_eq!(framer.poll(&buf), FrameEvent::NeedMore);
    buf.extend_from_slice(&input[announce + 5..]);
    assert_eq!(
        framer.poll(&buf),
        FrameEvent::AppendData { data: b" world" }
    );
    buf.drain(..6);
    assert_eq!(framer.poll(&buf), FrameEvent::AppendDone { len: 2 });
    buf.drain(..2);
    assert_eq!(framer.poll(&buf), FrameEvent::Command { len: 8 });
}

#[test]
fn multiappend_and_mailbox_literal() {
    let input = b"a APPEND {5}\r\nINBOX {3+}\r\nabc (\\Flagged) ~{4}\r\nx\x00\ny\r\n";
    let run = drive(&mut Framer::new(lim()), &[input]);
    let lit = |len, sync, binary| LiteralHead { len, sync, binary };
    assert_eq!(
        run.events,
        vec![
            Ev::Start("a".into(), b"INBOX".to_vec(), lit(3, false, false)),
            Ev::Data(b"abc".to_vec()),
            Ev::Next(lit(4, true, true)),
            Ev::Data(b"x\x00\ny".to_vec()),
            Ev::Done,
        ]
    );
    // Byte by byte the client waits twice: for the mailbox literal and the second message.
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    let run = drive(&mut Framer::new(lim()), &bytes);
    assert_eq!(run.continuations, 2);
}

#[test]
fn append_utf8_data_extension() {
    // RFC 6855 §4: `UTF8 (~{n}...)`, streamed and whole, with the `)` after each literal.
    let input = b"a APPEND INBOX UTF8 (~{3+}\r\n\xc3\xa4x) (\\Seen) UTF8 (~{2}\r\nyz)\r\n";
    let run = drive(&mut Framer::new(lim()), &[input]);
    let lit = |len, sync, binary| LiteralHead { len, sync, binary };
    assert_eq!(
        run.events,
        vec![
            Ev::Start("a".into(), b"INBOX".to_vec(), lit(3, false, true)),
            Ev::Data(b"\xc3\xa4x".to_vec()),
            Ev::Next(lit(2, true, true)),
            Ev::Data(b"yz".to_vec()),
            Ev::Done,
        ]
    );
    let CommandKind::Append { messages, .. } = kind(input) else {
        panic!()
    };
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1].data, b"yz");
    // The closing parenthesis is required, and UTF8 takes only a literal8.
    assert!(parse_command(b"a APPEND INBOX UTF8 (~{2+}\r\nyz\r\n", &lim()).is_err());
    assert!(parse_command(b"a APPEND INBOX UTF8 ({2+}\r\nyz)\r\n", &lim()).is_err());
}

#[test]
fn append_refused_before_continuation() {
    // Synchronizing: no '+', the command ends with its line.
    let input = b"a APPEND Nope {5}\r\nb NOOP\r\n";
    let run = drive_with(&mut Framer::new(lim()), &[input], true);
    assert_eq!(run.continuations, 0);
    assert_eq!(run.events.len(), 2);
    assert!(matches!(&run.events[1], Ev::Cmd(Ok(c)) if c.contains("Noop")));
    // Non-synchronizing: the bytes are coming anyway and are skipped, rest of line too.
    let input = b"a APPEND Nope {5+}\r\nhello (\\Seen) {3+}\r\nabc\r\nb NOOP\r\n";
    for k in 1..input.len() {
        let (x, y) = input.split_at(k);
        let run = drive_with(&mut Framer::new(lim()), &[x, y], true);
        assert_eq!(run.events.len(), 2, "split at {k}");
        assert!(matches!(&run.events[1], Ev::Cmd(Ok(c)) if c.contains("Noop")));
    }
}

#[test]
fn append_errors() {
    // Too big for the limit: refused with the tag, no '+'.
    let run = drive(
        &mut Framer::new(small()),
        &[b"a APPEND x {11}\r\nb NOOP\r\n"],
    );
    assert_eq!(run.continuations, 0);
    assert_eq!(
        run.events[0],
        Ev::Err(
            Some("a".into()),
            ParseErrorKind::LiteralTooBig { len: 11, max: 10 }
        )
    );
    assert!(matches!(&run.events[1], Ev::Cmd(Ok(_))));
    // A bad head is refused before the message is sent.
    let run = drive(&mut Framer::new(lim()), &[b"a APPEND x (\\Recent) {5}\r\n"]);
    assert_eq!(run.continuations, 0);
    assert_eq!(
        run.events,
        vec![Ev::Err(Some("a".into()), ParseErrorKind::FlagNotAllowed)]
    );
    assert!(run.leftover.is_empty());
    // NUL in a plain literal stops the stream; the rest of the command is skipped.
    let run = drive(
        &mut Framer::new(lim()),
        &[
            b"a APPEND x {5+}\r\nhe",
            b"\x00lo (\\Seen) {1+}\r\nz\r\nb NOOP\r\n",
        ],
    );
    assert_eq!(run.events.len(), 4, "{:?}", run.events);
    assert_eq!(run.events[1], Ev::Data(b"he".to_vec()));
    assert_eq!(
        run.events[2],
        Ev::Err(Some("a".into()), ParseErrorKind::Nul)
    );
    assert!(matches!(&run.events[3], Ev::Cmd(Ok(c)) if c.contains("Noop")));
    // Garbage after the message: the tag is still known.
    let run = drive(
        &mut Framer::new(lim()),
        &[b"tag7 APPEND x {1+}\r\nx junk\r\n"],
    );
    assert!(matches!(
        run.events.last(),
        Some(Ev::Err(Some(t), _)) if t == "tag7"
    ));
    assert!(run.leftover.is_empty());
    // Without a message at all it is an ordinary (bad) command.
    let run = drive(&mut Framer::new(lim()), &[b"a APPEND x\r\n"]);
    assert!(matches!(
        &run.events[0],
        Ev::Cmd(Err((Some(_), ParseErrorKind::MissingArgument(_))))
    ));
}

// ----- IDLE and AUTHENTICATE lines -----

#[test]
fn done_line() {
    assert_eq!(parse_done_line(b"DONE\r\n"), Some(Ok(6)));
    assert_eq!(parse_done_line(b"done\na NOOP\r\n"), Some(Ok(5)));
    assert_eq!(parse_done_line(b"DON"), None);
    assert_eq!(parse_done_line(b""), None);
    assert_eq!(
        parse_done_line(b"DONE x\r\n"),
        Some(Err(LineError {
            kind: ParseErrorKind::ExpectedDone,
            skip: 8
        }))
    );
    assert_eq!(
        parse_done_line(&[b'x'; 2000]),
        Some(Err(LineError {
            kind: ParseErrorKind::LineTooLong { max: 1024 },
            skip: 2000
        }))
    );
}

#[test]
fn authenticate_response_lines() {
    assert_eq!(
        parse_authenticate_response(b"AGFsaWNlAHNlY3JldA==\r\n", &lim()),
        Some(Ok((AuthResponse::Data(b"AGFsaWNlAHNlY3JldA=="), 22)))
    );
    assert_eq!(
        parse_authenticate_response(b"*\r\nb NOOP\r\n", &lim()),
        Some(Ok((AuthResponse::Cancel, 3)))
    );
    assert_eq!(
        parse_authenticate_response(b"\n", &lim()),
        Some(Ok((AuthResponse::Data(b""), 1)))
    );
    assert_eq!(parse_authenticate_response(b"AGFs", &lim()), None);
    assert_eq!(
        parse_authenticate_response(b"not base64!\r\n", &lim()),
        Some(Err(LineError {
            kind: ParseErrorKind::InvalidBase64,
            skip: 13
        }))
    );
    let limits = Limits {
        max_line: 8,
        ..lim()
    };
    assert_eq!(
        parse_authenticate_response(b"QUJDREVGR0g=\r\n", &limits),
        Some(Err(LineError {
            kind: ParseErrorKind::LineTooLong { max: 8 },
            skip: 14
        }))
    );
    assert_eq!(
        decode_base64(b"AGFsaWNlAHNlY3JldA==").as_deref(),
        Some(&b"\0alice\0secret"[..])
    );
    assert_eq!(decode_base64(b"").as_deref(), Some(&b""[..]));
    assert_eq!(decode_base64(b"QUJD").as_deref(), Some(&b"ABC"[..]));
    assert_eq!(decode_base64(b"QUI=").as_deref(), Some(&b"AB"[..]));
    assert_eq!(decode_base64(b"QUJ="), None, "non-zero padding bits");
    assert_eq!(decode_base64(b"QU=I"), None);
    assert_eq!(decode_base64(b"QUI"), None);
    assert_eq!(decode_base64(b"Q==="), None);
}

// ----- split-invariance edge cases (the fuzz target's whole-vs-chunked check) -----

fn assert_split_invariant(input: &[u8], limits: Limits) -> Vec<Ev> {
    let whole = drive(&mut Framer::new(limits), &[input]).events;
    for k in 1..input.len() {
        let (x, y) = input.split_at(k);
        let split = drive(&mut Framer::new(limits), &[x, y]).events;
        assert_eq!(split, whole, "{} split at {k}", show(input));
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(drive(&mut Framer::new(limits), &bytes).events, whole);
    whole
}

#[test]
fn split_invariance_edge_cases() {
    // A discarded line ending in a 25-digit "announcement": too long to be a literal,
    // whether or not its start is still buffered.
    let mut input = b"a SEARCH SUBJECT ".to_vec();
    input.extend_from_slice(&[b'z'; 60]);
    input.extend_from_slice(b" {0000000000000000000000012+}\r\nb NOOP\r\n");
    let events = assert_split_invariant(&input, small());
    assert_eq!(events.len(), 2);
    // " APPEND " inside a literal body must not make the command an APPEND.
    let events = assert_split_invariant(b"x{3}\r\n APPEND y {1}\r\nz\r\n", small());
    assert!(events.iter().all(|e| !matches!(e, Ev::Start(..))));
    // A tag longer than max_line: unreadable however much of the line is buffered.
    let mut input = vec![b't'; 45];
    input.extend_from_slice(b" NOOP\r\nb NOOP\r\n");
    let events = assert_split_invariant(&input, small());
    assert_eq!(
        events[0],
        Ev::Err(None, ParseErrorKind::LineTooLong { max: 40 })
    );
}

#[test]
fn framer_survives_contract_violations() {
    let mut framer = Framer::new(lim());
    assert_eq!(framer.poll(b"a NOOP"), FrameEvent::NeedMore);
    // The caller shrank the buffer behind our back: no panic.
    assert_eq!(framer.poll(b"a"), FrameEvent::NeedMore);
    assert_eq!(framer.poll(b""), FrameEvent::NeedMore);
    framer.reject_literal();
    assert!(matches!(framer.poll(b"\r\n"), FrameEvent::Command { .. }));
}

#[test]
fn sort_and_thread_forms() {
    use crate::imap::command::{SortCriterion, SortKey, ThreadAlgorithm};
    let CommandKind::Sort(s) =
        kind(b"a UID SORT (REVERSE DATE subject DISPLAYFROM) UTF-8 SEEN ALL\r\n")
    else {
        panic!()
    };
    assert!(s.uid && s.returns.is_none());
    assert_eq!(
        s.criteria,
        [
            SortCriterion {
                reverse: true,
                key: SortKey::Date
            },
            SortCriterion {
                reverse: false,
                key: SortKey::Subject
            },
            SortCriterion {
                reverse: false,
                key: SortKey::DisplayFrom
            },
        ]
    );
    assert_eq!(s.charset, "UTF-8");
    assert_eq!(s.keys.len(), 2);
    let CommandKind::Sort(s) = kind(b"a SORT RETURN (MIN COUNT) (ARRIVAL) US-ASCII ALL\r\n") else {
        panic!()
    };
    assert_eq!(
        s.returns,
        Some(vec![SearchReturn::Min, SearchReturn::Count])
    );
    let CommandKind::Thread(t) = kind(b"a THREAD references UTF-8 FROM x\r\n") else {
        panic!()
    };
    assert!(!t.uid);
    assert_eq!(t.algorithm, ThreadAlgorithm::References);
    for b in [
        &b"a SORT (DATE) ALL\r\n"[..],
        b"a SORT () UTF-8 ALL\r\n",
        b"a SORT (REVERSE) UTF-8 ALL\r\n",
        b"a SORT (NAME) UTF-8 ALL\r\n",
        b"a SORT DATE UTF-8 ALL\r\n",
        b"a THREAD UTF-8 ALL\r\n",
        b"a THREAD WHATEVER UTF-8 ALL\r\n",
        b"a THREAD REFERENCES UTF-8\r\n",
    ] {
        assert_eq!(bad(b).0, Some("a"), "{}", show(b));
    }
}
