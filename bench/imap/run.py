#!/usr/bin/env python3
"""The IMAP benchmark: `s3imap serve` side by side with Dovecot 2.3 (Debian's dovecot-imapd).

    python3 bench/imap/run.py [--count 10000] [--rounds 3] [--only dovecot|s3imap]
                              [--seed 1] [--conns 0,100,1000] [--timeout 180] [--build]

Generates the INBOX once (cached in bench/out/imap-corpus-nN-sS), then for each server:
memory of N authenticated idle connections (a fresh copy of the Maildir, N = 0/100/1000),
then --rounds rounds of: a fresh copy, start, drop the page cache, `UID FETCH 1:* (UID FLAGS
RFC822.SIZE ENVELOPE BODYSTRUCTURE)` cold, the same warm on a new connection, `UID SEARCH
TEXT "reconciliation"` on a third; stop. Rounds alternate the servers (order rotated).
Writes bench/out/imap.md (Markdown, also printed) and bench/out/imap.json; working files,
logs and the FETCH answers in bench/out/imap/. See bench/imap/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import client  # noqa: E402
import dovecot  # noqa: E402
import gen_mailbox  # noqa: E402

OUT = os.path.join(ROOT, "bench", "out")
WORK = os.path.join(OUT, "imap")
S3IMAP = os.path.join(ROOT, "target", "release", "s3imap")
FETCH = "UID FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)"
MiB = 1024 * 1024
TOOLS = ("dovecot", "s3imap")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Stop(Exception):
    pass


def _on_signal(signum, _frame):
    raise Stop(f"signal {signum}")


# --- the corpus -----------------------------------------------------------------------------
def corpus(count: int, seed: int) -> tuple[str, dict]:
    out = os.path.join(OUT, f"imap-corpus-n{count}-s{seed}")
    mf = os.path.join(out, "manifest.json")
    try:
        with open(mf) as f:
            manifest = json.load(f)
        if manifest.get("generator") == gen_mailbox.source_digest():
            return out, manifest
    except (OSError, ValueError):
        pass
    log(f"generating {count} messages (seed {seed}) into {out}")
    manifest = gen_mailbox.generate(out, count, seed)
    return out, manifest


def fresh_copy(src: str, tool: str) -> str:
    """A new copy of the corpus's mail root for `tool`; returns the mail root."""
    dst = os.path.join(WORK, f"mail-{tool}")
    if os.path.exists(dst):
        shutil.rmtree(dst)
    subprocess.run(["cp", "-a", os.path.join(src, "mail"), dst], check=True)
    return dst


def drop_caches() -> str | None:
    """Drops the page cache; returns None, or why it could not."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return None
    except OSError as e:
        return f"{type(e).__name__}: {e.strerror or e}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- servers ---------------------------------------------------------------------------------
def s3imap_available() -> tuple[bool, str]:
    if not os.access(S3IMAP, os.X_OK):
        return False, f"{os.path.relpath(S3IMAP, ROOT)} not built"
    try:
        r = subprocess.run([S3IMAP, "serve", "--help"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as e:
        return False, str(e)
    if r.returncode != 0 or "--listen" not in r.stdout + r.stderr:
        return False, "`s3imap serve` does not exist yet in target/release/s3imap"
    return True, ""


class S3imap:
    max_connections = 4000

    def __init__(self, mail_root: str, users: str, port: int, logfile: str):
        self.args = [S3IMAP, "serve", "--listen", f"127.0.0.1:{port}", "--users", users,
                     "--mail-root", mail_root]
        self.port, self.logfile, self.proc = port, logfile, None

    def start(self, timeout: float = 30):
        # no S3 settings (no sync), no S3IMAP_* settings but the log level; the connection
        # limit raised above the test's (as Dovecot's are)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "S3IMAP_")) or k == "S3IMAP_LOG"}
        env["S3IMAP_MAX_CONNECTIONS"] = str(self.max_connections)
        # one user's 1000 sessions: the per-user limit (default 30) raised as Dovecot's
        # mail_max_userip_connections is
        env["S3IMAP_MAX_USER_CONNECTIONS"] = str(self.max_connections)
        # every session comes from 127.0.0.1: the per-address limits raised too (as Dovecot's
        # mail_max_userip_connections is)
        env["S3IMAP_MAX_CONNECTIONS_PER_ADDRESS"] = str(self.max_connections)
        env["S3IMAP_MAX_UNAUTHENTICATED_PER_ADDRESS"] = str(self.max_connections)
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=open(self.logfile, "ab"), stderr=subprocess.STDOUT,
                                     env=env, preexec_fn=dovecot.child_setup,
                                     start_new_session=True)
        try:
            dovecot.wait_greeting(self.port, timeout, self.proc)
        except Exception:
            self.stop()
            raise RuntimeError(f"s3imap serve did not start; {self.logfile}: {self.log_tail()}")
        return self

    def pids(self):
        return dovecot.descendants(self.proc.pid) if self.proc and self.proc.poll() is None else []

    def log_tail(self, n=15):
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout: float = 30):
        p, self.proc = self.proc, None
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def start_server(tool: str, mail_root: str, users: str, zlib: bool = False):
    port = free_port()
    if tool == "dovecot":
        srv = dovecot.Dovecot(mail_root, users, port, workdir=os.path.join(WORK, "dovecot-run"),
                              zlib=zlib)
        shutil.rmtree(srv.workdir, ignore_errors=True)
        os.makedirs(srv.workdir)
    else:
        srv = S3imap(mail_root, users, port, os.path.join(WORK, "s3imap.log"))
    srv.start()
    return srv, port


# --- measurements ------------------------------------------------------------------------------
def memory(pids: list[int]) -> dict:
    rss = pss = 0
    names: dict[str, int] = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
            with open(f"/proc/{pid}/comm") as f:
                name = f.read().strip()
            names[name] = names.get(name, 0) + 1
        except (OSError, ValueError):
            continue
    return {"rss": rss, "pss": pss, "processes": len(pids), "by_name": names}


def measure_memory(tool: str, src: str, manifest: dict, conns: list[int], idle: bool) -> dict:
    mail_root = fresh_copy(src, tool)
    srv, port = start_server(tool, mail_root, os.path.join(src, "users"))
    res = {}
    loop = asyncio.new_event_loop()
    sessions: list = []
    idling = False
    try:
        for n in sorted(conns):
            if n > len(sessions):
                t0 = time.monotonic()
                sessions += loop.run_until_complete(client.open_sessions(
                    port, n - len(sessions), manifest["user"], manifest["password"]))
                log(f"{tool}: {n} sessions logged in ({time.monotonic() - t0:.1f} s)")
            time.sleep(1.5)  # let login processes exit and the server settle
            m = memory(srv.pids())
            res[n] = m
            log(f"{tool}: N={n}: RSS {m['rss'] / MiB:.1f} MiB, PSS {m['pss'] / MiB:.1f} MiB, "
                f"{m['processes']} processes {m['by_name']}")
        if idle and sessions:
            t0 = time.monotonic()
            loop.run_until_complete(client.select_idle(sessions))
            idling = True
            took = time.monotonic() - t0
            log(f"{tool}: {len(sessions)} sessions SELECTed INBOX and IDLE ({took:.1f} s)")
            time.sleep(1.5)
            m = memory(srv.pids())
            m["select_all_s"] = took
            res[f"{len(sessions)} IDLE"] = m
            log(f"{tool}: N={len(sessions)} IDLE: RSS {m['rss'] / MiB:.1f} MiB, "
                f"PSS {m['pss'] / MiB:.1f} MiB")
    finally:
        loop.run_until_complete(client.close_sessions(sessions, idling))
        loop.close()
        srv.stop()
    base = res[0]
    for n, m in res.items():
        k = int(str(n).split()[0])
        if k:
            m["rss_per_conn"] = (m["rss"] - base["rss"]) / k
            m["pss_per_conn"] = (m["pss"] - base["pss"]) / k
    return res


def first_access(tool: str, src: str, manifest: dict, timeout: float) -> dict:
    """SELECT + FETCH on a fresh copy and a fresh start, the files in the page cache (cp just
    wrote them): what 'cold' is where the page cache cannot be dropped."""
    mail_root = fresh_copy(src, tool)
    srv, port = start_server(tool, mail_root, os.path.join(src, "users"))
    try:
        c = client.Client(port, timeout=timeout)
        c.login(manifest["user"], manifest["password"])
        sel = c.ok("SELECT INBOX")
        rep = c.command(FETCH)
        c.logout()
        return {"select_s": sel.seconds, "fetch_s": rep.seconds, "fetch_lines": len(rep.fetch_uids())}
    finally:
        srv.stop()


def timed_round(tool: str, src: str, manifest: dict, timeout: float, cached: bool) -> dict:
    r = {}
    if cached:
        r["cached"] = first_access(tool, src, manifest, timeout)
    mail_root = fresh_copy(src, tool)
    srv, port = start_server(tool, mail_root, os.path.join(src, "users"))
    try:
        r["drop_caches"] = drop_caches()
        user, pw = manifest["user"], manifest["password"]
        for phase in ("cold", "warm"):
            c = client.Client(port, timeout=timeout)
            c.login(user, pw)
            sel = c.ok("SELECT INBOX")
            rep = c.command(FETCH)
            c.logout()
            uids = rep.fetch_uids()
            r[phase] = {"select_s": sel.seconds, "fetch_s": rep.seconds, "status": rep.status.decode(),
                        "fetch_lines": len(uids), "bytes": rep.nbytes,
                        "uids_ok": sorted(uids) == list(range(1, manifest["count"] + 1))}
            r[f"_{phase}_reply"] = rep
        c = client.Client(port, timeout=timeout)
        c.login(user, pw)
        sel = c.ok("SELECT INBOX")
        rep = c.command(f'UID SEARCH TEXT "{manifest["search_word"]}"')
        c.logout()
        r["search"] = {"select_s": sel.seconds, "search_s": rep.seconds,
                       "status": rep.status.decode(), "uids": sorted(rep.search_uids())}
    finally:
        srv.stop()
    return r


def save_fetch(tool: str, reply) -> str:
    path = os.path.join(WORK, f"fetch-{tool}.txt")
    with open(path, "wb") as f:
        for line in reply.untagged:
            f.write(line + b"\r\n")
    return path


def fetch_by_uid(reply) -> dict:
    out = {}
    for line in reply.untagged:
        if client._FETCH.match(line):
            m = client._UID.search(line)
            if m:
                out[int(m.group(1))] = line.split(b" ", 2)[2]  # without "* <seq>"
    return out


# --- report --------------------------------------------------------------------------------------
def machine_line() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    try:
        with open("/etc/debian_version") as f:
            deb = "Debian " + f.read().strip()
    except OSError:
        deb = platform.platform()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} cores (shared), {mem:.0f} GiB, {deb}, Linux "
            f"{platform.release()}; load average at start {load}; "
            f"{dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")


def git_rev() -> str:
    try:
        r = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                           capture_output=True, text=True, timeout=10)
        return r.stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def fmt_mib(b):
    if b is None:
        return "–"
    if b < MiB:
        return f"{b / 1024:.1f} KiB"
    return f"{b / MiB:.2f} MiB" if b < 10 * MiB else f"{b / MiB:.1f} MiB" if b < 100 * MiB \
        else f"{b / MiB:.0f} MiB" if b < 2**30 else f"{b / 2**30:.2f} GiB"


def fmt_s(x):
    return "–" if x is None else f"{x:.3f}" if x < 10 else f"{x:.1f}"


def ratio(a, b):
    if a is None or b in (None, 0):
        return "–"
    r = a / b
    return f"{r:.2f}" if r >= 0.1 else f"{r:.2g}"


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(tool: str, res: dict, conns: list[int]) -> dict:
    s = {"status": res.get("status", "ok"), "note": res.get("note", "")}
    mem = res.get("memory") or {}
    top = max(conns)
    if top in mem:
        s["rss_per_conn"] = mem[top].get("rss_per_conn")
        s["pss_per_conn"] = mem[top].get("pss_per_conn")
        s["rss_total"] = mem[top]["rss"]
        s["pss_total"] = mem[top]["pss"]
    rounds = res.get("rounds", [])
    s["fetch_cold"] = med([r["cold"]["fetch_s"] for r in rounds])
    s["fetch_warm"] = med([r["warm"]["fetch_s"] for r in rounds])
    s["open_cold"] = med([r["cold"]["fetch_s"] + r["cold"]["select_s"] for r in rounds])
    s["open_warm"] = med([r["warm"]["fetch_s"] + r["warm"]["select_s"] for r in rounds])
    s["select_cold"] = med([r["cold"]["select_s"] for r in rounds])
    s["select_warm"] = med([r["warm"]["select_s"] for r in rounds])
    s["search"] = med([r["search"]["search_s"] for r in rounds])
    s["fetch_cached"] = med([r["cached"]["fetch_s"] for r in rounds if "cached" in r])
    s["open_cached"] = med([r["cached"]["fetch_s"] + r["cached"]["select_s"]
                            for r in rounds if "cached" in r])
    idle = mem.get(f"{top} IDLE")
    if idle:
        s["idle_rss_total"], s["idle_pss_total"] = idle["rss"], idle["pss"]
        s["idle_rss_per_conn"] = idle.get("rss_per_conn")
        s["idle_select_s"] = idle.get("select_all_s")
    return s


def report(args, manifest, results, info) -> str:
    conns = args.conns
    top = max(conns)
    S = {t: summarize(t, results[t], conns) for t in results}
    d, s = S.get("dovecot", {}), S.get("s3imap", {})
    L = []
    L.append(f"## IMAP: s3imap serve vs Dovecot {info['dovecot_version']} "
             f"({manifest['count']:,} messages, {manifest['bytes'] / 1e6:.0f} MB)")
    L.append("")
    L.append(f"Machine: {machine_line()}. s3imap at `{git_rev()}`.")
    L.append("")
    L.append(f"Reproduce: `.venv/bin/python bench/imap/run.py --count {manifest['count']} --rounds "
             f"{args.rounds} --seed {args.seed}` (as root; bench/imap/README.md says what is "
             "measured and how).")
    L.append("")
    cold = ("page cache dropped (`echo 3 > /proc/sys/vm/drop_caches`) after the server started"
            if info["drop_caches"] is None else
            f"page cache NOT dropped ({info['drop_caches']}): first access after the server "
            "started, files warm in the page cache")
    L.append(f"Each server serves its own fresh copy of the same Maildir (INBOX of "
             f"{manifest['count']:,} messages; kinds {manifest['kinds']}). Memory: the server's "
             f"processes summed (/proc/PID/smaps_rollup) with N authenticated idle connections "
             f"(LOGIN done, nothing selected); per connection = (total at N − total at 0) / N. "
             f"FETCH/SEARCH: wall time of the one command on a raw socket, median of "
             f"{args.rounds} rounds, each on a fresh copy and a fresh start; cold = first access, "
             f"{cold}; warm = the same again on a new connection.")
    L.append("")
    L.append(f"| tool | RSS per idle conn | total RSS at {top} | PSS per idle conn | total PSS at "
             f"{top} | FETCH cold s | FETCH warm s | SEARCH TEXT s |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for t in TOOLS:
        if t not in S:
            continue
        x = S[t]
        name = f"Dovecot {info['dovecot_version']}" if t == "dovecot" else "s3imap"
        if x["status"] != "ok":
            L.append(f"| {name} | {x['status']} | | | | | | |")
            continue
        L.append(f"| {name} | {fmt_mib(x.get('rss_per_conn'))} | {fmt_mib(x.get('rss_total'))} | "
                 f"{fmt_mib(x.get('pss_per_conn'))} | {fmt_mib(x.get('pss_total'))} | "
                 f"{fmt_s(x['fetch_cold'])} | {fmt_s(x['fetch_warm'])} | {fmt_s(x['search'])} |")
    both = d.get("status") == "ok" and s.get("status") == "ok"
    if both:
        L.append(f"| s3imap/Dovecot | {ratio(s.get('rss_per_conn'), d.get('rss_per_conn'))} | "
                 f"{ratio(s.get('rss_total'), d.get('rss_total'))} | "
                 f"{ratio(s.get('pss_per_conn'), d.get('pss_per_conn'))} | "
                 f"{ratio(s.get('pss_total'), d.get('pss_total'))} | "
                 f"{ratio(s['fetch_cold'], d['fetch_cold'])} | {ratio(s['fetch_warm'], d['fetch_warm'])} | "
                 f"{ratio(s['search'], d['search'])} |")
    L.append("")
    extra = []
    for t in TOOLS:
        x = S.get(t, {})
        name = "Dovecot" if t == "dovecot" else "s3imap"
        if x.get("idle_rss_total") is not None:
            extra.append(f"{name} {fmt_mib(x['idle_rss_total'])} RSS, "
                         f"{fmt_mib(x['idle_pss_total'])} PSS "
                         f"({fmt_mib(x['idle_rss_per_conn'])} RSS per session; the {top} "
                         f"SELECTs took {x['idle_select_s']:.1f} s)")
    if extra:
        L.append(f"The same {top} sessions after each SELECTed INBOX and started IDLE: "
                 + "; ".join(extra) + ".")
        L.append("")
    extra = [f"{'Dovecot' if t == 'dovecot' else 's3imap'} {fmt_s(S[t]['fetch_cached'])} s "
             f"(SELECT+FETCH {fmt_s(S[t]['open_cached'])} s)"
             for t in TOOLS if S.get(t, {}).get("fetch_cached") is not None]
    if extra:
        L.append("FETCH on first access after start with the files already in the page cache "
                 "(fresh copy, page cache not dropped): " + "; ".join(extra) + ".")
        L.append("")
    # targets
    L.append("Targets (s3imap):")
    if both:
        def verdict(ok):
            return "PASS" if ok else "FAIL"
        if s.get("rss_total") is not None:
            L.append(f"- {verdict(s['rss_total'] <= 32 * MiB)}: {top} authenticated idle sessions "
                     f"in ≤ 32 MiB total RSS: {fmt_mib(s['rss_total'])}.")
        else:
            L.append("- n/a: memory was not measured.")
        if s.get("idle_rss_total") is not None:
            L.append(f"- {verdict(s['idle_rss_total'] <= 64 * MiB)}: the same {top} sessions "
                     f"SELECTed and in IDLE in ≤ 64 MiB total RSS: {fmt_mib(s['idle_rss_total'])}.")
            if d.get("idle_select_s"):
                L.append(f"- {verdict(s['idle_select_s'] <= 0.5 * d['idle_select_s'])}: their "
                         f"{top} SELECTs in ≤ ½ Dovecot's time: {fmt_s(s['idle_select_s'])} s vs "
                         f"{fmt_s(d['idle_select_s'])} s, ratio "
                         f"{ratio(s['idle_select_s'], d['idle_select_s'])}.")
        if s["fetch_cold"] is not None and d["fetch_cold"] is not None:
            for phase, k, label in (("cold", 1, "≤ Dovecot's"), ("warm", 0.5, "≤ ½ Dovecot's")):
                f_s, f_d = s[f"fetch_{phase}"], d[f"fetch_{phase}"]
                o_s, o_d = s[f"open_{phase}"], d[f"open_{phase}"]
                note = (f"SELECT + FETCH: {fmt_s(o_s)} vs {fmt_s(o_d)} s, ratio {ratio(o_s, o_d)}"
                        + ("" if o_s <= k * o_d else ", which would miss the target"))
                L.append(f"- {verdict(f_s <= k * f_d)}: FETCH {phase} {label}: {fmt_s(f_s)} s vs "
                         f"{fmt_s(f_d)} s, ratio {ratio(f_s, f_d)} ({note}).")
        if s["search"] is not None and d["search"] is not None:
            L.append(f"- {verdict(s['search'] <= d['search'] / 2)}: SEARCH TEXT ≤ ½ Dovecot's: "
                     f"{fmt_s(s['search'])} s vs {fmt_s(d['search'])} s, ratio "
                     f"{ratio(s['search'], d['search'])}.")
    elif s.get("status") != "ok":
        L.append(f"- not judged: s3imap {s.get('note') or s.get('status') or 'not run'}.")
    else:
        L.append(f"- not judged: Dovecot {d.get('note') or d.get('status') or 'not run (--only)'}.")
    L.append("")
    # details
    L.append("<details><summary>Details</summary>")
    L.append("")
    L.append("| tool | N | total RSS | total PSS | processes |")
    L.append("| --- | ---: | ---: | ---: | --- |")
    for t in TOOLS:
        mems = (results.get(t, {}).get("memory") or {}).items()
        for n, m in sorted(mems, key=lambda kv: (int(str(kv[0]).split()[0]), str(kv[0]))):
            procs = ", ".join(f"{k} {v}" for k, v in sorted(m["by_name"].items(), key=lambda kv: -kv[1]))
            L.append(f"| {t} | {n} | {fmt_mib(m['rss'])} | {fmt_mib(m['pss'])} | {procs} |")
    L.append("")
    L.append("| tool | round | SELECT cold s | FETCH cold s | SELECT warm s | FETCH warm s | "
             "SEARCH s | FETCH lines | SEARCH hits | FETCH first access, cache warm s |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for t in TOOLS:
        for i, r in enumerate(results.get(t, {}).get("rounds", []), 1):
            L.append(f"| {t} | {i} | {fmt_s(r['cold']['select_s'])} | {fmt_s(r['cold']['fetch_s'])} | "
                     f"{fmt_s(r['warm']['select_s'])} | {fmt_s(r['warm']['fetch_s'])} | "
                     f"{fmt_s(r['search']['search_s'])} | {r['cold']['fetch_lines']}/"
                     f"{r['warm']['fetch_lines']} | {len(r['search']['uids'])} | "
                     f"{fmt_s(r['cached']['fetch_s']) if 'cached' in r else '–'} |")
    L.append("")
    for line in info["checks"]:
        L.append(f"- {line}")
    L.append("")
    L.append("</details>")
    return "\n".join(L) + "\n"


# --- main --------------------------------------------------------------------------------------
def run_tool_rounds(tool, src, manifest, args, results):
    res = results[tool]
    if res.get("status", "ok") != "ok":
        return
    try:
        log(f"{tool}: round {len(res['rounds']) + 1}")
        r = timed_round(tool, src, manifest, args.timeout, cached=args.cached)
        if "cached" in r:
            log(f"{tool}: SELECT+FETCH first access, page cache warm: "
                f"{r['cached']['select_s']:.3f}+{r['cached']['fetch_s']:.3f} s")
        log(f"{tool}: SELECT+FETCH cold {r['cold']['select_s']:.3f}+{r['cold']['fetch_s']:.3f} s, "
            f"warm {r['warm']['select_s']:.3f}+{r['warm']['fetch_s']:.3f} s, "
            f"SEARCH {r['search']['search_s']:.3f} s ({len(r['search']['uids'])} hits)")
        if not res["rounds"]:
            res["_warm_reply"] = r["_warm_reply"]
            save_fetch(tool, r["_warm_reply"])
        for k in ("_cold_reply", "_warm_reply"):
            r.pop(k, None)
        res["rounds"].append(r)
    except (OSError, RuntimeError, client.ImapError, TimeoutError) as e:
        log(f"{tool}: FAILED: {e}")
        res["status"], res["note"] = "error", f"failed: {str(e).splitlines()[0][:200]}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", choices=TOOLS, action="append",
                    help="run only this server (repeatable; default both)")
    ap.add_argument("--conns", default="0,100,1000",
                    help="idle connection counts for the memory test (default 0,100,1000; "
                         "'' skips it)")
    ap.add_argument("--no-idle", action="store_true",
                    help="skip the memory point with every session SELECTed and IDLE")
    ap.add_argument("--timeout", type=float, default=180, help="seconds for one IMAP command")
    ap.add_argument("--s3imap", default=None, metavar="PATH",
                    help="the s3imap binary (default target/release/s3imap)")
    ap.add_argument("--build", action="store_true",
                    help="cargo build --release first (bench/run does it otherwise)")
    args = ap.parse_args(argv)
    args.conns = sorted({int(x) for x in args.conns.split(",") if x.strip()} | {0}) \
        if args.conns.strip() else []
    tools = [t for t in TOOLS if not args.only or t in args.only]
    if args.s3imap:
        global S3IMAP
        S3IMAP = os.path.abspath(args.s3imap)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    os.makedirs(WORK, exist_ok=True)
    t_start = time.monotonic()
    fd_limit = dovecot.raise_fd_limit()
    if args.conns and fd_limit < max(args.conns) + 200:
        log(f"fd limit {fd_limit} is too low for {max(args.conns)} connections")

    if args.build:
        log("cargo build --release")
        subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=False,
                       stdout=open(os.path.join(WORK, "build.log"), "wb"), stderr=subprocess.STDOUT)
    src, manifest = corpus(args.count, args.seed)
    info = {"drop_caches": None, "checks": [], "dovecot_version": "2.3"}
    results = {}
    for t in tools:
        results[t] = {"status": "ok", "rounds": []}
    if "dovecot" in tools:
        dovecot.ensure_installed()
        info["dovecot_version"] = dovecot.version()
    if "s3imap" in tools:
        ok, why = s3imap_available()
        if not ok:
            results["s3imap"].update(status="not available", note=f"not available: {why}")
            log(f"s3imap: not available ({why})")
    why = drop_caches()
    info["drop_caches"] = why
    args.cached = why is None  # then also time a first access with the page cache warm
    if why:
        log(f"cannot drop the page cache ({why}): 'cold' = first access, files in the page cache")

    try:
        for t in tools:
            if results[t]["status"] != "ok" or not args.conns:
                continue
            try:
                results[t]["memory"] = measure_memory(t, src, manifest, args.conns,
                                                      not args.no_idle)
            except (OSError, RuntimeError, client.ImapError, TimeoutError) as e:
                log(f"{t}: memory test FAILED: {e}")
                results[t]["memory_error"] = str(e).splitlines()[0][:200]
        for i in range(args.rounds):
            order = tools[i % len(tools):] + tools[:i % len(tools)]
            for t in order:
                run_tool_rounds(t, src, manifest, args, results)
    except (Stop, KeyboardInterrupt) as e:
        log(f"stopped: {e}")
        return 130
    if results.get("dovecot", {}).get("status") == "error":
        exit_code = 1  # without the reference the run means nothing
    else:
        exit_code = 0

    # checks
    want = manifest["search_uids"]
    for t in tools:
        rounds = results[t]["rounds"]
        if not rounds:
            continue
        lines = {r[p]["fetch_lines"] for r in rounds for p in ("cold", "warm")}
        uids_ok = all(r[p]["uids_ok"] for r in rounds for p in ("cold", "warm"))
        info["checks"].append(f"{t}: FETCH answered {sorted(lines)} FETCH responses "
                              f"(want {manifest['count']}), UIDs 1..{manifest['count']}: "
                              f"{'yes' if uids_ok else 'NO'}")
        got = rounds[0]["search"]["uids"]
        same = got == want
        info["checks"].append(
            f"{t}: SEARCH TEXT \"{manifest['search_word']}\" found {len(got)} messages; the "
            f"generator put the word in {len(want)}: " + ("same UIDs" if same else
            f"DIFFERENT (missing {len(set(want) - set(got))}, e.g. {sorted(set(want) - set(got))[:5]}; "
            f"extra {len(set(got) - set(want))}, e.g. {sorted(set(got) - set(want))[:5]})"))
        if results[t].get("memory_error"):
            info["checks"].append(f"{t}: memory test failed: {results[t]['memory_error']}")
    if all(results.get(t, {}).get("_warm_reply") for t in TOOLS):
        a = fetch_by_uid(results["dovecot"]["_warm_reply"])
        b = fetch_by_uid(results["s3imap"]["_warm_reply"])
        same = sum(1 for u in a if b.get(u) == a[u])
        strip = re.compile(rb"UID \d+ ?")  # the first one: the UID item
        norm = sum(1 for u in a if u in b and strip.sub(b"", a[u], 1).replace(b" )", b")")
                   == strip.sub(b"", b[u], 1).replace(b" )", b")"))
        sa = set(results["dovecot"]["rounds"][0]["search"]["uids"])
        sb = set(results["s3imap"]["rounds"][0]["search"]["uids"])
        info["checks"].append(f"FETCH responses byte-identical between the two: {same}/{len(a)}; "
                              f"identical but for where the UID item stands: {norm}/{len(a)} "
                              f"(answers in bench/out/imap/fetch-dovecot.txt, fetch-s3imap.txt)")
        info["checks"].append(f"SEARCH UID sets of the two servers: "
                              f"{'identical' if sa == sb else 'DIFFERENT'}")
    if "dovecot" in results:
        info["checks"].append(f"Dovecot: Debian's dovecot-imapd {info['dovecot_version']}, "
                              "imap-login high-security mode (a process per login, gone after "
                              "it), an imap process per session, no hibernation, no FTS; "
                              "limits raised: process_limit 4000, default_client_limit 10000, "
                              "mail_max_userip_connections 4000")
    info["checks"].append(f"fd limit (RLIMIT_NOFILE) {fd_limit}; run took "
                          f"{time.monotonic() - t_start:.0f} s")

    md = report(args, manifest, results, info)
    with open(os.path.join(OUT, "imap.md"), "w") as f:
        f.write(md)
    for t in results:
        results[t].pop("_warm_reply", None)
    with open(os.path.join(OUT, "imap.json"), "w") as f:
        json.dump({"args": vars(args), "manifest": {k: v for k, v in manifest.items()
                                                    if k != "search_uids"},
                   "info": info, "results": results}, f, indent=1, default=str)
    print(md)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
