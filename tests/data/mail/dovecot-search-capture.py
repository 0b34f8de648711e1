import os
exec(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "dovecot-capture.py")).read().split("c = C()")[0])
c = C(); c.cmd(b"LOGIN test pass"); c.cmd(b"SELECT INBOX")
names = dict((int(s), n) for s, n in (l.split() for l in open("/tmp/dvmime/order.txt")))
Q = [("BODY", x) for x in ["purple elephant", "zebra crossing", "münchen", "MÜNCHEN", "café", "brûlée",
        "saturday works", "oxwGvUY", "Sent from my iPhone", "räksmörgås", "résumé", "photos — enjoy", "lait",
        "flowed", "Original message", "a plain part inside", "body of the first entry", "longname", "enjoy!",
        "preamble", "epilogue", "no close delimiter", "two lines", "caf=E9", "8-bit subject", "global body",
        "Group addresses", "\U0001F44D", "market at 10", "multi-part message"]]
Q += [("TEXT", x) for x in ["lunch", "andré", "pirard", "grüße", "Smörgåsbord", "team replies", "octet-stream",
        "iPhone Mail", "Original message", "zebra", "Keith Moore", "€uro", "list-request", "nomv", "x-empty"]]
Q += [("SUBJECT", x) for x in ["lunch", "grüße", "prämie", "€uro", "smörgåsbord", "ignored", "second", "", "re:", "\"quoted\""]]
Q += [("FROM", x) for x in ["andré", "alice", "jürgen", "müller", "example.com", "", "doe, john"]]
Q += [("TO", x) for x in ["undisclosed", "bjørn", "moore", "bob"]]
Q += [("CC", x) for x in ["friends", "carol", "françois – café"]]
Q += [("BCC", x) for x in ["hidden", ""]]
Q += [("HEADER X-Mailer", "iphone"), ("HEADER Content-Language", ""), ("HEADER Message-ID", "folded"),
      ("HEADER In-Reply-To", "prev-1"), ("HEADER References", "")]
Q += [(k, d) for k in ["SENTON", "SENTBEFORE", "SENTSINCE"] for d in ["3-Mar-2026", "9-Mar-2026", "16-Mar-2026", "8-Mar-2026"]]
out = []
for key, needle in Q:
    if key.startswith("SENT"):
        cmd = ("SEARCH %s %s" % (key, needle)).encode()
    else:
        nb = needle.encode()
        cmd = b"SEARCH CHARSET UTF-8 " + key.encode() + b" {%d+}\r\n" % len(nb) + nb
    r = c.cmd(cmd)
    nums = [int(x) for x in r[0].split()[2:]]
    out.append("%s\t%s\t%s" % (key, needle, ",".join(sorted(names[n] for n in nums))))
open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "search.dovecot.txt"), "w").write("\n".join(out) + "\n")
print("\n".join(out))
