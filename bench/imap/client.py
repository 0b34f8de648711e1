"""A small raw-socket IMAP client for the benchmark: just enough to time one command.

    c = Client(port)                      # connects, reads the greeting
    c.login("bench@example.com", "bench")
    r = c.command("SELECT INBOX")         # Reply: .seconds, .untagged (list of bytes), .status
    r = c.command("UID FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)")
    c.logout()

A reply's time runs from just before the command is sent to the arrival of its tagged line.
Responses are split on CRLF with literals ({n} / {n+}) taken whole, so an untagged response
is one element of .untagged however many lines its literals span. Reading is in 1 MiB
chunks and the split is incremental, so the client costs little next to the server.

`open_sessions()` (asyncio) opens many authenticated connections at once and keeps them idle;
`select_idle()` then has each SELECT INBOX and IDLE; `close_sessions()` ends them.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from dataclasses import dataclass, field

_LITERAL = re.compile(rb"\{(\d+)\+?\}$")
_FETCH = re.compile(rb"^\* \d+ FETCH \(")
_UID = re.compile(rb"[( ]UID (\d+)")


class ImapError(Exception):
    pass


@dataclass
class Reply:
    status: bytes  # OK / NO / BAD
    tagged: bytes
    untagged: list = field(default_factory=list)
    seconds: float = 0.0
    nbytes: int = 0

    def fetch_uids(self) -> list[int]:
        """UIDs of the FETCH responses, in order (one per response, -1 where none)."""
        out = []
        for r in self.untagged:
            if _FETCH.match(r):
                m = _UID.search(r)
                out.append(int(m.group(1)) if m else -1)
        return out

    def search_uids(self) -> list[int]:
        out = []
        for r in self.untagged:
            if r.startswith(b"* SEARCH"):
                out.extend(int(x) for x in r[8:].split() if x.isdigit())
        return out


class Client:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 300):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0  # where the next unread response starts in buf
        self.n = 0
        self.greeting = self._response()
        if not self.greeting.startswith(b"* OK"):
            raise ImapError(f"greeting: {self.greeting[:200]!r}")

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ImapError("connection closed by the server")
        self.buf += chunk

    def _response(self) -> bytes:
        """The next whole response (a line plus any literals, CRLF stripped)."""
        scan = self.pos
        while True:
            i = self.buf.find(b"\r\n", scan)
            while i < 0:
                if self.pos > (1 << 22):  # drop what was consumed
                    del self.buf[: self.pos]
                    scan -= self.pos
                    self.pos = 0
                self._fill()
                i = self.buf.find(b"\r\n", scan)
            m = _LITERAL.search(self.buf, max(scan, i - 24), i)
            if m:
                end = i + 2 + int(m.group(1))
                while len(self.buf) < end:
                    self._fill()
                scan = end
                continue
            out = bytes(self.buf[self.pos:i])
            self.pos = i + 2
            return out

    def command(self, text: str | bytes) -> Reply:
        self.n += 1
        tag = b"t%d" % self.n
        line = tag + b" " + (text.encode() if isinstance(text, str) else text) + b"\r\n"
        untagged, nbytes = [], 0
        t0 = time.perf_counter()
        self.sock.sendall(line)
        while True:
            r = self._response()
            nbytes += len(r) + 2
            if r.startswith(tag + b" "):
                seconds = time.perf_counter() - t0
                status = r[len(tag) + 1:].split(b" ", 1)[0]
                return Reply(status, r, untagged, seconds, nbytes)
            untagged.append(r)

    def ok(self, text: str) -> Reply:
        r = self.command(text)
        if r.status != b"OK":
            raise ImapError(f"{text.split()[0]}: {r.tagged[:300]!r}")
        return r

    def login(self, user: str, password: str) -> Reply:
        return self.ok(f"LOGIN {quote(user)} {quote(password)}")

    def logout(self) -> None:
        try:
            self.command("LOGOUT")
        except (OSError, ImapError):
            pass
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def _session(port: int, user: str, password: str, sem: asyncio.Semaphore, timeout: float):
    async with sem:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        try:
            greeting = await asyncio.wait_for(reader.readline(), timeout)
            if not greeting.startswith(b"* OK"):
                raise ImapError(f"greeting: {greeting[:200]!r}")
            writer.write(f"a LOGIN {quote(user)} {quote(password)}\r\n".encode())
            await writer.drain()
            while True:
                line = await asyncio.wait_for(reader.readline(), timeout)
                if not line:
                    raise ImapError("closed during LOGIN")
                if line.startswith(b"a "):
                    if not line.startswith(b"a OK"):
                        raise ImapError(f"LOGIN: {line[:200]!r}")
                    return reader, writer
        except BaseException:
            writer.close()
            raise


async def open_sessions(port: int, n: int, user: str, password: str, concurrency: int = 50,
                        timeout: float = 60) -> list:
    """n connections, each logged in and then left idle; returns their (reader, writer)s."""
    sem = asyncio.Semaphore(concurrency)
    results = await asyncio.gather(*(_session(port, user, password, sem, timeout)
                                     for _ in range(n)), return_exceptions=True)
    ok = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        await close_sessions(ok)
        raise ImapError(f"{len(errors)} of {n} sessions failed; first: {errors[0]!r}")
    return ok


async def _select_idle(reader, writer, sem: asyncio.Semaphore, timeout: float) -> None:
    async with sem:
        writer.write(b"b SELECT INBOX\r\n")
        await writer.drain()
        while True:
            line = await asyncio.wait_for(reader.readline(), timeout)
            if not line:
                raise ImapError("closed during SELECT")
            if line.startswith(b"b "):
                if not line.startswith(b"b OK"):
                    raise ImapError(f"SELECT: {line[:200]!r}")
                break
        writer.write(b"c IDLE\r\n")
        await writer.drain()
        while True:
            line = await asyncio.wait_for(reader.readline(), timeout)
            if not line or line.startswith(b"c "):
                raise ImapError(f"IDLE: {line[:200]!r}")
            if line.startswith(b"+"):
                return


async def select_idle(sessions: list, concurrency: int = 20, timeout: float = 120) -> None:
    """SELECT INBOX and then IDLE in each of the open sessions (open_sessions' result)."""
    sem = asyncio.Semaphore(concurrency)
    results = await asyncio.gather(*(_select_idle(r, w, sem, timeout) for r, w in sessions),
                                   return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise ImapError(f"{len(errors)} of {len(sessions)} SELECT+IDLE failed; first: {errors[0]!r}")


async def close_sessions(sessions: list, idling: bool = False) -> None:
    for _, w in sessions:
        try:
            w.write((b"DONE\r\n" if idling else b"") + b"z LOGOUT\r\n")
        except (OSError, RuntimeError):
            pass
    await asyncio.sleep(0.2)
    for _, w in sessions:
        w.close()
    for _, w in sessions:
        try:
            await asyncio.wait_for(w.wait_closed(), 5)
        except (OSError, asyncio.TimeoutError, ConnectionError):
            pass
