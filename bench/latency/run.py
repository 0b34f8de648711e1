#!/usr/bin/env python3
"""PUT into S3 -> EXISTS seen by an IDLE client: the delay a user waits for new mail, and what
the waiting costs in requests, for the events path and for polling, side by side in one run.

For each mode it starts `s3imap serve` (in-process sync) against loopback SeaweedFS
(.ci/s3-server) and, for the events path, moto server's SQS and SNS (the queue subscribed to a
topic, as SES's receipt rule publishes):
  events      --events-queue, the listing at its 15 min default;
  poll 1s     --sync-interval 1s;
  poll 60s    --sync-interval 60s (the default without events).
It keeps one client in IDLE on INBOX, PUTs messages one at a time with s5cmd (for events,
then publishes SES's notification for it through SNS, as SES does after storing it) at a
random phase of the polling, and times from the end of the PUT to `* n EXISTS`. Then it leaves
the server idle for --idle seconds and counts its S3 and SQS requests from /metrics, scaled to
a day. Prints and writes bench/out/latency.md. Run from the repository root after
`cargo build --release`.
"""
import argparse, json, os, random, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEY, SECRET = "AKIAS3IMAPTEST", "s3imap-test-secret"
PY = os.path.join(ROOT, ".venv/bin/python")
PEER = os.path.join(ROOT, "tests/aws_peer.py")


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def wait_port(port, ceiling=60):
    until = time.monotonic() + ceiling
    while time.monotonic() < until:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close(); return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listening on {port}")


class Idle:
    def __init__(self, port, user, password):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=180)
        self.buf = b""
        self.line()
        self.cmd(b"a1 LOGIN %s %s" % (user.encode(), password.encode()))
        self.cmd(b"a2 SELECT INBOX")
        self.s.sendall(b"a3 IDLE\r\n")
        assert self.line().startswith(b"+")

    def line(self):
        while b"\n" not in self.buf:
            d = self.s.recv(4096)
            if not d:
                raise EOFError
            self.buf += d
        l, self.buf = self.buf.split(b"\n", 1)
        return l + b"\n"

    def cmd(self, c):
        tag = c.split(b" ", 1)[0]
        self.s.sendall(c + b"\r\n")
        while True:
            l = self.line()
            if l.startswith(tag + b" "):
                assert b" OK" in l, l
                return

    def wait_exists(self):
        while True:
            l = self.line()
            if l.startswith(b"* ") and l.rstrip().endswith(b"EXISTS"):
                return


def requests(http_port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10).read().decode()
    out = {}
    for m in re.finditer(r'^s3imap_requests_total\{service="(\w+)",outcome="\w+"\} (\d+)$', text, re.M):
        out[m[1]] = out.get(m[1], 0) + int(m[2])
    return out


def run_mode(name, a, work, endpoint, moto, count):
    mail = os.path.join(work, f"mail-{name.replace(' ', '')}")
    os.makedirs(mail)
    users = os.path.join(work, "users")
    port, http_port = free_port(), free_port()
    senv = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_REGION="us-east-1",
                AWS_ENDPOINT_URL_S3=endpoint, S3IMAP_BUCKET="ses-inbound")
    args = [os.path.join(ROOT, "target/release/s3imap"), "serve", "--listen", f"127.0.0.1:{port}",
            "--users", users, "--mail-root", mail, "--http-listen", f"127.0.0.1:{http_port}"]
    queue = topic = None
    if name == "events":
        queue, topic = subprocess.check_output([PY, PEER, "wire", moto], env=senv, text=True).split()
        args += ["--events-queue", queue]
        every = 1.0  # the phase of the long poll does not matter; spread the PUTs a little
    else:
        every = float(name.split()[1].rstrip("s"))
        args += ["--sync-interval", name.split()[1]]
    serve = subprocess.Popen(args, env=senv, stderr=subprocess.DEVNULL)
    # SES publishes its notification once the object is stored: one publisher process, so
    # the timing holds no interpreter start.
    pub = subprocess.Popen([PY, PEER, "ses-lines", moto, topic, "ses-inbound"], env=senv, text=True,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE) if topic else None
    try:
        wait_port(port)
        time.sleep(1.0)  # the first listing pass
        idle = Idle(port, "alice@example.com", "pw")
        s5 = os.path.join(ROOT, ".venv/bin/s5cmd")
        lat = []
        rnd = random.Random(1)
        for i in range(count):
            time.sleep(rnd.uniform(0, every))
            key = f"inbound/{name.replace(' ', '')}-{i}"
            f = os.path.join(work, "m.eml")
            open(f, "wb").write(b"Received: from x by inbound-smtp.us-east-1.amazonaws.com with SMTP id q"
                                b" for alice@example.com;\r\n Wed, 02 Dec 2026 10:00:00 +0000\r\n"
                                b"Subject: latency %d\r\n\r\nping\r\n" % i)
            subprocess.run([s5, "--endpoint-url", endpoint, "cp", f, f"s3://ses-inbound/{key}"],
                           env=senv, check=True, stdout=subprocess.DEVNULL)
            t0 = time.monotonic()
            if pub:
                pub.stdin.write(f"{key} alice@example.com\n"); pub.stdin.flush()
                assert pub.stdout.readline().strip() == "ok"
            idle.wait_exists()
            lat.append(time.monotonic() - t0)
        before, t0 = requests(http_port), time.monotonic()
        time.sleep(a.idle)
        after, took = requests(http_port), time.monotonic() - t0
        per_day = {s: (after.get(s, 0) - before.get(s, 0)) * 86400 / took for s in ("s3", "sqs")}
        lat.sort()
        return {
            "count": count,
            "p50": statistics.median(lat),
            "p95": lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))],
            "max": lat[-1],
            "s3": per_day["s3"],
            "sqs": per_day["sqs"],
        }
    finally:
        if pub:
            pub.stdin.close(); pub.wait(timeout=20)
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=100, help="messages for events and poll 1s")
    ap.add_argument("--slow-count", type=int, default=6, help="messages for poll 60s")
    ap.add_argument("--idle", type=float, default=120, help="seconds of idle counted per mode")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="s3imap-latency-")
    s3dir = os.path.join(work, "s3")
    open(os.path.join(work, "users"), "w").write("alice@example.com:{PLAIN}pw\n")
    env = dict(os.environ, S3_TEST_BUCKETS="ses-inbound")
    endpoint = subprocess.check_output([os.path.join(ROOT, ".ci/s3-server"), "start", s3dir], env=env, text=True).strip()
    moto_port = free_port()
    moto = subprocess.Popen([os.path.join(ROOT, ".venv/bin/moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    moto_url = f"http://127.0.0.1:{moto_port}"
    try:
        wait_port(moto_port)
        rows = {}
        for name, count in (("events", a.count), ("poll 1s", a.count), ("poll 60s", a.slow_count)):
            rows[name] = run_mode(name, a, work, endpoint, moto_url, count)
            print(name, json.dumps(rows[name]), flush=True)
        lines = [f"| {n} | {r['count']} | {r['p50']:.2f} s | {r['p95']:.2f} s | {r['max']:.2f} s "
                 f"| {r['s3']:,.0f} | {r['sqs']:,.0f} |" for n, r in rows.items()]
        md = (f"## New-mail latency: PUT into S3 → EXISTS in IDLE, events against polling\n\n"
              f"Reproduce: `.venv/bin/python bench/latency/run.py --count {a.count} --slow-count {a.slow_count} "
              f"--idle {a.idle:g}` (after `cargo build --release`). Loopback SeaweedFS for S3 and moto server "
              f"for SQS and SNS; `s3imap serve` with one client in IDLE on INBOX; each message PUT with "
              f"s5cmd (and, for events, SES's notification published to the SNS topic the queue is "
              f"subscribed to); time from the end of the PUT to `* n EXISTS`. Requests a day at idle: "
              f"the requests /metrics counted over {a.idle:g} s of idle, scaled to 86,400 s.\n\n"
              f"| mode | messages | p50 | p95 | max | S3 requests/day at idle | SQS requests/day at idle |\n"
              f"| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n" + "\n".join(lines) + "\n\n"
              f"Events: the listing runs every 15 min (96 ListObjectsV2 a day) as a safety net, and the "
              f"queue is long-polled 20 s at a time (4,320 ReceiveMessage a day, inside SQS's free tier). "
              f"Polling at 1 s is 86,400 ListObjectsV2 a day; at 60 s, 1,440, with 30 s of waiting on average.\n")
        os.makedirs(os.path.join(ROOT, "bench/out"), exist_ok=True)
        open(os.path.join(ROOT, "bench/out/latency.md"), "w").write(md)
        print(md)
    finally:
        moto.send_signal(signal.SIGTERM)
        moto.wait(timeout=20)
        subprocess.run([os.path.join(ROOT, ".ci/s3-server"), "stop", s3dir])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
