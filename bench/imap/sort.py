#!/usr/bin/env python3
"""The SORT/THREAD benchmark (RFC 5256): `SORT (DATE)` and `THREAD REFERENCES` of the whole
10,000-message INBOX, against s3imap and Dovecot 2.3 in the same run.

    .venv/bin/python bench/imap/sort.py [--count 10000] [--seed 1] [--rounds 3]
                                        [--only s3imap|dovecot]

Each server serves its own fresh copy of the benchmark's INBOX (bench/imap/run.py's corpus),
started after the page cache was dropped (as root). One session SELECTs INBOX and sends, in
turn: `SORT (DATE) UTF-8 ALL` (the first is cold: nothing read yet), then `rounds` more (warm),
then `THREAD REFERENCES UTF-8 ALL` `rounds` times. Times are from sending the command to its
tagged answer; warm numbers are medians. Both servers' answers are compared (they must be the
same permutation and the same thread tree). Markdown in bench/out/sort.md, numbers in
bench/out/sort.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import client  # noqa: E402
import dovecot  # noqa: E402
import run  # noqa: E402

SORT = "SORT (DATE) UTF-8 ALL"
THREAD = "THREAD REFERENCES UTF-8 ALL"


def answer(reply, name: bytes) -> bytes:
    for r in reply.untagged:
        if r.startswith(b"* " + name):
            return r
    return b""


def one(tool, src, manifest, rounds) -> dict:
    mail_root = run.fresh_copy(src, tool)
    dropped = run.drop_caches()
    srv, port = run.start_server(tool, mail_root, os.path.join(src, "users"))
    try:
        c = client.Client(port)
        c.login(manifest["user"], manifest["password"])
        c.ok("SELECT INBOX")
        cold = c.ok(SORT)
        warm = [c.ok(SORT) for _ in range(rounds)]
        threads = [c.ok(THREAD) for _ in range(rounds)]
        c.logout()
        res = {
            "page_cache": "dropped" if dropped is None else f"not dropped ({dropped})",
            "sort_cold_s": cold.seconds,
            "sort_warm_s": statistics.median(r.seconds for r in warm),
            "thread_first_s": threads[0].seconds,
            "thread_s": statistics.median(r.seconds for r in threads),
            "sort": answer(cold, b"SORT").decode(),
            "thread": answer(threads[0], b"THREAD").decode(),
            "sorted": len(answer(cold, b"SORT").split()) - 2,
        }
        run.log(f"{tool}: SORT cold {res['sort_cold_s']:.3f} s, warm {res['sort_warm_s']:.4f} s; "
                f"THREAD first {res['thread_first_s']:.3f} s, then {res['thread_s']:.4f} s; "
                f"{res['sorted']} sorted")
        return res
    finally:
        srv.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", choices=run.TOOLS, action="append")
    args = ap.parse_args(argv)
    os.makedirs(run.WORK, exist_ok=True)
    dovecot.raise_fd_limit()
    src, manifest = run.corpus(args.count, args.seed)
    tools = [t for t in run.TOOLS if not args.only or t in args.only]
    if "dovecot" in tools:
        dovecot.ensure_installed()
    results = {t: one(t, src, manifest, args.rounds) for t in tools}
    problems = []
    if len(results) == 2:
        s, d = results["s3imap"], results["dovecot"]
        if s["sort"] != d["sort"]:
            problems.append("the SORT answers differ")
        if s["thread"] != d["thread"]:
            problems.append("the THREAD answers differ")
    L = [f"## SORT and THREAD on the {args.count:,}-message INBOX", "",
         f"Machine: {run.machine_line()}. s3imap at `{run.git_rev()}`.", "",
         f"Reproduce: `.venv/bin/python bench/imap/sort.py --count {args.count} --rounds "
         f"{args.rounds}` (as root: the page cache is dropped before each server starts; what "
         "is measured is in the script's docstring).", "",
         "| server | SORT (DATE) cold s | SORT warm s | THREAD REFERENCES first s | THREAD again s |",
         "| --- | ---: | ---: | ---: | ---: |"]
    for t, r in results.items():
        L.append(f"| {t} | {r['sort_cold_s']:.3f} | {r['sort_warm_s']:.4f} | "
                 f"{r['thread_first_s']:.3f} | {r['thread_s']:.4f} |")
    if len(results) == 2:
        s, d = results["s3imap"], results["dovecot"]
        L += ["", "s3imap / Dovecot: SORT cold **{:.2f}**, warm **{:.2f}**; THREAD first **{:.2f}**, "
              "again **{:.2f}** (target ≤ 0.5). Answers: {}.".format(
                  s["sort_cold_s"] / d["sort_cold_s"], s["sort_warm_s"] / d["sort_warm_s"],
                  s["thread_first_s"] / d["thread_first_s"], s["thread_s"] / d["thread_s"],
                  "; ".join(problems) if problems else "the same sorted list and thread tree")]
    md = "\n".join(L) + "\n"
    with open(os.path.join(run.OUT, "sort.md"), "w") as f:
        f.write(md)
    with open(os.path.join(run.OUT, "sort.json"), "w") as f:
        json.dump({"args": vars(args), "results": results}, f, indent=1)
    print(md)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
