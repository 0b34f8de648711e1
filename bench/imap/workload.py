#!/usr/bin/env python3
"""The concurrency benchmark: N sessions on one mailbox mixing STORE, FETCH, APPEND, EXPUNGE
and MOVE for a fixed time, against s3imap and Dovecot 2.3 in the same run, then a consistency
check of the mailbox against a model of what the sessions did.

    .venv/bin/python bench/imap/workload.py [--sessions 50] [--seconds 60] [--count 10000]
                                            [--seed 1] [--only s3imap|dovecot]

Each server serves its own fresh copy of the benchmark's INBOX (bench/imap/run.py's corpus).
Every session logs in, SELECTs INBOX and then, until the time is up, picks at random:
FETCH (FLAGS + a header field of a random message) 30%, STORE FLAGS on one of its own
messages 30%, APPEND a new message of its own 15% (its UID from APPENDUID), EXPUNGE one of
its own (UID STORE +FLAGS \\Deleted, UID EXPUNGE) 10%, MOVE one of its own to Archive 10%,
NOOP 5%. Sessions own disjoint messages, so a model knows what each must look like.

Afterwards a fresh session checks: every message a session appended and did not expunge or
move is in INBOX exactly once, with the flags that session last stored (a lost update is one
that is not); every moved one is in Archive; no UID was handed out twice (APPENDUID and
COPYUID); UIDs ascend. Result: commands per second (all sessions, all commands) and the
check, per server; Markdown in bench/out/workload.md, numbers in bench/out/workload.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import client  # noqa: E402
import dovecot  # noqa: E402
import run  # noqa: E402

FLAGS = ["\\Seen", "\\Flagged", "\\Answered", "\\Draft", "$Work"]


def message(sess: int, n: int) -> bytes:
    return (f"From: s{sess}@bench.example\r\nSubject: s{sess} m{n}\r\n"
            f"Message-ID: <s{sess}-m{n}@bench>\r\n\r\n").encode() + b"line\r\n" * random.randint(1, 40)


class Worker(threading.Thread):
    def __init__(self, i, port, manifest, until, count):
        super().__init__(daemon=True)
        self.i, self.port, self.manifest, self.until, self.count = i, port, manifest, until, count
        self.rnd = random.Random(i)
        self.own = {}  # uid -> (mid, flags)
        self.expunged, self.moved = set(), {}  # mids
        self.appenduids, self.copyuids = [], []
        self.commands, self.errors = 0, []

    def cmd(self, c, text):
        self.commands += 1
        r = c.command(text)
        if r.status != b"OK":
            raise client.ImapError(f"{text[:60]}: {r.tagged[:200]!r}")
        return r

    def append(self, c, n):
        body = message(self.i, n)
        self.commands += 1
        c.n += 1
        tag = b"t%d" % c.n
        c.sock.sendall(tag + b" APPEND INBOX {%d+}\r\n" % len(body) + body + b"\r\n")
        while True:
            r = c._response()
            if r.startswith(tag + b" "):
                m = re.search(rb"APPENDUID \d+ (\d+)", r)
                if not r[len(tag) + 1:].startswith(b"OK") or not m:
                    raise client.ImapError(f"APPEND: {r[:200]!r}")
                uid = int(m.group(1))
                self.appenduids.append(uid)
                self.own[uid] = (f"s{self.i}-m{n}", set())
                return

    def run(self):
        try:
            c = client.Client(self.port, timeout=120)
            c.login(self.manifest["user"], self.manifest["password"])
            self.cmd(c, "SELECT INBOX")
            n = 0
            while time.monotonic() < self.until:
                op = self.rnd.choices(["fetch", "store", "append", "expunge", "move", "noop"],
                                      [30, 30, 15, 10, 10, 5])[0]
                if op in ("store", "expunge", "move") and not self.own:
                    op = "append"
                if op == "fetch":
                    uid = self.rnd.choice(list(self.own)) if self.own and self.rnd.random() < 0.5 \
                        else self.rnd.randint(1, self.count)
                    self.cmd(c, f"UID FETCH {uid} (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                elif op == "store":
                    uid = self.rnd.choice(list(self.own))
                    flags = set(self.rnd.sample(FLAGS, self.rnd.randint(0, 3)))
                    self.cmd(c, f"UID STORE {uid} FLAGS ({' '.join(sorted(flags))})")
                    self.own[uid] = (self.own[uid][0], flags)
                elif op == "append":
                    self.append(c, n)
                    n += 1
                elif op == "expunge":
                    uid = self.rnd.choice(list(self.own))
                    self.cmd(c, f"UID STORE {uid} +FLAGS.SILENT (\\Deleted)")
                    self.cmd(c, f"UID EXPUNGE {uid}")
                    self.expunged.add(self.own.pop(uid)[0])
                elif op == "move":
                    uid = self.rnd.choice(list(self.own))
                    r = self.cmd(c, f"UID MOVE {uid} Archive")
                    for line in r.untagged + [r.tagged]:
                        m = re.search(rb"COPYUID \d+ \S+ (\d+)", line)
                        if m:
                            self.copyuids.append(int(m.group(1)))
                    mid, flags = self.own.pop(uid)
                    self.moved[mid] = flags
                else:
                    self.cmd(c, "NOOP")
            c.logout()
        except Exception as e:  # noqa: BLE001 - reported, counted as a failure of the server
            self.errors.append(f"session {self.i}: {e!r}")


def check(port, manifest, workers) -> list[str]:
    problems = []
    c = client.Client(port, timeout=300)
    c.login(manifest["user"], manifest["password"])
    c.ok("SELECT INBOX")
    r = c.ok("UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    found, uids = {}, []
    for line in r.untagged:
        m = re.search(rb"UID (\d+)", line)
        if not m:
            continue
        uids.append(int(m.group(1)))
        mid = re.search(rb"<(s\d+-m\d+)@bench>", line)
        if mid:
            fl = re.search(rb"FLAGS \(([^)]*)\)", line).group(1).decode().split()
            key = mid.group(1).decode()
            if key in found:
                problems.append(f"{key} twice in INBOX")
            found[key] = set(fl) - {"\\Recent"}
    if uids != sorted(uids) or len(set(uids)) != len(uids):
        problems.append("INBOX UIDs not unique and ascending")
    want = {mid: flags for w in workers for mid, flags in w.own.values()}
    lost = [m for m in want if m not in found]
    extra = [m for m in found if m not in want]
    wrong = [m for m in want if m in found and found[m] != want[m]]
    if lost:
        problems.append(f"{len(lost)} messages lost, e.g. {lost[:3]}")
    if extra:
        problems.append(f"{len(extra)} expunged or moved messages still in INBOX, e.g. {extra[:3]}")
    if wrong:
        problems.append(f"{len(wrong)} lost flag updates, e.g. {wrong[0]}: {found[wrong[0]]} "
                        f"instead of {want[wrong[0]]}")
    c.ok("SELECT Archive")
    r = c.ok("UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    archived = set(re.findall(rb"<(s\d+-m\d+)@bench>", b"\n".join(r.untagged)))
    moved = {m for w in workers for m in w.moved}
    missing = moved - {a.decode() for a in archived}
    if missing:
        problems.append(f"{len(missing)} moved messages missing from Archive")
    all_uids = [u for w in workers for u in w.appenduids]
    if len(all_uids) != len(set(all_uids)):
        problems.append(f"{len(all_uids) - len(set(all_uids))} INBOX UIDs handed out twice")
    arch = [u for w in workers for u in w.copyuids]
    if len(arch) != len(set(arch)):
        problems.append(f"{len(arch) - len(set(arch))} Archive UIDs handed out twice")
    c.logout()
    return problems


def one(tool, src, manifest, sessions, seconds) -> dict:
    mail_root = run.fresh_copy(src, tool)
    srv, port = run.start_server(tool, mail_root, os.path.join(src, "users"))
    try:
        c = client.Client(port)
        c.login(manifest["user"], manifest["password"])
        c.command("CREATE Archive")  # s3imap has it already; Dovecot's bench config does not
        c.logout()
        until = time.monotonic() + seconds
        workers = [Worker(i, port, manifest, until, manifest["count"]) for i in range(sessions)]
        t0 = time.monotonic()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        took = time.monotonic() - t0
        errors = [e for w in workers for e in w.errors]
        problems = errors + check(port, manifest, workers)
        total = sum(w.commands for w in workers)
        res = {"commands": total, "seconds": took, "per_second": total / took,
               "appended": sum(len(w.appenduids) for w in workers),
               "expunged": sum(len(w.expunged) for w in workers),
               "moved": sum(len(w.moved) for w in workers), "problems": problems}
        run.log(f"{tool}: {total} commands in {took:.1f} s = {total / took:.0f}/s; "
                f"{res['appended']} appended, {res['expunged']} expunged, {res['moved']} moved; "
                f"check: {'; '.join(problems) if problems else 'consistent'}")
        return res
    finally:
        srv.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", choices=run.TOOLS, action="append")
    args = ap.parse_args(argv)
    os.makedirs(run.WORK, exist_ok=True)
    dovecot.raise_fd_limit()
    src, manifest = run.corpus(args.count, args.seed)
    tools = [t for t in run.TOOLS if not args.only or t in args.only]
    if "dovecot" in tools:
        dovecot.ensure_installed()
    results = {t: one(t, src, manifest, args.sessions, args.seconds) for t in tools}
    L = [f"## Concurrency: {args.sessions} sessions on one {args.count:,}-message INBOX for "
         f"{args.seconds:.0f} s", "",
         f"Machine: {run.machine_line()}. s3imap at `{run.git_rev()}`.", "",
         f"Reproduce: `.venv/bin/python bench/imap/workload.py --sessions {args.sessions} "
         f"--seconds {args.seconds:.0f} --count {args.count}` (as root; what each session does "
         "is in the script's docstring).", "",
         "| server | commands | commands/s | appended | expunged | moved | consistency check |",
         "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for t, r in results.items():
        L.append(f"| {t} | {r['commands']} | {r['per_second']:.0f} | {r['appended']} | "
                 f"{r['expunged']} | {r['moved']} | "
                 f"{'; '.join(r['problems']) if r['problems'] else '0 lost updates, 0 UIDs reused'} |")
    if len(results) == 2:
        a, b = results["s3imap"]["per_second"], results["dovecot"]["per_second"]
        L += ["", f"s3imap / Dovecot commands per second: **{a / b:.2f}×** (target ≥ 1.5×)."]
    md = "\n".join(L) + "\n"
    with open(os.path.join(run.OUT, "workload.md"), "w") as f:
        f.write(md)
    with open(os.path.join(run.OUT, "workload.json"), "w") as f:
        json.dump({"args": vars(args), "results": results}, f, indent=1)
    print(md)
    return 1 if any(r["problems"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
