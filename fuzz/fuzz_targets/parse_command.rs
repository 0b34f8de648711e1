//! Arbitrary bytes through the framer and the parser: no panics, lengths inside the buffer,
//! framed commands parse to the end, and framing does not depend on how input is split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s3imap::imap::command::{CommandKind, SequenceArg, SequenceSet};
use s3imap::imap::parser::{
    FrameEvent, Framer, Limits, ParseErrorKind, Parsed, parse_authenticate_response, parse_command,
    parse_done_line,
};
use s3imap::utf7;

/// What a server observes, normalised: continuations and APPEND data chunks depend on how
/// the input is split, everything else must not.
#[derive(Debug, PartialEq, Eq)]
enum Ev {
    Cmd(Result<String, (Option<String>, ParseErrorKind)>),
    Err(Option<String>, ParseErrorKind),
    Start(String),
    Next(String),
    Done,
}

fn check_set(set: &SequenceSet, max: u32) {
    let ranges = set.resolve(max);
    let mut prev: Option<u32> = None;
    for r in &ranges {
        assert!(*r.start() >= 1 && r.start() <= r.end() && *r.end() <= max);
        if let Some(p) = prev {
            assert!(
                u64::from(*r.start()) > u64::from(p) + 1,
                "merged and sorted"
            );
        }
        prev = Some(*r.end());
    }
    if max <= 64 {
        for n in 1..=max {
            let in_ranges = ranges.iter().any(|r| r.contains(&n));
            assert_eq!(set.contains(n, max), in_ranges);
        }
    }
}

fn check_command(kind: &CommandKind<'_>, max: u32) {
    let set = match kind {
        CommandKind::Fetch(f) => Some(&f.set),
        CommandKind::Store(s) => Some(&s.set),
        CommandKind::Copy { set, .. } | CommandKind::Move { set, .. } => Some(set),
        CommandKind::UidExpunge(set) => Some(set),
        _ => None,
    };
    if let Some(SequenceArg::Set(s)) = set {
        check_set(s, max);
    }
    let _ = kind.name();
}

fn drive(input: &[u8], chunk: usize, limits: Limits, reject: bool) -> Vec<Ev> {
    let mut framer = Framer::new(limits);
    let mut buf: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    let mut data_total = 0u64;
    for piece in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        // Every event but NeedMore makes progress; bound the loop to catch livelocks.
        let mut budget = 4 * buf.len() + 16;
        loop {
            budget = budget.checked_sub(1).expect("framer made no progress");
            match framer.poll(&buf) {
                FrameEvent::NeedMore => break,
                FrameEvent::Continuation { .. } => {}
                FrameEvent::Command { len } => {
                    assert!(len > 0 && len <= buf.len());
                    assert_eq!(buf[len - 1], b'\n');
                    let r = match parse_command(&buf[..len], &limits) {
                        Ok(Parsed::Complete { command, consumed }) => {
                            assert_eq!(consumed, len);
                            check_command(&command.kind, 40);
                            Ok(format!("{command:?}"))
                        }
                        Ok(Parsed::Incomplete(n)) => panic!("framed command incomplete: {n:?}"),
                        Err(e) => {
                            assert_eq!(e.skip, len);
                            assert!(e.resync.is_none());
                            assert_ne!(e.kind, ParseErrorKind::Truncated, "frame ran out");
                            let _ = e.to_string();
                            Err((e.tag.map(str::to_owned), e.kind))
                        }
                    };
                    events.push(Ev::Cmd(r));
                    buf.drain(..len);
                }
                FrameEvent::Error { tag, kind } => {
                    let _ = kind.to_string();
                    events.push(Ev::Err(tag.map(|t| t.into_owned()), kind));
                }
                FrameEvent::Skip { len } => {
                    assert!(len > 0 && len <= buf.len());
                    buf.drain(..len);
                }
                FrameEvent::AppendStart { len, head } => {
                    assert!(len > 0 && len <= buf.len());
                    assert!(head.message.literal.len <= limits.max_literal);
                    events.push(Ev::Start(format!("{head:?}")));
                    buf.drain(..len);
                    if reject {
                        framer.reject_literal();
                    }
                }
                FrameEvent::AppendNext { len, message } => {
                    assert!(len > 0 && len <= buf.len());
                    events.push(Ev::Next(format!("{message:?}")));
                    buf.drain(..len);
                }
                FrameEvent::AppendData { data } => {
                    assert!(!data.is_empty() && data.len() <= buf.len());
                    assert!(
                        data.as_ptr() == buf.as_ptr(),
                        "data is the front of the buffer"
                    );
                    data_total += data.len() as u64;
                    assert!(data_total <= input.len() as u64);
                    let n = data.len();
                    buf.drain(..n);
                }
                FrameEvent::AppendDone { len } => {
                    assert!(len > 0 && len <= buf.len());
                    events.push(Ev::Done);
                    buf.drain(..len);
                }
            }
        }
    }
    events
}

/// Grammar fragments for token mode: each input byte below `TOKENS.len()` stands for one of
/// these, any other byte for itself (so 8-bit bytes still appear).
#[rustfmt::skip]
const TOKENS: &[&[u8]] = &[
    b"a", b"A001", b" ", b"\r\n", b"\n", b"\r", b"(", b")", b"[", b"]", b"<", b">", b".",
    b":", b",", b"*", b"$", b"\"", b"\\", b"{5}\r\n", b"{3+}\r\n", b"~{4}\r\n", b"{0}\r\n",
    b"{1}\r\n", b"{99999999999999999999}\r\n", b"1", b"2", b"0", b"42", b"4294967295",
    b"4294967296", b"1:*", b"1,3:5", b"hello", b"INBOX", b"\"INBOX\"", b"\"Sent Items\"",
    b"&AMk-", b"NIL", b"CAPABILITY", b"NOOP", b"LOGOUT", b"STARTTLS", b"AUTHENTICATE",
    b"LOGIN", b"ID", b"ENABLE", b"NAMESPACE", b"SELECT", b"EXAMINE", b"CREATE", b"DELETE",
    b"RENAME", b"SUBSCRIBE", b"LIST", b"LSUB", b"STATUS", b"APPEND", b"CHECK", b"CLOSE",
    b"UNSELECT", b"EXPUNGE", b"SEARCH", b"FETCH", b"STORE", b"COPY", b"MOVE", b"UID", b"IDLE",
    b"DONE", b"ENVELOPE", b"FLAGS", b"INTERNALDATE", b"RFC822", b"RFC822.SIZE",
    b"RFC822.HEADER", b"BODY", b"BODYSTRUCTURE", b"BODY.PEEK", b"BINARY", b"BINARY.PEEK",
    b"BINARY.SIZE", b"HEADER", b"HEADER.FIELDS", b"HEADER.FIELDS.NOT", b"TEXT", b"MIME",
    b"ALL", b"FAST", b"FULL", b"MODSEQ", b"CHANGEDSINCE", b"VANISHED", b"ANSWERED", b"BCC",
    b"BEFORE", b"DRAFT", b"FROM", b"KEYWORD", b"LARGER", b"NEW", b"NOT", b"ON", b"OR", b"SEEN",
    b"SENTSINCE", b"SINCE", b"SMALLER", b"SUBJECT", b"UNSEEN", b"CHARSET", b"UTF-8", b"RETURN",
    b"MIN", b"MAX", b"COUNT", b"SAVE", b"1-Jan-2024", b"\"31-Dec-1999\"",
    b"\"17-Jan-2024 10:04:05 +0200\"", b"\" 7-Jan-2024 09:05:59 -0430\"", b"\\Seen",
    b"\\Answered", b"\\Deleted", b"\\Recent", b"\\*", b"$Forwarded", b"+FLAGS",
    b"-FLAGS.SILENT", b"CONDSTORE", b"QRESYNC", b"SUBSCRIBED", b"RECURSIVEMATCH",
    b"SPECIAL-USE", b"CHILDREN", b"USE", b"\\Drafts", b"MESSAGES", b"UIDNEXT", b"SIZE",
    b"HIGHESTMODSEQ", b"UNCHANGEDSINCE", b"PLAIN", b"=", b"AGFsaWNl", b"\0", b"\x01",
    b"\xc3\xa9", b"\"a\\\"b\"", b"\"/flags/\\\\draft\"", b"priv",
];

fn expand(tokens: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &t in tokens {
        match TOKENS.get(usize::from(t)) {
            Some(tok) => out.extend_from_slice(tok),
            None => out.push(t),
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    // data[0]: limits; data[1]: mode bits; the rest: raw input or grammar tokens.
    let [cfg, mode, rest @ ..] = data else {
        return;
    };
    let (cfg, mode) = (*cfg, *mode);
    let expanded;
    let input: &[u8] = if mode & 1 != 0 {
        expanded = expand(rest);
        &expanded
    } else {
        rest
    };
    let limits = Limits {
        max_line: 8 + usize::from(cfg & 0x0f) * 16,
        max_literal: u64::from(cfg >> 4) * 8,
        max_depth: 1 + usize::from(cfg & 0x07) * 4,
    };
    let defaults = Limits::default();

    // One-shot parsing of the whole buffer.
    for l in [&limits, &defaults] {
        match parse_command(input, l) {
            Ok(Parsed::Complete { command, consumed }) => {
                assert!(consumed > 0 && consumed <= input.len());
                assert_eq!(input[consumed - 1], b'\n');
                check_command(&command.kind, u32::from(cfg));
                let again = parse_command(&input[..consumed], l);
                assert!(matches!(again, Ok(Parsed::Complete { command: c, .. }) if c == command));
            }
            Ok(Parsed::Incomplete(_)) => {}
            Err(e) => {
                assert!(e.skip <= input.len());
                assert_ne!(e.kind, ParseErrorKind::Truncated);
                if let Some(mut f) = e.resync {
                    let _ = f.poll(&input[e.skip..]);
                } else {
                    assert!(e.skip > 0);
                }
            }
        }
    }

    // Framing: whole, in chunks of a size from the input, and byte by byte must agree.
    let reject = mode & 2 != 0;
    let whole = drive(input, input.len(), limits, reject);
    let chunk = 1 + usize::from(mode >> 2) % 13;
    assert_eq!(drive(input, chunk, limits, reject), whole);
    if input.len() <= 256 {
        assert_eq!(drive(input, 1, limits, reject), whole);
    }

    // Non-command lines.
    if let Some(Ok(n)) | Some(Err(s3imap::imap::parser::LineError { skip: n, .. })) =
        parse_done_line(input)
    {
        assert!(n > 0 && n <= input.len());
    }
    match parse_authenticate_response(input, &limits) {
        Some(Ok((_, n))) => assert!(n > 0 && n <= input.len()),
        Some(Err(e)) => assert!(e.skip > 0 && e.skip <= input.len()),
        None => {}
    }

    // Modified UTF-7: whatever decodes must re-encode to the same bytes, and any string
    // survives a round trip.
    if let Ok(s) = utf7::decode(input) {
        assert_eq!(utf7::encode(&s).as_bytes(), input);
    }
    let s = String::from_utf8_lossy(input);
    assert_eq!(
        utf7::decode(utf7::encode(&s).as_bytes()).as_deref(),
        Ok(&*s)
    );
});
