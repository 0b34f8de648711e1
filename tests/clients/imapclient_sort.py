"""Server-side sorting and threading with imapclient (a real client library; Roundcube and
mutt ask the same): SORT by date, reverse arrival, subject and from; THREAD=REFERENCES and
ORDEREDSUBJECT; UID forms, which imapclient uses by default; a SORT with a search.

Usage: imapclient_sort.py PORT USER PASSWORD. Prints one line per answer; the test compares
them across servers and with what they must be.
"""
import sys

from imapclient import IMAPClient

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = IMAPClient("127.0.0.1", port=port, ssl=False, timeout=60)
c.login(user, password)
caps = c.capabilities()
print("capabilities", all(x in caps for x in (b"SORT", b"THREAD=REFERENCES", b"THREAD=ORDEREDSUBJECT")))
c.select_folder("INBOX", readonly=True)
print("date", c.sort(["DATE"]))
print("reverse arrival", c.sort(["REVERSE ARRIVAL"]))
print("subject then date", c.sort(["SUBJECT", "DATE"]))
print("from, unseen only", c.sort(["FROM"], ["UNSEEN"]))
print("references", c.thread("REFERENCES"))
print("orderedsubject", c.thread("ORDEREDSUBJECT"))
c.logout()
