"""A mobile client's day with imapclient (a real client library), CONDSTORE and QRESYNC
(RFC 7162): a first full sync into a cache, then another device changes flags, adds a
keyword, expunges two messages and stores a new one, then the client reconnects and
resyncs the way Thunderbird and K-9 do with QRESYNC (UID FETCH of the cached UIDs with
CHANGEDSINCE and VANISHED, plus a search for the new UIDs) and, as a CONDSTORE-only client,
without VANISHED (expunges found by UID SEARCH). Both resynced caches must equal a fresh full
sync. A conditional STORE (UNCHANGEDSINCE) from a stale client is refused with [MODIFIED].

Usage: imapclient_resync.py PORT USER PASSWORD. Prints one line per finding; the test
compares them across servers and with what they must be.
"""
import sys

from imapclient import IMAPClient

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]


def connect():
    c = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=60)
    c.login(user, password)
    return c


def clean(flags):
    return tuple(sorted(f.decode() for f in flags if f != b"\\Recent"))


def full_sync(c):
    uids = c.search(["ALL"])
    return {u: clean(d[b"FLAGS"]) for u, d in c.fetch(uids, ["FLAGS"]).items()}


def say(*a):
    print(*a, flush=True)


# First sync: the whole mailbox into the cache, with HIGHESTMODSEQ and UIDVALIDITY.
c = connect()
caps = c.capabilities()
say("capabilities", b"CONDSTORE" in caps, b"QRESYNC" in caps)
say("enabled", c.enable("QRESYNC"))
info = c.select_folder("INBOX")
uv, h0 = info[b"UIDVALIDITY"], info[b"HIGHESTMODSEQ"]
cache = full_sync(c)
say("cached", sorted(cache))
c.logout()

# Another device.
d = connect()
d.select_folder("INBOX")
d.add_flags([2], [b"\\Flagged"])
d.add_flags([4], [b"$Label1"])
d.remove_flags([1], [b"\\Seen"])
d.delete_messages([3, 5])
d.expunge()
d.append("INBOX", b"Subject: new\r\n\r\nbody\r\n")
d.logout()

# QRESYNC resync.
c = connect()
c.enable("QRESYNC")
info = c.select_folder("INBOX")
h1 = info[b"HIGHESTMODSEQ"]
say("uidvalidity kept", info[b"UIDVALIDITY"] == uv, "modseq grew", h1 > h0)
known = sorted(cache)
changed = c.fetch(known, ["FLAGS"], modifiers=["CHANGEDSINCE %d" % h0, "VANISHED"])
vanished = c._imap.untagged_responses.pop("VANISHED", [])
say("vanished", [v.decode() for v in vanished])
say("changed", sorted(changed), "with modseq", all(b"MODSEQ" in v for v in changed.values()))
q = dict(cache)
for v in vanished:
    for part in v.decode().replace("(EARLIER) ", "").split(","):
        lo, _, hi = part.partition(":")
        for u in range(int(lo), int(hi or lo) + 1):
            q.pop(u, None)
for u, data in changed.items():
    q[u] = clean(data[b"FLAGS"])
new = c.search(["UID", "%d:*" % (max(known) + 1)])
new = [u for u in new if u > max(known)]
say("new", new)
for u, data in c.fetch(new, ["FLAGS"]).items():
    q[u] = clean(data[b"FLAGS"])
truth = full_sync(c)
say("qresync cache right", q == truth)

# CONDSTORE only (no VANISHED): flags since h0, expunges from the UIDs still there.
c2 = connect()
c2.select_folder("INBOX")
changed = c2.fetch(known, ["FLAGS"], modifiers=["CHANGEDSINCE %d" % h0])
alive = set(c2.search(["ALL"]))
cs = {u: f for u, f in cache.items() if u in alive}
for u, data in changed.items():
    cs[u] = clean(data[b"FLAGS"])
for u, data in c2.fetch([u for u in alive if u not in cs], ["FLAGS"]).items():
    cs[u] = clean(data[b"FLAGS"])
say("condstore cache right", cs == truth)

# Conditional STOREs: against the current HIGHESTMODSEQ they apply; against h0, message 2
# (changed since) is left alone and named in [MODIFIED].
def conditional(uids, since):
    typ, data = c2._imap._simple_command(
        "UID", "STORE", uids, "(UNCHANGEDSINCE %d)" % since, "+FLAGS.SILENT", "(\\Draft)"
    )
    text = data[-1].decode()
    return typ, text[: text.index("]") + 1] if text.startswith("[") else "no code"


say("current store", *conditional("4", h1))
say("stale store", *conditional("2", h0))
say("flags now", full_sync(c2))
c2.logout()
c.logout()
