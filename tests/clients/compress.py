"""COMPRESS=DEFLATE (RFC 4978) as a client sees it, with Python's zlib (raw deflate, a sync
flush after every command, as Thunderbird and K-9 do): the same session's answers before
and after COMPRESS are the same bytes; a second COMPRESS gets NO [COMPRESSIONACTIVE]; commands
pipelined in one deflated packet all get answered; a large FETCH arrives whole.

Usage: compress.py PORT USER PASSWORD. Prints one line per finding (the test compares them
across servers), then `bytes <plain> <compressed>` for the header sync.
"""
import re
import socket
import sys
import zlib

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=60)
rx = b""
z_out = None
z_in = None
wire_in = 0


def send(b):
    if z_out:
        s.sendall(z_out.compress(b) + z_out.flush(zlib.Z_SYNC_FLUSH))
    else:
        s.sendall(b)


def fill():
    global rx, wire_in
    data = s.recv(65536)
    if not data:
        raise SystemExit("connection closed; had %r" % rx[-200:])
    wire_in += len(data)
    rx += z_in.decompress(data) if z_in else data


def response():
    """One response: a line with its literals."""
    global rx
    out = b""
    while True:
        while b"\r\n" not in rx:
            fill()
        i = rx.index(b"\r\n") + 2
        line, rx = rx[:i], rx[i:]
        out += line
        m = re.search(rb"\{(\d+)\}\r\n$", line)
        if not m:
            return out
        n = int(m.group(1))
        while len(rx) < n:
            fill()
        out, rx = out + rx[:n], rx[n:]


def command(tag, text):
    send(b"%s %s\r\n" % (tag, text))
    lines = []
    while True:
        r = response()
        lines.append(r)
        if r.startswith(tag + b" "):
            return lines


def status(lines):
    t = lines[-1].split(b" ")
    code = re.search(rb"\[([A-Z-]+)", lines[-1])
    return t[1].decode() + (" [" + code.group(1).decode() + "]" if code else "")


def normal(lines):
    # Dovecot puts timings into its tagged text; compare the responses, not that text.
    return [l for l in lines[:-1]] + [status(lines).encode()]


response()  # greeting
print("login", status(command(b"a1", b'LOGIN "%s" "%s"' % (user.encode(), password.encode()))))
caps = b" ".join(command(b"a2", b"CAPABILITY")[:-1])
print("advertised", b"COMPRESS=DEFLATE" in caps)
command(b"a3", b"SELECT INBOX")
plain_sync = command(b"a4", b"UID FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)")
plain_bytes = sum(len(l) for l in plain_sync)
print("compress", status(command(b"a5", b"COMPRESS DEFLATE")))
z_out = zlib.compressobj(6, zlib.DEFLATED, -15)
z_in = zlib.decompressobj(-15)
# The rest of the buffer (nothing, the server sends nothing more uncompressed) is deflated.
rx = z_in.decompress(rx) if rx else rx
wire_in = 0
again = command(b"a6", b"UID FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)")
print("same answer compressed", normal(again) == normal(plain_sync))
print("header sync", len(plain_sync) - 1, "responses")
print("second compress", status(command(b"a7", b"COMPRESS DEFLATE")))
# Pipelined: three commands in one deflated write.
send(b"p1 NOOP\r\np2 UID SEARCH ALL\r\np3 FETCH 1 (BODY.PEEK[])\r\n")
got = []
while len(got) < 3:
    r = response()
    if re.match(rb"p\d ", r):
        got.append(status([r]))
    elif r.startswith(b"* 1 FETCH"):
        print("body arrives whole", r.endswith(b")\r\n"))
print("pipelined", got)
print("logout", status(command(b"a8", b"LOGOUT")))
print("bytes", plain_bytes, wire_in, file=sys.stderr)
