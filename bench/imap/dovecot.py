#!/usr/bin/env python3
"""Debian's Dovecot 2.3 on loopback with a throw-away configuration, for the IMAP benchmark.

    import dovecot
    with dovecot.Dovecot(mail_root, users_file, port=PORT) as d:   # started, greeting seen
        d.pids()        # the master and every process under it (imap, imap-login, auth, ...)
    # stopped (SIGTERM to the master, which ends its children)

    python3 bench/imap/dovecot.py --mail-root ROOT --users FILE --port PORT   # serve until ^C

The configuration (written to <workdir>/dovecot.conf; nothing of /etc/dovecot is read):
imap only (no pop3, lmtp, submission), one listener on 127.0.0.1:PORT, no TLS, plaintext
LOGIN allowed, passdb and userdb the passwd-file, mail_location=maildir:<mail-root>/%u,
base_dir/state_dir/log under the work dir, instance_name unique to it. Debian's defaults
otherwise: imap-login in "high-security" mode (one login process per connection, which
hands the connection to an imap process per user session), no imap hibernation, no FTS.
For the 1,000-connection test the limits are raised: process_limit 4000 for imap and
imap-login, default_client_limit 10000, mail_max_userip_connections 4000, and the
process's fd limit (RLIMIT_NOFILE) to its hard limit. Mail processes run as `nobody`
(Dovecot refuses mail access as root), so the mail root is chowned to nobody:nogroup.

`ensure_installed()` installs Dovecot with `.ci/apt` when it is missing (as root or with sudo; with a
policy-rc.d that keeps Debian's own dovecot service from being started).
"""

from __future__ import annotations

import argparse
import os
import pwd
import grp
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

DOVECOT = "/usr/sbin/dovecot"
MAIL_USER, MAIL_GROUP = "nobody", "nogroup"


def ensure_installed() -> str:
    """Path of the dovecot binary; installs Dovecot first if needed, the project's one way
    (`.ci/apt`: as root or through sudo, non-interactive, no service started)."""
    if os.path.exists(DOVECOT) and os.path.exists("/usr/lib/dovecot/imap"):
        return DOVECOT
    apt = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".ci", "apt")
    print("dovecot: .ci/apt ensure dovecot-imapd dovecot-core", file=sys.stderr)
    subprocess.run(["bash", apt, "ensure", "dovecot-imapd", "dovecot-core"], check=True)
    return DOVECOT


def version() -> str:
    try:
        return subprocess.run([DOVECOT, "--version"], capture_output=True, text=True,
                              timeout=10).stdout.split()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def child_setup() -> None:
    """preexec_fn for a server: the raised fd limit, no signals blocked (a caller that waits
    in sigwait() blocks them, and a child inherits the mask)."""
    raise_fd_limit()
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def chown_tree(root: str, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            os.lchown(os.path.join(d, n), uid, gid)


def wait_greeting(port: int, timeout: float, proc: subprocess.Popen | None = None) -> float:
    """Wait until 127.0.0.1:port accepts and sends `* OK`; return the seconds waited."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it answered")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.settimeout(5)
                buf = b""
                while b"\r\n" not in buf:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
                if buf.startswith(b"* OK"):
                    try:
                        s.sendall(b"z LOGOUT\r\n")
                    except OSError:
                        pass
                    return time.monotonic() - t0
                last = buf[:200]
        except OSError as e:
            last = e
        time.sleep(0.05)
    raise TimeoutError(f"no '* OK' greeting on 127.0.0.1:{port} within {timeout} s ({last!r})")


def descendants(pid: int) -> list[int]:
    """pid and every process below it (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


class Dovecot:
    def __init__(self, mail_root: str, users: str, port: int, workdir: str | None = None,
                 process_limit: int = 4000, zlib: bool = False):
        self.mail_root = os.path.abspath(mail_root)
        self.users = os.path.abspath(users)
        self.port = port
        self.process_limit = process_limit
        self.zlib = zlib  # load imap_zlib (COMPRESS=DEFLATE)
        self._own_workdir = workdir is None
        self.workdir = os.path.abspath(workdir or tempfile.mkdtemp(prefix="dovecot-bench-"))
        self.proc: subprocess.Popen | None = None
        self.log = os.path.join(self.workdir, "dovecot.log")
        self.conf = os.path.join(self.workdir, "dovecot.conf")

    def config(self) -> str:
        w, pl = self.workdir, self.process_limit
        return f"""# throw-away configuration of bench/imap/dovecot.py
instance_name = s3imap-bench-{self.port}
protocols = imap
listen = 127.0.0.1
base_dir = {w}/run
state_dir = {w}/state
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {self.log}
info_log_path = {self.log}
mail_location = maildir:{self.mail_root}/%u
mail_uid = {MAIL_USER}
mail_gid = {MAIL_GROUP}
first_valid_uid = 0
first_valid_gid = 0
default_internal_user = root
default_internal_group = root
default_login_user = {MAIL_USER}
default_process_limit = {pl}
default_client_limit = {pl * 2 + 2000}
passdb {{
  driver = passwd-file
  args = {self.users}
}}
userdb {{
  driver = passwd-file
  args = {self.users}
}}
service imap-login {{
  chroot =
  process_limit = {pl}
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service imap {{
  process_limit = {pl}
}}
service anvil {{
  chroot =
}}
protocol imap {{
  mail_max_userip_connections = {pl}
{"  mail_plugins = $mail_plugins imap_zlib" if self.zlib else ""}
}}
{"mail_plugins = $mail_plugins zlib" if self.zlib else ""}
"""

    def start(self, timeout: float = 30) -> "Dovecot":
        ensure_installed()
        for d in ("run", "state"):
            os.makedirs(os.path.join(self.workdir, d), exist_ok=True)
        with open(self.conf, "w") as f:
            f.write(self.config())
        chown_tree(self.mail_root, pwd.getpwnam(MAIL_USER).pw_uid, grp.getgrnam(MAIL_GROUP).gr_gid)
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.workdir, "stderr.log"), "wb"),
                                     preexec_fn=child_setup, start_new_session=True)
        try:
            wait_greeting(self.port, timeout, self.proc)
        except Exception:
            self.stop()
            raise RuntimeError(f"dovecot did not start; {self.log}: {self.log_tail()}")
        return self

    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def pids(self) -> list[int]:
        return descendants(self.pid()) if self.proc and self.proc.poll() is None else []

    def log_tail(self, n: int = 15) -> str:
        text = ""
        for path in (os.path.join(self.workdir, "stderr.log"), self.log):
            try:
                with open(path, errors="replace") as f:
                    text += "".join(f.readlines()[-n:])
            except OSError:
                pass
        return text

    def stop(self, timeout: float = 30) -> None:
        p, self.proc = self.proc, None
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)  # its own session: only its processes
                p.wait()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mail-root", required=True)
    ap.add_argument("--users", required=True)
    ap.add_argument("--port", type=int, default=10143)
    ap.add_argument("--workdir")
    a = ap.parse_args(argv)
    d = Dovecot(a.mail_root, a.users, a.port, a.workdir).start()
    print(f"dovecot {version()} on 127.0.0.1:{a.port} (pid {d.pid()}, config {d.conf}); ^C stops",
          file=sys.stderr)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    except KeyboardInterrupt:
        pass
    finally:
        d.stop()
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.exit(main())
