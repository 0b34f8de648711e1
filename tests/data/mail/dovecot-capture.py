import socket, re, sys, os
import os
D = os.path.dirname(os.path.abspath(__file__))
class C:
    def __init__(s):
        s.s = socket.create_connection(("127.0.0.1", 24243)); s.buf = b""; s.n = 0
        s.readline()
    def readline(s):
        while b"\r\n" not in s.buf:
            d = s.s.recv(65536)
            if not d: raise EOFError
            s.buf += d
        i = s.buf.index(b"\r\n") + 2
        l, s.buf = s.buf[:i], s.buf[i:]
        return l
    def readn(s, n):
        while len(s.buf) < n: s.buf += s.s.recv(65536)
        d, s.buf = s.buf[:n], s.buf[n:]
        return d
    def resp(s):
        # one full response (with literals)
        out = b""
        while True:
            l = s.readline(); out += l
            m = re.search(rb"\{(\d+)\}\r\n$", l)
            if not m: return out
            out += s.readn(int(m.group(1)))
    def cmd(s, c):
        s.n += 1; tag = b"a%d" % s.n
        s.s.sendall(tag + b" " + c + b"\r\n")
        res = []
        while True:
            r = s.resp()
            if r.startswith(tag + b" "):
                if not r.startswith(tag + b" OK"): raise Exception(r)
                return res
            res.append(r)
c = C()
c.cmd(b"LOGIN test pass")
c.cmd(b"SELECT INBOX")
order = [l.split() for l in open("/tmp/dvmime/order.txt")]
SECTIONS = [b"HEADER", b"TEXT", b"1", b"1.MIME", b"2", b"2.MIME", b"2.HEADER", b"2.TEXT",
            b"1.1", b"2.1", b"2.2", b"3", b"3.1", b"4", b"4.1", b"4.HEADER", b"1.HEADER",
            b"HEADER.FIELDS (FROM TO SUBJECT)", b"HEADER.FIELDS.NOT (RECEIVED DKIM-SIGNATURE SUBJECT)",
            b"2.HEADER.FIELDS (SUBJECT FROM)", b"4.HEADER.FIELDS (SUBJECT)", b"", b"]<0.100", b"TEXT]<10.50",
            b"2]<3.7", b"1]<0.5"]
for seq, name in order:
    parts = []
    for item in [b"ENVELOPE", b"BODYSTRUCTURE", b"BODY", b"RFC822.SIZE"]:
        r = c.cmd(b"FETCH " + seq.encode() + b" (" + item + b")")
        assert len(r) == 1, r
        r = r[0]
        pre = b"* " + seq.encode() + b" FETCH ("
        assert r.startswith(pre) and r.endswith(b")\r\n"), r
        parts.append(r[len(pre):-3])
    open(os.path.join(D, name + ".dovecot.txt"), "wb").write(b"\r\n".join(parts) + b"\r\n")
    sec = []
    for s in SECTIONS:
        spec = b"BODY.PEEK[" + s + (b"" if b"<" in s else b"]")
        if b"<" in s: spec += b">"
        r = c.cmd(b"FETCH " + seq.encode() + b" (" + spec + b")")
        r = b"".join(r)
        pre = b"* " + seq.encode() + b" FETCH ("
        assert r.startswith(pre) and r.endswith(b")\r\n"), r
        sec.append(r[len(pre):-3])
    open(os.path.join(D, name + ".sections.dovecot.txt"), "wb").write(b"\r\n".join(sec) + b"\r\n")
c.cmd(b"LOGOUT") if False else None
print("ok")
