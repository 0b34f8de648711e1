#!/usr/bin/env python3
"""The reconnect benchmark: a phone that had the 10,000-message INBOX in sync comes back after
another device changed the flags of 10 messages and expunged 5, and resyncs, against s3imap and
Dovecot 2.3 in the same run.

    .venv/bin/python bench/imap/resync.py [--count 10000] [--seed 1] [--rounds 5]
                                          [--only s3imap|dovecot]

Each server serves its own fresh copy of the benchmark's INBOX (bench/imap/run.py's corpus).
The phone's first session (ENABLE QRESYNC, SELECT, a full UID FETCH 1:* (FLAGS)) keeps
UIDVALIDITY and HIGHESTMODSEQ; another session then stores flags on 10 random messages and
expunges 5 others. Then each round reconnects twice, in turn:

(a) the full way, without QRESYNC: LOGIN, SELECT INBOX, UID FETCH 1:* (FLAGS);
(b) QRESYNC: LOGIN, ENABLE QRESYNC, SELECT INBOX (QRESYNC (uidvalidity modseq 1:maxuid)).

Measured per way: the bytes the server sent for the SELECT and the FETCH (the login's are the
same in both), and the time from sending SELECT to the last tagged answer. (b) is checked: its
VANISHED (EARLIER) names exactly the 5 expunged UIDs and its FETCH responses exactly the 10
changed ones. Medians over the rounds; Markdown in bench/out/resync.md, numbers in
bench/out/resync.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import client  # noqa: E402
import dovecot  # noqa: E402
import run  # noqa: E402

CODE = re.compile(rb"\[(HIGHESTMODSEQ|UIDVALIDITY|UIDNEXT) (\d+)\]")


def codes(reply) -> dict:
    out = {}
    for r in reply.untagged + [reply.tagged]:
        for m in CODE.finditer(r):
            out[m.group(1).decode()] = int(m.group(2))
    return out


def uid_set(s: bytes) -> set[int]:
    out = set()
    for part in s.split(b","):
        lo, _, hi = part.partition(b":")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def connect(port, manifest) -> client.Client:
    c = client.Client(port)
    c.login(manifest["user"], manifest["password"])
    return c


def one(tool, src, manifest, rounds, rng) -> dict:
    mail_root = run.fresh_copy(src, tool)
    srv, port = run.start_server(tool, mail_root, os.path.join(src, "users"))
    try:
        phone = connect(port, manifest)
        phone.ok("ENABLE QRESYNC")
        sel = phone.ok("SELECT INBOX")
        known = codes(sel)
        full = phone.ok("UID FETCH 1:* (FLAGS)")
        uids = sorted(full.fetch_uids())
        phone.logout()
        picked = rng.sample(uids, 15)
        changed, expunged = sorted(picked[:10]), sorted(picked[10:])
        other = connect(port, manifest)
        other.ok("SELECT INBOX")
        for u in changed:
            other.ok(f"UID STORE {u} FLAGS ($Bench \\Answered)")
        other.ok(f"UID STORE {','.join(map(str, expunged))} +FLAGS.SILENT (\\Deleted)")
        other.ok(f"UID EXPUNGE {','.join(map(str, expunged))}")
        other.logout()

        res = {"full_bytes": [], "full_s": [], "qresync_bytes": [], "qresync_s": [],
               "problems": []}
        for _ in range(rounds):
            c = connect(port, manifest)
            s = c.ok("SELECT INBOX")
            f = c.ok("UID FETCH 1:* (FLAGS)")
            res["full_bytes"].append(s.nbytes + f.nbytes)
            res["full_s"].append(s.seconds + f.seconds)
            if len(f.fetch_uids()) != len(uids) - len(expunged):
                res["problems"].append(f"full FETCH gave {len(f.fetch_uids())} messages")
            c.logout()

            c = connect(port, manifest)
            c.ok("ENABLE QRESYNC")
            q = c.ok(f"SELECT INBOX (QRESYNC ({known['UIDVALIDITY']} {known['HIGHESTMODSEQ']} "
                     f"1:{max(uids)}))")
            res["qresync_bytes"].append(q.nbytes)
            res["qresync_s"].append(q.seconds)
            gone = set()
            for r in q.untagged:
                if r.startswith(b"* VANISHED (EARLIER) "):
                    gone |= uid_set(r[len(b"* VANISHED (EARLIER) "):])
            got = sorted(q.fetch_uids())
            if gone != set(expunged) or got != changed:
                res["problems"].append(f"QRESYNC told vanished {sorted(gone)} (want {expunged}), "
                                       f"changed {got} (want {changed})")
            c.logout()
        for k in ("full_bytes", "full_s", "qresync_bytes", "qresync_s"):
            res[k + "_median"] = statistics.median(res[k])
        run.log(f"{tool}: full {res['full_bytes_median']} B in {res['full_s_median']:.3f} s; "
                f"QRESYNC {res['qresync_bytes_median']} B in {res['qresync_s_median']:.4f} s; "
                f"{'; '.join(res['problems']) if res['problems'] else 'answers right'}")
        return res
    finally:
        srv.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", choices=run.TOOLS, action="append")
    args = ap.parse_args(argv)
    os.makedirs(run.WORK, exist_ok=True)
    dovecot.raise_fd_limit()
    src, manifest = run.corpus(args.count, args.seed)
    tools = [t for t in run.TOOLS if not args.only or t in args.only]
    if "dovecot" in tools:
        dovecot.ensure_installed()
    # The same 10 changed and 5 expunged UIDs on both servers.
    results = {t: one(t, src, manifest, args.rounds, random.Random(args.seed)) for t in tools}
    L = [f"## Reconnect resync: {args.count:,}-message INBOX after 10 flag changes and 5 "
         "expunges by another session", "",
         f"Machine: {run.machine_line()}. s3imap at `{run.git_rev()}`.", "",
         f"Reproduce: `.venv/bin/python bench/imap/resync.py --count {args.count} --rounds "
         f"{args.rounds}` (as root; what is measured is in the script's docstring). Medians "
         f"of {args.rounds} rounds; bytes are what the server sent for SELECT and FETCH.", "",
         "| server | (a) full sync bytes | (a) s | (b) QRESYNC bytes | (b) s | (b)/(a) bytes | "
         "answers |",
         "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for t, r in results.items():
        L.append(f"| {t} | {r['full_bytes_median']:,} | {r['full_s_median']:.3f} | "
                 f"{r['qresync_bytes_median']:,} | {r['qresync_s_median']:.4f} | "
                 f"{r['qresync_bytes_median'] / r['full_bytes_median']:.4f} | "
                 f"{'; '.join(r['problems']) if r['problems'] else 'exact (5 vanished, 10 changed)'} |")
    if len(results) == 2:
        s, d = results["s3imap"], results["dovecot"]
        share = s["qresync_bytes_median"] / s["full_bytes_median"]
        L += ["",
              f"s3imap: QRESYNC sends **{share:.2%}** of the full sync's bytes (target ≤ 1%); "
              f"its QRESYNC time is **{s['qresync_s_median'] / d['qresync_s_median']:.2f}×** "
              "Dovecot's (target ≤ 1)."]
    md = "\n".join(L) + "\n"
    with open(os.path.join(run.OUT, "resync.md"), "w") as f:
        f.write(md)
    with open(os.path.join(run.OUT, "resync.json"), "w") as f:
        json.dump({"args": vars(args), "results": results}, f, indent=1)
    print(md)
    return 1 if any(r["problems"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
