#!/usr/bin/env python3
"""PUT into S3 -> EXISTS seen by an IDLE client: the delay a user waits for new mail.

Starts SeaweedFS (.ci/s3-server) and `s3imap serve` with the in-process sync polling every
--sync-interval, keeps one client in IDLE on INBOX, PUTs --count SES-like messages one at a
time with s5cmd, and measures from the end of each PUT to the `* n EXISTS` line. Prints and
writes bench/out/latency.md. Run from the repository root after `cargo build --release`.
"""
import argparse, os, random, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEY, SECRET = "AKIAS3IMAPTEST", "s3imap-test-secret"


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


class Idle:
    def __init__(self, port, user, password):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=120)
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


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=30)
    ap.add_argument("--sync-interval", default="1s")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="s3imap-latency-")
    s3dir, mail = os.path.join(work, "s3"), os.path.join(work, "mail")
    os.makedirs(mail)
    users = os.path.join(work, "users")
    open(users, "w").write("alice@example.com:{PLAIN}pw\n")
    env = dict(os.environ, S3_TEST_BUCKETS="ses-inbound")
    endpoint = subprocess.check_output([os.path.join(ROOT, ".ci/s3-server"), "start", s3dir], env=env, text=True).strip()
    port = free_port()
    senv = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_REGION="us-east-1",
                AWS_ENDPOINT_URL=endpoint, S3IMAP_BUCKET="ses-inbound")
    serve = subprocess.Popen([os.path.join(ROOT, "target/release/s3imap"), "serve", "--listen", f"127.0.0.1:{port}",
                              "--users", users, "--mail-root", mail, "--sync-interval", a.sync_interval],
                             env=senv, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close(); break
            except OSError:
                time.sleep(0.1)
        idle = Idle(port, "alice@example.com", "pw")
        s5 = os.path.join(ROOT, ".venv/bin/s5cmd")
        lat = []
        every = float(a.sync_interval.rstrip("s"))
        rnd = random.Random(1)
        for i in range(a.count):
            # A random phase against the sync's polling, as real mail arrives.
            time.sleep(rnd.uniform(0, every))
            f = os.path.join(work, f"m{i}.eml")
            open(f, "wb").write(b"Received: from x by inbound-smtp.us-east-1.amazonaws.com with SMTP id q"
                                b" for alice@example.com;\r\n Sat, 28 Nov 2026 10:00:00 +0000\r\n"
                                b"Subject: latency %d\r\n\r\nping\r\n" % i)
            subprocess.run([s5, "--endpoint-url", endpoint, "cp", f, f"s3://ses-inbound/inbound/m{i}"],
                           env=senv, check=True, stdout=subprocess.DEVNULL)
            t0 = time.monotonic()
            idle.wait_exists()
            lat.append(time.monotonic() - t0)
        lat.sort()
        p50 = statistics.median(lat)
        p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
        md = (f"## New-mail latency: PUT into S3 → EXISTS in IDLE\n\n"
              f"Reproduce: `.venv/bin/python bench/latency/run.py --count {a.count} --sync-interval {a.sync_interval}` "
              f"(after `cargo build --release`). {a.count} messages PUT one at a time with s5cmd into loopback "
              f"SeaweedFS; `s3imap serve` syncing in-process every {a.sync_interval}; one client in IDLE on INBOX; "
              f"time from the end of the PUT to `* n EXISTS`; PUTs at a random phase of the polling.\n\n"
              f"| p50 | p95 | max | the replaced setup (5-minute CronJob) |\n| ---: | ---: | ---: | ---: |\n"
              f"| {p50:.2f} s | {p95:.2f} s | {lat[-1]:.2f} s | 150 s on average |\n\n"
              f"The delay is the sync interval's wait (half of it on average) plus the delivery; IDLE "
              f"sessions are woken by the delivery itself. A shorter interval costs one ListObjectsV2 "
              f"request per interval.\n")
        os.makedirs(os.path.join(ROOT, "bench/out"), exist_ok=True)
        open(os.path.join(ROOT, "bench/out/latency.md"), "w").write(md)
        print(md)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=20)
        subprocess.run([os.path.join(ROOT, ".ci/s3-server"), "stop", s3dir])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
