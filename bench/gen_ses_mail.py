#!/usr/bin/env python3
"""Deterministic SES-inbound-like mail, as Amazon SES writes it into S3.

One object per message: raw RFC 5322 with CRLF line ends, SES's own top headers
(Return-Path, Received ... by inbound-smtp.us-east-1.amazonaws.com with SMTP id <id>,
X-SES-Spam-Verdict, X-SES-Virus-Verdict, Received-SPF, Authentication-Results,
X-SES-RECEIPT, X-SES-DKIM-SIGNATURE), then the sender's headers and a body that is
text/plain, multipart/alternative (plain + html, quoted-printable) or multipart/mixed
with base64 attachments. The object key is SES's message id: 40 lowercase alphanumerics,
the same id as in the Received header's "with SMTP id".

As a module (tests can reuse it):

    import random, gen_ses_mail
    rng = random.Random(1)
    m = gen_ses_mail.message(rng, users=gen_ses_mail.DEFAULT_USERS)
    m.key, m.raw, m.recipients, m.spam, m.virus

As a command:

    bench/gen_ses_mail.py --count 5000 --seed 1 --out DIR [--prefix inbound/]

writes DIR/objects/<prefix><key> for each message plus DIR/objects/<prefix>
AMAZON_SES_SETUP_NOTIFICATION, a Dovecot passwd-file DIR/users, and DIR/expected.json
(the manifest: per-object envelope recipients, the expected delivery count, sizes).

Envelope recipients: SES records them only in the Received header's "for" clause, and
like other MTAs (RFC 5321 4.4) only when there is exactly one. So: a message with one
local recipient names it in "for <addr>" (and may not name it in To/Cc at all, as with
mailing lists and Bcc); a message with several local recipients has no "for" clause and
names every one of them in To or Cc. Non-local addresses in To/Cc are not recipients
(SES received only its own domain's RCPT TOs). A delivery is one (message, local
recipient) pair; expected.json's "deliveries" is their sum.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as _dt
import hashlib
import json
import os
import random
import statistics
import string
import sys
from dataclasses import dataclass, field

DOMAIN = "example.com"
DEFAULT_USERS = tuple(f"{u}@{DOMAIN}" for u in ("alice", "bob", "carol", "dave", "erin"))
SETUP_NOTIFICATION_KEY = "AMAZON_SES_SETUP_NOTIFICATION"
SETUP_NOTIFICATION_BODY = (
    b"Amazon SES has successfully set up this bucket for receiving email. This is a\r\n"
    b"test object written by the Amazon SES receipt rule that stores messages here.\r\n"
)
MAX_SIZE = 2 * 1024 * 1024  # no message is larger than this (2 MiB)
CRLF = "\r\n"

_KEY_ALPHABET = string.ascii_lowercase + string.digits
_B64 = string.ascii_letters + string.digits + "+/"

_WORDS = (
    "the of and to in is for on that with as by this be are from at or an it not have "
    "meeting invoice report project schedule update attached please review thanks regards "
    "quarter budget proposal contract delivery order shipment account payment reminder "
    "team tomorrow next week agenda notes minutes draft final version changes comments "
    "server deploy release build test issue ticket customer support request access login "
    "password reset security alert newsletter offer subscription unsubscribe receipt "
    "travel booking flight hotel confirmation itinerary lunch dinner weekend family photos"
).split()
_UTF8_WORDS = ("café", "naïve", "Grüße", "façade", "über", "résumé", "Ärger", "smörgåsbord",
               "jalapeño", "Zürich", "crème", "Ünïcödé", "日本語", "привет", "€100")
_SENDER_DOMAINS = (
    ("gmail.com", "mail-{x}.google.com", "209.85.{a}.{b}", "_spf.google.com", "20230601"),
    ("outlook.com", "mail-{x}.outbound.protection.outlook.com", "40.92.{a}.{b}",
     "spf.protection.outlook.com", "selector1"),
    ("yahoo.com", "sonic{x}.mail.bf1.yahoo.com", "74.6.{a}.{b}", "_spf.mail.yahoo.com", "s2048"),
    ("fastmail.com", "fout-{x}.smtp.messagingengine.com", "103.168.{a}.{b}",
     "spf.messagingengine.com", "fm3"),
    ("github.com", "out-{x}.smtp.github.com", "192.30.{a}.{b}", "_spf.github.com", "pf2023"),
    ("lists.debian.org", "bendel-{x}.debian.org", "82.195.{a}.{b}", "debian.org", "deb"),
    ("shop.example.net", "a{x}-{a}.smtp-out.amazonses.com", "54.240.{a}.{b}", "amazonses.com",
     "ug7nbtf4gccmlpwj322ax3p6ow6yfsug"),
)
_NAMES = ("Alice Smith", "Bob Jones", "Carol Nguyen", "Dave Müller", "Erin O'Brien",
          "Frank Zhang", "Grace Kim", "Heidi Svensson", "Ivan Petrov", "Judy García",
          "GitHub", "Newsletter Team", "Order Updates", "No Reply")
_ATTACH = (("application/pdf", "pdf"), ("image/jpeg", "jpg"), ("image/png", "png"),
           ("application/zip", "zip"),
           ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
           ("text/calendar", "ics"))
_EPOCH = _dt.datetime(2026, 1, 5, 8, 0, 0, tzinfo=_dt.timezone.utc)


@dataclass
class Message:
    key: str                      # SES message id = the object's name under the prefix
    raw: bytes                    # the whole object, CRLF line ends
    recipients: list = field(default_factory=list)  # local envelope recipients
    spam: str = "PASS"
    virus: str = "PASS"
    kind: str = "plain"           # plain | alternative | mixed


def ses_id(rng: random.Random) -> str:
    """SES message id / object key: 40 random lowercase alphanumerics."""
    return "".join(rng.choice(_KEY_ALPHABET) for _ in range(40))


def _b64chars(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_B64) for _ in range(n))


def _sentence(rng: random.Random, utf8: bool = False) -> str:
    n = rng.randint(6, 18)
    words = [rng.choice(_WORDS) for _ in range(n)]
    if utf8 and rng.random() < 0.5:
        words[rng.randrange(n)] = rng.choice(_UTF8_WORDS)
    s = " ".join(words)
    return s[0].upper() + s[1:] + rng.choice(".....?!")


def _paragraphs(rng: random.Random, size: int, utf8: bool) -> str:
    """Plain text of about `size` bytes, in paragraphs with lines under 78 chars."""
    out, n = [], 0
    while n < size:
        para, line = [], ""
        for _ in range(rng.randint(2, 6)):
            for w in _sentence(rng, utf8).split(" "):
                if len(line) + len(w) + 1 > 72:
                    para.append(line)
                    line = w
                else:
                    line = f"{line} {w}" if line else w
        para.append(line)
        text = "\n".join(para)
        out.append(text)
        n += len(text.encode()) + 2
    return "\n\n".join(out) + "\n"


def _fold(name: str, value: str, width: int = 76) -> str:
    """A header field folded at its spaces with CRLF+TAB (RFC 5322 3.2.2). Only a DKIM
    "b=" tag is broken inside (DKIM ignores folding white space there); any other token
    longer than the width stays whole on a longer line."""
    line = f"{name}: "
    lines = []
    for tok in value.split(" "):
        if len(line) + len(tok) + 1 > width and line.strip():
            lines.append(line.rstrip())
            line = "\t"
        while tok.startswith("b=") and len(line) + len(tok) > width:
            room = max(width - len(line), 8)
            lines.append(line + tok[:room])
            line, tok = "\t", tok[room:]
        line += tok + " "
    lines.append(line.rstrip())
    return CRLF.join(lines) + CRLF


def _encoded_word(text: str, rng: random.Random) -> str:
    raw = text.encode("utf-8")
    if rng.random() < 0.5:
        return "=?UTF-8?B?" + base64.b64encode(raw).decode() + "?="
    q = "".join(c if (c.isascii() and c.isalnum()) else
                "_" if c == " " else "".join(f"={b:02X}" for b in c.encode()) for c in text)
    return "=?utf-8?Q?" + q + "?="


def _qp(text: str) -> str:
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii").replace("\n", CRLF)


def _b64_lines(data: bytes) -> str:
    return base64.encodebytes(data).decode("ascii").replace("\n", CRLF)


def _html(text: str) -> str:
    paras = "".join(f"<p style=\"margin:0 0 1em\">{p}</p>\n" for p in text.split("\n\n"))
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><style>body{font-family:"
            "Arial,sans-serif;font-size:14px;color:#222}</style></head>\n<body><div dir=\"ltr\">\n"
            + paras + "</div></body></html>\n")


def _boundary(rng: random.Random) -> str:
    return "000000000000" + "".join(rng.choice("0123456789abcdef") for _ in range(16))


def _text_size(rng: random.Random) -> int:
    # log-normal around ~2 KB of prose: most mail is short, a few are long threads
    return int(min(max(rng.lognormvariate(7.6, 0.9), 120), 200_000))


def _attachment_total(rng: random.Random) -> int:
    # raw attachment bytes: log-normal, median ~43 KB, a long tail cut at MAX_SIZE below
    return int(max(rng.lognormvariate(10.68, 1.45), 2_000))


def message(rng: random.Random, users=DEFAULT_USERS, when: _dt.datetime | None = None,
            spam_fail_rate: float = 0.02, virus_fail_rate: float = 0.0,
            kind: str | None = None, max_size: int = MAX_SIZE) -> Message:
    """One SES inbound object. Deterministic given `rng`'s state."""
    users = list(users)
    key = ses_id(rng)
    when = when or (_EPOCH + _dt.timedelta(seconds=rng.randrange(86400 * 60)))
    dom, host_t, ip_t, spf_dom, selector = rng.choice(_SENDER_DOMAINS)
    hx = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(6))
    ip = ip_t.format(a=rng.randrange(1, 255), b=rng.randrange(1, 255))
    host = host_t.format(x=hx, a=rng.randrange(10, 99))
    sender_name = rng.choice(_NAMES)
    local = sender_name.split()[0].lower().replace("'", "") + str(rng.randrange(100))
    sender = f"{local}@{dom}"
    env_from = sender if rng.random() < 0.7 else f"bounces+{rng.randrange(10**8)}-{local}@{dom}"

    # recipients: one local (sometimes hidden, as with lists/Bcc) or several, all visible
    r = rng.random()
    if r < 0.80:
        rcpts = [rng.choice(users)]
        hidden = rng.random() < 0.08
    else:
        rcpts = rng.sample(users, rng.randint(2, min(3, len(users))))
        hidden = False
    externals = [f"{n.split()[0].lower()}@{rng.choice(('partner.org', 'gmail.com'))}"
                 for n in rng.sample(_NAMES[:10], rng.randint(0, 2))]
    if hidden:
        to_list, cc_list = [f"announce@{dom}"], []
    else:
        vis = rcpts + externals
        rng.shuffle(vis)
        k = rng.randint(1, len(vis))
        to_list, cc_list = vis[:k], vis[k:]
        # make sure the first local recipient is in To when there is only one
        if len(rcpts) == 1 and rcpts[0] not in to_list:
            to_list, cc_list = [rcpts[0]] + to_list, [a for a in cc_list if a != rcpts[0]]

    spam = "FAIL" if rng.random() < spam_fail_rate else "PASS"
    virus = "FAIL" if rng.random() < virus_fail_rate else "PASS"
    date_s = when.strftime("%a, %d %b %Y %H:%M:%S +0000")
    ts = int(when.timestamp())
    spf = "pass" if spam == "PASS" else rng.choice(("softfail", "neutral", "fail"))
    dkim = "pass" if spam == "PASS" else "fail"
    spf_text = (f"{spf} (spfCheck: domain of {spf_dom} designates {ip} as permitted sender) "
                f"client-ip={ip}; envelope-from={env_from}; helo={host};")

    h = []
    h.append(f"Return-Path: <{env_from}>{CRLF}")
    # SES's own headers, folded the way SES folds them
    h.append(f"Received: from {host} ({host} [{ip}]){CRLF}"
             f" by inbound-smtp.us-east-1.amazonaws.com with SMTP id {key}{CRLF}"
             + (f" for {rcpts[0]};{CRLF}" if len(rcpts) == 1 else "")
             + f" {date_s} (UTC){CRLF}")
    h.append(f"X-SES-Spam-Verdict: {spam}{CRLF}")
    h.append(f"X-SES-Virus-Verdict: {virus}{CRLF}")
    h.append(f"Received-SPF: {spf_text}{CRLF}")
    h.append(f"Authentication-Results: amazonses.com;{CRLF} spf={spf_text}{CRLF}"
             f" dkim={dkim} header.i=@{dom};{CRLF}"
             f" dmarc={'pass' if dkim == 'pass' else 'fail'} header.from={dom};{CRLF}")
    h.append(f"X-SES-RECEIPT: {_b64chars(rng, rng.randint(600, 760))}{CRLF}")
    h.append(f"X-SES-DKIM-SIGNATURE: a=rsa-sha256; q=dns/txt; b={_b64chars(rng, 343)}=;"
             f" c=relaxed/simple; s=224i4yxa5dv7c2xz3womw6peuasteono; d=amazonses.com;"
             f" t={ts}; v=1; bh={_b64chars(rng, 43)}=;"
             " h=From:To:Cc:Bcc:Subject:Date:Message-ID:MIME-Version:Content-Type:X-SES-RECEIPT;"
             + CRLF)
    # the sender's own headers
    h.append(_fold("DKIM-Signature",
                   f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={dom}; s={selector}; t={ts - 3}; "
                   f"x={ts + 604797}; darn={DOMAIN}; "
                   "h=to:subject:message-id:date:from:mime-version:from:to:cc:subject:date:"
                   f"message-id:reply-to; bh={_b64chars(rng, 43)}=; b={_b64chars(rng, 342)}=="))
    from_disp = sender_name
    if any(ord(c) > 127 for c in from_disp):
        from_disp = _encoded_word(from_disp, rng)
    elif " " in from_disp or "'" in from_disp:
        from_disp = f"\"{from_disp}\""
    h.append(f"From: {from_disp} <{sender}>{CRLF}")
    h.append(_fold("To", ", ".join(to_list)))
    if cc_list:
        h.append(_fold("Cc", ", ".join(cc_list)))
    subj_words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 9))).capitalize()
    if rng.random() < 0.25:
        subj = rng.choice(("Re: ", "Fwd: ", "")) + _encoded_word(
            subj_words + " " + rng.choice(_UTF8_WORDS), rng)
    else:
        subj = rng.choice(("Re: ", "", "", "[list] ")) + subj_words
    h.append(_fold("Subject", subj))
    h.append(f"Date: {date_s}{CRLF}")
    h.append(f"Message-ID: <{_b64chars(rng, 24).replace('/', '-').replace('+', '_')}"
             f"@mail.{dom}>{CRLF}")
    h.append(f"MIME-Version: 1.0{CRLF}")

    if kind is None:
        k = rng.random()
        kind = "plain" if k < 0.42 else "alternative" if k < 0.80 else "mixed"
    utf8 = rng.random() < 0.3
    text = _paragraphs(rng, _text_size(rng), utf8)

    def plain_part() -> str:
        if utf8:
            return (f"Content-Type: text/plain; charset=\"UTF-8\"{CRLF}"
                    f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}" + _qp(text))
        return (f"Content-Type: text/plain; charset=\"UTF-8\"{CRLF}{CRLF}"
                + text.replace("\n", CRLF))

    def alt_part() -> str:
        b = _boundary(rng)
        return (f"Content-Type: multipart/alternative; boundary=\"{b}\"{CRLF}{CRLF}"
                f"--{b}{CRLF}" + plain_part() + f"{CRLF}--{b}{CRLF}"
                f"Content-Type: text/html; charset=\"UTF-8\"{CRLF}"
                f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}"
                + _qp(_html(text)) + f"{CRLF}--{b}--{CRLF}")

    head = "".join(h)
    if kind == "plain":
        body = plain_part()
    elif kind == "alternative":
        body = alt_part()
    else:
        b = _boundary(rng)
        parts = [alt_part()]
        total = _attachment_total(rng)
        budget = (max_size - len(head) - len(parts[0]) - 2048) * 3 // 4 * 76 // 78
        total = max(min(total, budget), 0)
        n = 1 if total < 50_000 else rng.randint(1, 3)
        for i in range(n):
            size = total // n
            ctype, ext = rng.choice(_ATTACH)
            name = f"{rng.choice(_WORDS)}-{rng.randrange(1000)}.{ext}"
            parts.append(f"Content-Type: {ctype}; name=\"{name}\"{CRLF}"
                         f"Content-Disposition: attachment; filename=\"{name}\"{CRLF}"
                         f"Content-Transfer-Encoding: base64{CRLF}"
                         f"Content-ID: <f_{_b64chars(rng, 10).replace('/', 'x').replace('+', 'y')}"
                         f">{CRLF}X-Attachment-Id: f_{i}{CRLF}{CRLF}"
                         + _b64_lines(rng.randbytes(size)))
        body = (f"Content-Type: multipart/mixed; boundary=\"{b}\"{CRLF}{CRLF}"
                + "".join(f"--{b}{CRLF}{p}{CRLF}" for p in parts) + f"--{b}--{CRLF}")
    raw = (head + body).encode("utf-8")
    assert b"\n" not in raw.replace(b"\r\n", b""), "bare LF"
    assert len(raw) <= max_size, len(raw)
    return Message(key=key, raw=raw, recipients=list(rcpts), spam=spam, virus=virus, kind=kind)


def passwd_file(users=DEFAULT_USERS) -> str:
    """A Dovecot passwd-file: user:{PLAIN}password:uid:gid::home::"""
    return "".join(f"{u}:{{PLAIN}}secret:5000:5000::/var/mail/vmail/{u}::\n" for u in users)


def generate(out: str, count: int, seed: int, prefix: str = "inbound/",
             users=DEFAULT_USERS, quiet: bool = False) -> dict:
    """Write the corpus into `out`; return the manifest (also written to expected.json)."""
    rng = random.Random(seed)
    objdir = os.path.join(out, "objects", prefix)
    os.makedirs(objdir, exist_ok=True)
    sizes, msgs, deliveries, per_user = [], {}, 0, {u: 0 for u in users}
    spam = virus = 0
    kinds = {}
    for i in range(count):
        m = message(rng, users)
        while m.key in msgs:  # 36^40 makes this theoretical, but keys must be unique
            m = message(rng, users)
        with open(os.path.join(objdir, m.key), "wb") as f:
            f.write(m.raw)
        sizes.append(len(m.raw))
        msgs[m.key] = {"recipients": m.recipients, "spam": m.spam, "virus": m.virus,
                       "size": len(m.raw)}
        deliveries += len(m.recipients)
        for u in m.recipients:
            per_user[u] += 1
        spam += m.spam == "FAIL"
        virus += m.virus == "FAIL"
        kinds[m.kind] = kinds.get(m.kind, 0) + 1
    with open(os.path.join(objdir, SETUP_NOTIFICATION_KEY), "wb") as f:
        f.write(SETUP_NOTIFICATION_BODY)
    with open(os.path.join(out, "users"), "w") as f:
        f.write(passwd_file(users))
    manifest = {
        "seed": seed, "count": count, "prefix": prefix,
        "objects": count + 1,  # + AMAZON_SES_SETUP_NOTIFICATION
        "setup_notification": prefix + SETUP_NOTIFICATION_KEY,
        "deliveries": deliveries, "per_user": per_user,
        "spam_fail": spam, "virus_fail": virus, "kinds": kinds,
        "bytes_total": sum(sizes), "size_median": int(statistics.median(sizes)) if sizes else 0,
        "size_max": max(sizes, default=0), "size_min": min(sizes, default=0),
        "messages": msgs,
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(manifest, f, indent=0, sort_keys=True)
    if not quiet:
        print(f"gen_ses_mail: {count} messages (+ setup notification) in {objdir}: "
              f"median {manifest['size_median']/1000:.1f} KB, max {manifest['size_max']/1e6:.2f} MB, "
              f"total {manifest['bytes_total']/1e6:.1f} MB; {deliveries} deliveries to "
              f"{len(users)} users; spam FAIL {spam}; kinds {kinds}", file=sys.stderr)
    return manifest


def source_digest() -> str:
    """Hash of this file, so a cached corpus is rebuilt when the generator changes."""
    with open(os.path.abspath(__file__), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--prefix", default="inbound/", help="key prefix ('' for none)")
    a = ap.parse_args(argv)
    generate(a.out, a.count, a.seed, a.prefix)
    return 0


if __name__ == "__main__":
    sys.exit(main())
