#!/usr/bin/env python3
"""The login benchmark: login throughput for a PLAIN and an ARGON2ID password (Dovecot's
settings: 64 MiB, 3 passes) and for an app password (a PASETO token of the ARGON2ID user), and the server's peak memory while 50 connections guess ARGON2ID
passwords at once, with the password checks bounded (`--auth-workers`, the default from
memory) and, for comparison, unbounded (`--auth-workers 50`).

    .venv/bin/python bench/auth/run.py [--seconds 10] [--guessers 50]

Logins come from 127.0.0.1 (successes: one connection after another, LOGIN then LOGOUT) and
from other loopback addresses (the guessers: each its own address, so the per-address block
of `--login-block-after` does not stop them early; `--login-failure-delay 0s` so the check is
what is measured). RSS of the server process sampled every 50 ms; peak above its idle RSS.
Markdown in bench/out/auth.md, numbers in bench/out/auth.json.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench", "imap"))

import run  # noqa: E402  (bench/imap/run.py: S3IMAP, free_port, machine_line, git_rev, OUT)

PASSWORD = "correct horse battery"


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def add_user(users: str, name: str, scheme: str) -> None:
    subprocess.run([run.S3IMAP, "user", "add", "--users", users, "--scheme", scheme, name],
                   input=PASSWORD + "\n", text=True, check=True, capture_output=True)


def start(root: str, users: str, extra: list[str]):
    port = run.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3IMAP_"))}
    p = subprocess.Popen([run.S3IMAP, "serve", "--listen", f"127.0.0.1:{port}", "--users", users,
                          "--mail-root", root, "--login-failure-delay", "0s",
                          "--login-block-after", "0", "--max-unauthenticated-per-address", "1000",
                          *extra],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p, port
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise RuntimeError("s3imap serve did not start")


def login(port: int, user: str, password: str, src: str = "127.0.0.1") -> bool:
    c = socket.socket()
    c.bind((src, 0))
    c.connect(("127.0.0.1", port))
    f = c.makefile("rb")
    f.readline()
    c.sendall(b'a LOGIN "%s" "%s"\r\nb LOGOUT\r\n' % (user.encode(), password.encode()))
    ok = False
    for line in f:
        if line.startswith(b"a "):
            ok = line.startswith(b"a OK")
        if line.startswith(b"b "):
            break
    c.close()
    return ok


def issue_token(root: str, users: str, user: str) -> str:
    out = subprocess.run([run.S3IMAP, "token", "issue", user, "--name", "bench", "--users", users,
                          "--mail-root", root], text=True, check=True, capture_output=True)
    return out.stdout.strip()


def throughput(port: int, user: str, seconds: float, password: str = PASSWORD) -> float:
    n, t0 = 0, time.time()
    while time.time() - t0 < seconds:
        if not login(port, user, password):
            raise RuntimeError(f"{user} could not log in")
        n += 1
    return n / (time.time() - t0)


def guess_peak(root, users, extra, guessers, seconds) -> dict:
    p, port = start(root, users, extra)
    try:
        time.sleep(0.5)
        idle = rss(p.pid)
        stop = time.time() + seconds
        counts = [0] * guessers

        def guess(i):
            src = f"127.0.{1 + i // 200}.{2 + i % 200}"
            while time.time() < stop:
                login(port, "argon@bench.example", f"wrong-{i}-{counts[i]}", src)
                counts[i] += 1

        ts = [threading.Thread(target=guess, args=(i,)) for i in range(guessers)]
        for t in ts:
            t.start()
        peak = idle
        while any(t.is_alive() for t in ts):
            peak = max(peak, rss(p.pid))
            time.sleep(0.05)
        return {"idle": idle, "peak": peak, "above_idle": peak - idle,
                "guesses_per_s": sum(counts) / seconds}
    finally:
        p.terminate()
        p.wait()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--guessers", type=int, default=50)
    args = ap.parse_args(argv)
    os.makedirs(run.OUT, exist_ok=True)
    work = tempfile.mkdtemp(prefix="s3imap-auth-bench-")
    root, users = os.path.join(work, "mail"), os.path.join(work, "users")
    os.makedirs(root)
    # `s3imap user add` refuses PLAIN (rightly); the line as Dovecot's passwd-file has it.
    with open(users, "a") as f:
        f.write(f"plain@bench.example:{{PLAIN}}{PASSWORD}\n")
    add_user(users, "argon@bench.example", "ARGON2ID")
    token = issue_token(root, users, "argon@bench.example")
    p, port = start(root, users, [])
    try:
        plain = throughput(port, "plain@bench.example", args.seconds)
        argon = throughput(port, "argon@bench.example", args.seconds)
        tok = throughput(port, "argon@bench.example", args.seconds, token)
    finally:
        p.terminate()
        p.wait()
    run.log(f"logins/s: PLAIN {plain:.0f}, ARGON2ID {argon:.1f}, token {tok:.0f}")
    bounded = guess_peak(root, users, [], args.guessers, args.seconds)
    unbounded = guess_peak(root, users, ["--auth-workers", str(args.guessers)], args.guessers,
                           args.seconds)
    mib = 1 << 20
    for name, r in (("bounded", bounded), ("unbounded", unbounded)):
        run.log(f"{name}: RSS idle {r['idle'] / mib:.1f} MiB, peak {r['peak'] / mib:.1f} MiB "
                f"(+{r['above_idle'] / mib:.1f}); {r['guesses_per_s']:.1f} guesses/s")
    L = ["## Logins: PLAIN, ARGON2ID and an app password, and 50 connections guessing ARGON2ID "
         "passwords", "",
         f"Machine: {run.machine_line()}. s3imap at `{run.git_rev()}`.", "",
         f"Reproduce: `.venv/bin/python bench/auth/run.py --seconds {args.seconds:.0f} "
         f"--guessers {args.guessers}` (what is measured is in the script's docstring). "
         "ARGON2ID at Dovecot's settings (64 MiB, 3 passes).", "",
         "| | logins/s |", "| --- | ---: |",
         f"| PLAIN | {plain:.0f} |", f"| ARGON2ID | {argon:.1f} |",
         f"| app password (token) of the ARGON2ID user | {tok:.0f} |", "",
         "A token login reads the token directory (keys, list) and decrypts the token: no "
         "password hash runs, so an account with a memory-hard password logs in as fast as a "
         "PLAIN one.", "",
         f"| {args.guessers} guessing connections | RSS idle | peak RSS | above idle | wrong "
         "guesses/s |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, r in (("checks bounded (default `--auth-workers`)", bounded),
                    (f"unbounded (`--auth-workers {args.guessers}`)", unbounded)):
        L.append(f"| {name} | {r['idle'] / mib:.1f} MiB | {r['peak'] / mib:.1f} MiB | "
                 f"{r['above_idle'] / mib:.1f} MiB | {r['guesses_per_s']:.1f} |")
    L += ["", f"Bounded: **{bounded['above_idle'] / mib:.1f} MiB** above idle (target ≤ 64 MiB): "
          "one ARGON2ID check at a time holds its 64 MiB; the rest is the 50 connections' own "
          "buffers. Unbounded, every guessing connection holds 64 MiB at once."]
    md = "\n".join(L) + "\n"
    with open(os.path.join(run.OUT, "auth.md"), "w") as f:
        f.write(md)
    with open(os.path.join(run.OUT, "auth.json"), "w") as f:
        json.dump({"args": vars(args), "plain_per_s": plain, "argon_per_s": argon, "token_per_s": tok,
                   "bounded": bounded, "unbounded": unbounded}, f, indent=1)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
