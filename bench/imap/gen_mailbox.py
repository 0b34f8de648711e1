#!/usr/bin/env python3
"""A realistic, deterministic Maildir INBOX for the IMAP benchmark.

    bench/imap/gen_mailbox.py --count 10000 --seed 1 --out DIR [--size-mb 312]

writes

    DIR/users                          Dovecot passwd-file: bench@example.com:{PLAIN}bench::::::
    DIR/mail/bench@example.com/        the Maildir (the mail root is DIR/mail):
        cur/<secs>.M<usec>P<pid>.mx1,S=<size>,W=<vsize>:2,<flags>   (mtime = arrival time)
        new/ tmp/ dovecot-uidlist      (UIDs 1..N in arrival order, as Dovecot assigns them)
    DIR/manifest.json                  counts, bytes, kinds, the search word and the UIDs
                                       whose header or text contains it (the expected answer)

The mail is what an IMAP user's INBOX looks like after a year, as Dovecot's LDA stores it
(LF line ends; S= is the file size, W= the size with CRLF line ends, which IMAP reports):
- plain text (~40%), multipart/alternative with quoted-printable plain and HTML (~30%, some
  with multipart/related inline images), multipart/mixed with 1-3 base64 attachments (~22%;
  PDF/JPEG/PNG/ZIP/DOCX-like random bytes with the right magic numbers; most of the bytes),
  forwards with a nested message/rfc822 (~4%), HTML-only newsletters (~4%);
- text parts in many charsets (UTF-8, ISO-8859-1/2/7/15, Windows-1251/1252, KOI8-R,
  ISO-2022-JP, Shift_JIS, GB2312, Big5, EUC-KR) as 7bit/8bit, quoted-printable or base64;
- RFC 2047 encoded subjects and display names (B and Q, in those charsets);
- threads up to ~60 messages long with In-Reply-To and References;
- arrival times spread over one year; about half the messages seen (S), some answered (R)
  and flagged (F).
The total size is steered to --size-mb (default 31.2 KB a message: 312 MB for 10,000) by
scaling the attachments as the generator goes.

The search word (SEARCH_WORD, "reconciliation") is put into ~3% of the messages: into text
parts (whatever their charset and transfer encoding: a quoted-printable soft line break may
split it, a base64 part hides it) and into some Subject and From headers (some RFC 2047
encoded). It occurs nowhere else, so manifest.json's "search_uids" is the exact answer to
`UID SEARCH TEXT "reconciliation"`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import os
import random
import shutil
import sys
import time

USER = "bench@example.com"
PASSWORD = "bench"
SEARCH_WORD = "reconciliation"
HOST = "mx1"
EPOCH_END = 1764547200  # 2025-12-01 00:00:00 UTC; arrivals are spread over the year before
YEAR = 365 * 86400
BYTES_PER_MESSAGE = 31_200  # 10,000 messages ≈ 312 MB

_EN = (
    "the of and to in is for on that with as by this be are from at or an it not have we "
    "you will can our your all more about would there their what when which if so up out "
    "meeting invoice report project schedule update attached please review thanks regards "
    "quarter budget proposal contract delivery order shipment account payment reminder "
    "team tomorrow next week agenda notes minutes draft final version changes comments "
    "server deploy release build test issue ticket customer support request access login "
    "password reset security alert newsletter offer subscription unsubscribe receipt "
    "travel booking flight hotel confirmation itinerary lunch dinner weekend family photos "
    "deadline estimate figures revenue forecast slides feedback approve signed office "
    "migration database backup outage incident monitoring latency capacity storage"
).split()
# words per language, each encodable in every charset listed with it
_LANGS = {
    "de": ("Grüße Straße Bestellung Rechnung Besprechung morgen nächste Woche bitte danke "
           "für über Änderung Lieferung Büro Übersicht Zeitplan Mitarbeiter schön".split(),
           ("iso-8859-1", "iso-8859-15", "windows-1252", "utf-8")),
    "fr": ("réunion facture demain semaine prochaine merci à été déjà très reçu équipe "
           "livraison commande élève garçon français façade crème".split(),
           ("iso-8859-1", "iso-8859-15", "windows-1252", "utf-8")),
    "es": ("reunión factura mañana próxima semana gracias señor año niño pedido envío "
           "información está también aquí".split(),
           ("iso-8859-1", "windows-1252", "utf-8")),
    "pl": ("spotkanie faktura jutro tydzień dziękuję zamówienie łódź źródło żółć "
           "ściana proszę".split(), ("iso-8859-2", "utf-8")),
    "ru": ("привет встреча счёт завтра неделя спасибо заказ доставка отчёт проект "
           "письмо сервер команда".replace("ё", "е").split(),
           ("koi8-r", "windows-1251", "utf-8")),
    "el": ("γεια σας συνάντηση τιμολόγιο αύριο εβδομάδα ευχαριστώ παραγγελία".split(),
           ("iso-8859-7", "utf-8")),
    "ja": ("こんにちは 会議 請求書 明日 来週 ありがとう 注文 配送 報告 プロジェクト "
           "よろしく お願いします".split(), ("iso-2022-jp", "shift_jis", "utf-8")),
    "zh": ("你好 会议 发票 明天 下周 谢谢 订单 发货 报告 项目 服务器".split(),
           ("gb2312", "utf-8")),
    "tw": ("你好 會議 發票 明天 下週 謝謝 訂單 報告 專案 伺服器".split(), ("big5", "utf-8")),
    "ko": ("안녕하세요 회의 청구서 내일 다음주 감사합니다 주문 배송 보고서".split(),
           ("euc-kr", "utf-8")),
}
_FIRST = ("Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Niaj Olivia Peggy "
          "Rupert Sybil Trent Victor Walter Yuki").split()
_LAST = ("Smith Jones Nguyen Müller O'Brien Zhang Kim Svensson Petrov García Dubois Rossi "
         "Kowalski Tanaka Novak Silva").split()
_NONASCII_NAMES = {
    "utf-8": ("José Müller", "François Dubois", "Jürgen Groß", "Søren Kierkegaard"),
    "iso-8859-1": ("José Müller", "Björn Åström", "Zoë Brontë"),
    "windows-1251": ("Иван Петров", "Ольга Смирнова"),
    "koi8-r": ("Дмитрий Волков",),
    "iso-2022-jp": ("山田 太郎", "佐藤 花子"),
    "gb2312": ("王 伟", "李 娜"),
    "big5": ("陳 大文",),
    "euc-kr": ("김 민수",),
    "iso-8859-2": ("Łukasz Wójcik",),
    "iso-8859-7": ("Γιώργος Παπαδόπουλος",),
}
_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "fastmail.com", "example.org",
            "partner.co.uk", "lists.debian.org", "github.com", "mail.ru", "web.de",
            "orange.fr", "qq.com", "naver.com", "shop.example.net")
_LISTS = ("dev.lists.example.org", "announce.example.net", "users.lists.debian.org")
_MAILERS = ("Microsoft Outlook 16.0", "Apple Mail (2.3731)", "Mozilla Thunderbird",
            "Roundcube Webmail/1.6.5", "K-9 Mail for Android", None, None, None)
_ATTACH = (("application/pdf", "pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", 30),
           ("image/jpeg", "jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01", 30),
           ("image/png", "png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 12),
           ("application/zip", "zip", b"PK\x03\x04\x14\x00\x00\x00\x08\x00", 8),
           ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx",
            b"PK\x03\x04\x14\x00\x06\x00\x08\x00", 10),
           ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx",
            b"PK\x03\x04\x14\x00\x06\x00\x08\x00", 6),
           ("application/octet-stream", "bin", b"\x7fELF\x02\x01\x01\x00", 2))
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _pick_attach(rng):
    return rng.choices(_ATTACH, weights=[a[3] for a in _ATTACH])[0]


class Gen:
    """Holds the random state, the threads and the size steering."""

    def __init__(self, count: int, seed: int, target_bytes: int):
        self.rng = random.Random(seed)
        self.count = count
        self.target = target_bytes
        self.threads: list[dict] = []
        # size steering: binary parts get weight * scale bytes (encoded)
        plan = random.Random(seed ^ 0x5EED)
        self.plan = []
        for _ in range(count):
            k = plan.random()
            kind = ("plain" if k < 0.40 else "alternative" if k < 0.70 else
                    "mixed" if k < 0.92 else "forward" if k < 0.96 else "html")
            weights = []
            if kind == "mixed":
                n = plan.choices((1, 2, 3), weights=(70, 20, 10))[0]
                weights = [plan.lognormvariate(0, 1.1) for _ in range(n)]
            elif kind == "forward" and plan.random() < 0.5:
                weights = [plan.lognormvariate(-0.5, 1.0)]
            related = kind == "alternative" and plan.random() < 0.15
            if related:
                weights.append(0.04 * plan.lognormvariate(0, 0.5))
            self.plan.append((kind, weights, related))
        self.weight_left = sum(sum(w) for _, w, _ in self.plan)
        self.bytes_done = 0
        self.bin_done = 0  # bytes of binary parts (encoded, with their headers), so far
        self.done = 0

    # --- size steering -------------------------------------------------------------------
    def binary_sizes(self, weights) -> list[int]:
        left = self.count - self.done
        text_mean = (self.bytes_done - self.bin_done) / self.done if self.done else 6_500
        budget = self.target - self.bytes_done - text_mean * left
        scale = max(budget, 0) / self.weight_left if self.weight_left > 0 else 0
        self.weight_left -= sum(weights)
        # encoded bytes → raw bytes (base64 lines of 76 + LF: 57 raw per 77 bytes)
        return [int(min(max(w * scale * 57 / 77, 600), 12_000_000)) for w in weights]

    # --- text ----------------------------------------------------------------------------
    def words(self, n, lang=None):
        rng = self.rng
        out = rng.choices(_EN, k=n)
        if lang:
            vocab = _LANGS[lang][0]
            for i in range(0, n, 2):
                out[i] = rng.choice(vocab)
        return out

    def prose(self, size, lang=None, word=False) -> str:
        """About `size` characters in paragraphs, lines ≤ 72; with `word`, SEARCH_WORD in it."""
        rng = self.rng
        paras, n = [], 0
        while n < size:
            lines, line = [], []
            ll = 0
            for w in self.words(rng.randint(25, 90), lang):
                if ll + len(w) + 1 > 72 and line:
                    lines.append(" ".join(line))
                    line, ll = [], 0
                line.append(w)
                ll += len(w) + 1
            lines.append(" ".join(line) + ".")
            para = "\n".join(lines)
            paras.append(para[0].upper() + para[1:])
            n += len(para) + 2
        if word:
            i = rng.randrange(len(paras))
            w = rng.choice((SEARCH_WORD, SEARCH_WORD.capitalize(), SEARCH_WORD.upper()))
            paras[i] = (f"About the {w} of the accounts: please check the figures "
                        f"before Friday.\n") + paras[i]
        return "\n\n".join(paras) + "\n"

    def html(self, text: str, charset: str) -> str:
        body = "".join(f"<p style=\"margin:0 0 1em;line-height:1.4\">{p}</p>\n"
                       for p in text.split("\n\n"))
        return ("<!DOCTYPE html>\n<html><head><meta http-equiv=\"Content-Type\" content=\"text"
                f"/html; charset={charset}\">"
                "<style>body{font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#222}td{padding:4px}</style></head>\n<body><div dir=\"ltr\">"
                "<table width=\"100%\" cellpadding=\"0\" cellspacing=\"0\"><tr><td>\n"
                + body + "</td></tr></table></div></body></html>\n")

    def text_part(self, text: str, subtype="plain", charset=None, cte=None) -> bytes:
        """A text/* part (headers + body), LF line ends."""
        rng = self.rng
        charset = charset or "utf-8"
        raw = text.encode(charset)
        if cte is None:
            if raw.isascii():
                cte = rng.choices(("7bit", "quoted-printable", "base64"), (70, 20, 10))[0]
            else:
                cte = rng.choices(("8bit", "quoted-printable", "base64"), (35, 45, 20))[0]
        if charset == "iso-2022-jp":
            cte = "7bit"
        if cte == "quoted-printable":
            body = binascii.b2a_qp(raw, istext=True)
        elif cte == "base64":
            body = base64.encodebytes(raw)
        else:
            body = raw
        cs = charset.upper() if rng.random() < 0.5 else charset
        if charset == "utf-8" and raw.isascii() and rng.random() < 0.3:
            cs = "us-ascii"
        head = f"Content-Type: text/{subtype}; charset=\"{cs}\"\n"
        if subtype == "plain" and rng.random() < 0.2:
            head = f"Content-Type: text/plain; charset={cs}; format=flowed\n"
        if cte != "7bit" or rng.random() < 0.5:
            head += f"Content-Transfer-Encoding: {cte}\n"
        return head.encode() + b"\n" + body

    def binary_part(self, size: int, inline=False) -> bytes:
        rng = self.rng
        ctype, ext, magic, _ = _pick_attach(rng)
        if inline:
            ctype, ext, magic = "image/png", "png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
        data = magic + rng.randbytes(max(size - len(magic), 0))
        stem = rng.choice(("scan", "invoice", "photo", "IMG", "report", "contract", "slides",
                           "Rechnung", "facture", "DSC", "statement", "offer"))
        name = f"{stem}_{rng.randrange(10000):04d}.{ext}"
        head = f"Content-Type: {ctype}; name=\"{name}\"\n"
        if inline:
            cid = f"{_rand(rng, 12)}@{HOST}"
            head += f"Content-ID: <{cid}>\nContent-Disposition: inline; filename=\"{name}\"\n"
        else:
            head += f"Content-Disposition: attachment; filename=\"{name}\""
            head += f"; size={len(data)}\n" if rng.random() < 0.3 else "\n"
        head += "Content-Transfer-Encoding: base64\n"
        part = head.encode() + b"\n" + base64.encodebytes(data)
        self.bin_done += len(part)
        return part

    # --- headers -------------------------------------------------------------------------
    def person(self):
        rng = self.rng
        if rng.random() < 0.15:
            cs = rng.choice(list(_NONASCII_NAMES))
            name = rng.choice(_NONASCII_NAMES[cs])
            local = f"{rng.choice(_FIRST).lower()}{rng.randrange(100)}"
            return encode_words(name, cs, rng), f"{local}@{rng.choice(_DOMAINS)}"
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        addr = f"{first.lower()}.{last.lower().replace(chr(39), '')}@{rng.choice(_DOMAINS)}"
        name = f"{first} {last}"
        if not name.isascii():
            name = encode_words(name, rng.choice(("utf-8", "iso-8859-1")), rng)
        elif "'" in name or rng.random() < 0.3:
            name = f"\"{name}\""
        return name, addr.encode("ascii", "ignore").decode()

    def message(self, i: int, when: int, nested=False, word_where=None) -> tuple[bytes, bool]:
        """One message (bytes, LF) and whether SEARCH_WORD is in its header or text.
        Top-level messages follow their plan entry; word_where puts SEARCH_WORD in the
        "body", "subject", "from" or the "nested" forwarded message."""
        rng = self.rng
        if nested:
            kind, weights, related = (rng.choice(("plain", "alternative")), [], False)
        else:
            kind, weights, related = self.plan[i]
        lang = rng.choice(list(_LANGS)) if rng.random() < 0.25 else None
        charset = rng.choice(_LANGS[lang][1]) if lang else rng.choice(
            ("utf-8", "utf-8", "utf-8", "us-ascii", "iso-8859-1", "windows-1252"))
        if charset == "us-ascii":
            charset = "utf-8"
        h = []
        from_name, from_addr = self.person()
        hit = word_where is not None
        if word_where == "from":
            from_name, from_addr = ("\"Account Reconciliation\"",
                                    f"reconciliation@{rng.choice(_DOMAINS)}")
        # thread: reply into an existing one, or start a new one
        thread = None
        if not nested and word_where != "subject" and self.threads and rng.random() < 0.45:
            # recent and long threads are likelier to get replies
            cand = self.threads[-150:]
            thread = rng.choices(cand, weights=[len(t["ids"]) ** 2 for t in cand])[0]
            if len(thread["ids"]) >= 60:
                thread = None
        if thread:
            subj_text = thread["subject"]
            prefix = rng.choice(("Re: ", "RE: ", "Re: ", "AW: ", "Re: "))
            subject_raw = thread["subject_raw"]
            hit = hit or SEARCH_WORD in subj_text.lower()  # "Re: ... reconciliation"
        else:
            subj_text = " ".join(self.words(rng.randint(2, 8), lang)).capitalize()
            if word_where == "subject":
                subj_text += f" {SEARCH_WORD}" if rng.random() < 0.5 else \
                    f" ({SEARCH_WORD.capitalize()} Q{rng.randint(1, 4)})"
            prefix = rng.choice(("", "", "", "Fwd: ", "[list] "))
            if not subj_text.isascii() or rng.random() < 0.08:
                subject_raw = encode_words(subj_text, charset, rng)
            else:
                subject_raw = subj_text
        mid = f"<{_rand(rng, 20)}.{when}@{from_addr.split('@')[1]}>"
        date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(when - rng.randint(2, 900)))
        if not nested:
            h.append(f"Return-Path: <{from_addr}>")
            h.append(f"Delivered-To: {USER}")
            for hop in range(rng.randint(1, 3)):
                h.append(f"Received: from mail-{_rand(rng, 6).lower()}.{from_addr.split('@')[1]} "
                         f"(mail-{_rand(rng, 6).lower()}.{from_addr.split('@')[1]} "
                         f"[{rng.randrange(1, 255)}.{rng.randrange(256)}.{rng.randrange(256)}."
                         f"{rng.randrange(1, 255)}])\n\tby {HOST}.example.com (Postfix) with ESMTPS "
                         f"id {_rand(rng, 10).upper()}\n\tfor <{USER}>; {date}")
            if rng.random() < 0.6:
                h.append(fold("DKIM-Signature",
                              f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={from_addr.split('@')[1]}; "
                              f"s=s{rng.randrange(2020, 2026)}; t={when}; h=from:to:subject:date:"
                              f"message-id:mime-version; bh={_rand(rng, 43)}=; b={_rand(rng, 342)}=="))
        h.append(f"From: {from_name} <{from_addr}>")
        to = [USER] if not nested else [self.person()[1]]
        others = [f"{n} <{a}>" for n, a in (self.person() for _ in range(rng.choice((0, 0, 0, 1, 2, 4))))]
        h.append(fold("To", ", ".join(to + others[: len(others) // 2 + 1])))
        if len(others) > 1:
            h.append(fold("Cc", ", ".join(others[len(others) // 2 + 1:])))
        h.append(fold("Subject", prefix + subject_raw))
        h.append(f"Date: {date}")
        h.append(f"Message-ID: {mid}")
        if thread:
            h.append(f"In-Reply-To: {thread['ids'][-1]}")
            h.append(fold("References", " ".join(thread["ids"][-40:])))
            thread["ids"].append(mid)
        elif not nested:
            self.threads.append({"subject": subj_text, "subject_raw": subject_raw, "ids": [mid]})
        if not nested and rng.random() < 0.15:
            lid = rng.choice(_LISTS)
            h.append(f"List-Id: <{lid}>")
            h.append(f"List-Unsubscribe: <mailto:leave-{_rand(rng, 8)}@{lid}>")
            h.append("Precedence: list")
        mailer = rng.choice(_MAILERS)
        if mailer:
            h.append(f"X-Mailer: {mailer}" if rng.random() < 0.5 else f"User-Agent: {mailer}")
        h.append("MIME-Version: 1.0")
        head = ("\n".join(h) + "\n").encode("ascii")

        text = self.prose(int(min(max(rng.lognormvariate(7.5, 0.9), 150), 60_000)), lang,
                          word=word_where == "body")
        if thread and rng.random() < 0.7:
            quoted = "\n".join("> " + ln for ln in self.prose(rng.randint(200, 2500)).splitlines())
            text += f"\nOn {date}, someone wrote:\n{quoted}\n"

        def alternative() -> bytes:
            b = boundary(rng)
            alt = (f"Content-Type: multipart/alternative;\n\tboundary=\"{b}\"\n\n".encode()
                   + f"--{b}\n".encode() + self.text_part(text, "plain", charset)
                   + f"\n--{b}\n".encode()
                   + self.text_part(self.html(text, charset), "html", charset, "quoted-printable")
                   + f"\n--{b}--\n".encode())
            return alt

        binaries = self.binary_sizes(weights) if not nested else []
        if kind == "plain":
            body = self.text_part(text, "plain", charset)
        elif kind == "html":
            body = self.text_part(self.html(text, charset), "html", charset,
                                  rng.choice(("quoted-printable", "base64")))
        elif kind == "alternative" and related:
            b = boundary(rng)
            body = (f"Content-Type: multipart/related;\n\tboundary=\"{b}\"; type=\"multipart"
                    f"/alternative\"\n\n--{b}\n").encode() + alternative()
            for size in binaries:
                body += f"\n--{b}\n".encode() + self.binary_part(size, inline=True)
            body += f"\n--{b}--\n".encode()
        elif kind == "alternative":
            body = alternative()
        else:  # mixed, forward
            b = boundary(rng)
            first = alternative() if rng.random() < 0.6 else self.text_part(text, "plain", charset)
            parts = [first]
            if kind == "forward":
                inner_when = when - rng.randint(3600, 30 * 86400)
                inner, _ = self.message(i, inner_when, nested=True,
                                        word_where="body" if word_where == "nested" else None)
                parts.append(b"Content-Type: message/rfc822\nContent-Disposition: inline\n\n"
                             + inner)
            for size in binaries:
                parts.append(self.binary_part(size))
            body = (f"Content-Type: multipart/mixed;\n\tboundary=\"{b}\"\n\n"
                    "This is a multi-part message in MIME format.\n").encode()
            for p in parts:
                body += f"--{b}\n".encode() + p + b"\n"
            body += f"--{b}--\n".encode()
        return head + body, hit


def _rand(rng, n):
    return "".join(rng.choices(_B64, k=n))


def boundary(rng):
    return rng.choice(("----=_Part_", "000000000000", "Apple-Mail=_", "----_=_NextPart_001_")) \
        + _rand(rng, 24)


def encode_words(text: str, charset: str, rng) -> str:
    """RFC 2047 encoded words (B or Q), split so that each stays under 75 characters."""
    if charset == "iso-2022-jp":
        enc = "B"
    else:
        enc = rng.choice("BQ")
    out, chunk = [], ""
    for ch in text:  # chunks of whole characters
        if len((chunk + ch).encode(charset)) > 30:
            out.append(chunk)
            chunk = ""
        chunk += ch
    out.append(chunk)
    words = []
    for c in out:
        raw = c.encode(charset)
        if enc == "B":
            words.append(f"=?{charset}?B?{base64.b64encode(raw).decode()}?=")
        else:
            q = "".join(chr(b) if (chr(b).isalnum() and b < 128) else "_" if b == 32
                        else f"={b:02X}" for b in raw)
            words.append(f"=?{charset}?Q?{q}?=")
    return " ".join(words)


def fold(name: str, value: str, width: int = 76) -> str:
    """`Name: value` folded at spaces (LF + TAB); long tokens stay whole."""
    line, lines = f"{name}:", []
    for tok in value.split(" "):
        if len(line) + len(tok) + 1 > width and line.strip() and not line.endswith(":"):
            lines.append(line)
            line = "\t" + tok
        else:
            line += " " + tok
    lines.append(line)
    return "\n".join(lines)


def source_digest() -> str:
    with open(os.path.abspath(__file__), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def generate(out: str, count: int = 10_000, seed: int = 1, size_mb: float | None = None,
             quiet: bool = False) -> dict:
    target = int((size_mb * 1e6) if size_mb else count * BYTES_PER_MESSAGE)
    g = Gen(count, seed, target)
    rng = g.rng
    mail_root = os.path.join(out, "mail")
    maildir = os.path.join(mail_root, USER)
    if os.path.exists(out):
        shutil.rmtree(out)
    for d in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(maildir, d))
    with open(os.path.join(out, "users"), "w") as f:
        f.write(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")

    times = sorted(rng.randrange(EPOCH_END - YEAR, EPOCH_END) for _ in range(count))
    names, kinds, flags_count, search_uids, seen_names = [], {}, {}, [], set()
    total = 0
    t0 = time.time()
    for i, when in enumerate(times):
        uid = i + 1
        r = rng.random()
        where = None
        if r < 0.022:
            where = "body"
        elif r < 0.030:
            where = "subject"
        elif r < 0.033:
            where = "from"
        if where == "body" and g.plan[i][0] == "forward" and rng.random() < 0.5:
            where = "nested"
        raw, hit = g.message(i, when, word_where=where)
        if hit:
            search_uids.append(uid)
        elif SEARCH_WORD.encode() in raw.lower():
            raise AssertionError(f"UID {uid}: {SEARCH_WORD!r} where it was not put")
        assert b"\r" not in raw
        size, vsize = len(raw), len(raw) + raw.count(b"\n")
        while True:
            base = f"{when}.M{rng.randrange(1_000_000)}P{rng.randrange(1000, 65000)}.{HOST}"
            if base not in seen_names:
                seen_names.add(base)
                break
        age = (EPOCH_END - when) / YEAR  # older mail is likelier to be read
        fl = ""
        if rng.random() < 0.04:
            fl += "F"
        seen = rng.random() < 0.15 + 0.7 * age
        if seen and rng.random() < 0.12:
            fl += "R"
        if seen:
            fl += "S"
        base_sz = f"{base},S={size},W={vsize}"
        path = os.path.join(maildir, "cur", f"{base_sz}:2,{fl}")
        with open(path, "wb") as f:
            f.write(raw)
        os.utime(path, (when, when))
        names.append(base_sz)
        kinds[g.plan[i][0]] = kinds.get(g.plan[i][0], 0) + 1
        flags_count[fl or "-"] = flags_count.get(fl or "-", 0) + 1
        total += size
        g.bytes_done += size
        g.done += 1
        if not quiet and uid % 2000 == 0:
            print(f"gen_mailbox: {uid}/{count} ({total / 1e6:.0f} MB, {time.time() - t0:.0f} s)",
                  file=sys.stderr)

    with open(os.path.join(maildir, "dovecot-uidlist"), "w") as f:
        f.write(f"3 V{times[0] if times else EPOCH_END} N{count + 1} "
                f"G{hashlib.md5(f'{seed}'.encode()).hexdigest()}\n")
        for uid, name in enumerate(names, 1):
            f.write(f"{uid} :{name}\n")
    manifest = {
        "count": count, "seed": seed, "generator": source_digest(), "user": USER,
        "password": PASSWORD, "bytes": total,
        "imap_bytes": sum(int(n.rsplit("W=", 1)[1]) for n in names),
        "kinds": kinds, "flags": flags_count, "search_word": SEARCH_WORD,
        "search_uids": search_uids, "threads": len(g.threads),
        "longest_thread": max((len(t["ids"]) for t in g.threads), default=0),
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    if not quiet:
        print(f"gen_mailbox: {count} messages, {total / 1e6:.1f} MB in {maildir} "
              f"({time.time() - t0:.0f} s); kinds {kinds}; '{SEARCH_WORD}' in "
              f"{len(search_uids)} messages", file=sys.stderr)
    return manifest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--size-mb", type=float, default=None,
                    help="total size to steer to (default: 31.2 KB a message)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    generate(a.out, a.count, a.seed, a.size_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
