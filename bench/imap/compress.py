#!/usr/bin/env python3
"""The COMPRESS=DEFLATE benchmark (RFC 4978): bytes on the wire and server CPU for a full header
sync of the 10,000-message INBOX with and without COMPRESS, and the memory an idle compressed
session costs, against s3imap and Dovecot 2.3 (with its imap_zlib plugin) in the same run.

    .venv/bin/python bench/imap/compress.py [--count 10000] [--seed 1] [--rounds 3]
                                            [--sessions 300] [--only s3imap|dovecot]

Each server serves its own fresh copy of the benchmark's INBOX (bench/imap/run.py's corpus).
After a first session (which takes \\Recent and warms the caches), per round two
sessions in turn do LOGIN, SELECT INBOX and
`UID FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)` (what a client's header sync asks), one plain
and one after `COMPRESS DEFLATE` (the client deflating with a sync flush per command, as
Thunderbird does). Measured: the bytes the server sent for the FETCH as they cross the wire,
the wall time of the FETCH, and the server's CPU time (user + system, all its processes, from
/proc) over the FETCH. The decompressed answer is checked to be the plain one.

Memory: `--sessions` sessions log in, SELECT INBOX and IDLE without compression, then as many
again with COMPRESS DEFLATE; the server's RSS/PSS (all processes) after each step, and the
difference per session. Markdown in bench/out/compress.md, numbers in bench/out/compress.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import dovecot  # noqa: E402
import run  # noqa: E402

SYNC = b"UID FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)"
LITERAL = re.compile(rb"\{(\d+)\}\r\n$")
TICK = os.sysconf("SC_CLK_TCK")


class Session:
    """A blocking IMAP session that can switch on COMPRESS DEFLATE."""

    def __init__(self, port: int):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=300)
        self.rx = b""
        self.z_out = self.z_in = None
        self.wire = 0  # bytes received from the socket
        self.n = 0
        self.response()

    def send(self, b: bytes) -> None:
        if self.z_out:
            b = self.z_out.compress(b) + self.z_out.flush(zlib.Z_SYNC_FLUSH)
        self.s.sendall(b)

    def fill(self) -> None:
        data = self.s.recv(1 << 20)
        if not data:
            raise RuntimeError("connection closed")
        self.wire += len(data)
        self.rx += self.z_in.decompress(data) if self.z_in else data

    def response(self) -> bytes:
        out = b""
        while True:
            i = self.rx.find(b"\r\n")
            while i < 0:
                self.fill()
                i = self.rx.find(b"\r\n")
            line, self.rx = self.rx[:i + 2], self.rx[i + 2:]
            out += line
            m = LITERAL.search(line)
            if not m:
                return out
            n = int(m.group(1))
            while len(self.rx) < n:
                self.fill()
            out, self.rx = out + self.rx[:n], self.rx[n:]

    def command(self, text: bytes, until: bytes | None = None) -> list[bytes]:
        self.n += 1
        tag = b"t%d" % self.n
        self.send(tag + b" " + text + b"\r\n")
        lines = []
        while True:
            r = self.response()
            lines.append(r)
            if r.startswith(tag + b" ") or (until and r.startswith(until)):
                if r.startswith(tag + b" ") and b" OK" not in r[:len(tag) + 4]:
                    raise RuntimeError(f"{text[:40]!r}: {r[:200]!r}")
                return lines

    def compress(self) -> None:
        self.command(b"COMPRESS DEFLATE")
        self.z_out = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.z_in = zlib.decompressobj(-15)

    def close(self) -> None:
        try:
            self.s.close()
        except OSError:
            pass


def cpu(pids: list[int]) -> float:
    t = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            t += int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            continue
    return t / TICK


def sync_once(port, manifest, compressed, srv) -> dict:
    c = Session(port)
    c.command(b'LOGIN "%s" "%s"' % (manifest["user"].encode(), manifest["password"].encode()))
    if compressed:
        c.compress()
    c.command(b"SELECT INBOX")
    before_wire, pids = c.wire, srv.pids()
    cpu0, t0 = cpu(pids), time.perf_counter()
    lines = c.command(SYNC)
    took = time.perf_counter() - t0
    used = cpu(srv.pids()) - cpu0
    wire = c.wire - before_wire
    c.command(b"LOGOUT")
    c.close()
    # Dovecot's tagged text carries timings: compare the untagged answer.
    return {"bytes": wire, "s": took, "cpu_s": used, "answer": lines[:-1]}


def idle_sessions(port, manifest, n, compressed) -> list[Session]:
    out = []
    for _ in range(n):
        c = Session(port)
        c.command(b'LOGIN "%s" "%s"' % (manifest["user"].encode(), manifest["password"].encode()))
        if compressed:
            c.compress()
        c.command(b"SELECT INBOX")
        c.n += 1
        c.send(b"i%d IDLE\r\n" % c.n)
        while not c.response().startswith(b"+"):
            pass
        out.append(c)
    return out


def one(tool, src, manifest, rounds, sessions) -> dict:
    mail_root = run.fresh_copy(src, tool)
    srv, port = run.start_server(tool, mail_root, os.path.join(src, "users"), zlib=True)
    try:
        res = {"plain": [], "deflate": [], "problems": []}
        # A first session takes the messages' \\Recent (and warms the caches), so every
        # measured one sees the same flags.
        sync_once(port, manifest, False, srv)
        for _ in range(rounds):
            p = sync_once(port, manifest, False, srv)
            z = sync_once(port, manifest, True, srv)
            if p["answer"] != z["answer"] or len(p["answer"]) != manifest["count"]:
                res["problems"].append("the compressed answer differs from the plain one")
            for k, r in (("plain", p), ("deflate", z)):
                r.pop("answer")
                res[k].append(r)
        for k in ("plain", "deflate"):
            for m in ("bytes", "s", "cpu_s"):
                res[f"{k}_{m}"] = statistics.median(r[m] for r in res[k])
        time.sleep(1.5)
        base = run.memory(srv.pids())
        plain = idle_sessions(port, manifest, sessions, False)
        time.sleep(1.5)
        m_plain = run.memory(srv.pids())
        zs = idle_sessions(port, manifest, sessions, True)
        time.sleep(1.5)
        m_z = run.memory(srv.pids())
        for c in plain + zs:
            c.close()
        res["memory"] = {"base": base, "plain": m_plain, "deflate": m_z}
        for key in ("rss", "pss"):
            res[f"plain_{key}_per_session"] = (m_plain[key] - base[key]) / sessions
            res[f"deflate_{key}_per_session"] = (m_z[key] - m_plain[key]) / sessions
        run.log(f"{tool}: header sync {res['plain_bytes']} B plain, {res['deflate_bytes']} B "
                f"deflated ({res['plain_bytes'] / res['deflate_bytes']:.1f}x); CPU "
                f"{res['plain_cpu_s']:.2f} / {res['deflate_cpu_s']:.2f} s; idle session "
                f"PSS {res['plain_pss_per_session'] / 1024:.1f} / "
                f"{res['deflate_pss_per_session'] / 1024:.1f} KiB")
        return res
    finally:
        srv.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sessions", type=int, default=300)
    ap.add_argument("--only", choices=run.TOOLS, action="append")
    args = ap.parse_args(argv)
    os.makedirs(run.WORK, exist_ok=True)
    dovecot.raise_fd_limit()
    src, manifest = run.corpus(args.count, args.seed)
    tools = [t for t in run.TOOLS if not args.only or t in args.only]
    if "dovecot" in tools:
        dovecot.ensure_installed()
    results = {t: one(t, src, manifest, args.rounds, args.sessions) for t in tools}
    kib = 1024
    L = [f"## COMPRESS=DEFLATE: header sync of the {args.count:,}-message INBOX, and idle "
         "sessions", "",
         f"Machine: {run.machine_line()}. s3imap at `{run.git_rev()}`.", "",
         f"Reproduce: `.venv/bin/python bench/imap/compress.py --count {args.count} --rounds "
         f"{args.rounds} --sessions {args.sessions}` (as root; Dovecot with imap_zlib; what is "
         f"measured is in the script's docstring). `{SYNC.decode()}`, medians of "
         f"{args.rounds} rounds; server CPU is user + system of all its processes.", "",
         "| server | plain bytes | deflated bytes | fewer bytes | plain s | deflated s | "
         "plain CPU s | deflated CPU s | PSS per idle session, plain | … compressed |",
         "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for t, r in results.items():
        L.append(f"| {t} | {r['plain_bytes']:,} | {r['deflate_bytes']:,} | "
                 f"{r['plain_bytes'] / r['deflate_bytes']:.1f}× | {r['plain_s']:.3f} | "
                 f"{r['deflate_s']:.3f} | {r['plain_cpu_s']:.2f} | {r['deflate_cpu_s']:.2f} | "
                 f"{r['plain_pss_per_session'] / kib:.1f} KiB | "
                 f"{r['deflate_pss_per_session'] / kib:.1f} KiB |")
    if "s3imap" in results:
        r = results["s3imap"]
        L += ["", f"s3imap: COMPRESS sends **{r['plain_bytes'] / r['deflate_bytes']:.1f}×** "
              "fewer bytes for the header sync (target ≥ 4×); "
              f"{'answers identical' if not r['problems'] else '; '.join(r['problems'])}."]
    md = "\n".join(L) + "\n"
    with open(os.path.join(run.OUT, "compress.md"), "w") as f:
        f.write(md)
    with open(os.path.join(run.OUT, "compress.json"), "w") as f:
        json.dump({"args": vars(args), "results": results}, f, indent=1)
    print(md)
    return 1 if any(r["problems"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
