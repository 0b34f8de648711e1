"""A deliberately broken S3 endpoint for the sync's robustness test (no real S3-compatible
server misbehaves on demand): ListObjectsV2 lists one key twice in a page and another on
two pages, and hands out the same continuation token again with IsTruncated=true; GetObject
serves the files of a directory. Signatures are not checked (what is tested is the sync's
handling of the listing). Usage: broken_s3.py DIR PORTFILE; prints nothing, serves until
killed."""
import hashlib
import http.server
import os
import sys
import urllib.parse

root, portfile = sys.argv[1], sys.argv[2]
keys = sorted(os.listdir(root))  # four messages
PAGES = {None: [keys[0], keys[1], keys[0], keys[2]], "T1": [keys[2], keys[3]]}


def etag(k):
    with open(os.path.join(root, k), "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        parts = u.path.lstrip("/").split("/", 1)
        if "list-type" in q:
            token = q.get("continuation-token", [None])[0]
            listed = PAGES.get(token, [])
            body = ['<?xml version="1.0" encoding="UTF-8"?>',
                    '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
                    f"<Name>{parts[0]}</Name><Prefix></Prefix><KeyCount>{len(listed)}</KeyCount>",
                    "<MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>",
                    "<NextContinuationToken>T1</NextContinuationToken>"]
            for k in listed:
                size = os.path.getsize(os.path.join(root, k))
                body.append(f"<Contents><Key>{k}</Key><LastModified>2026-12-01T10:00:00.000Z"
                            f"</LastModified><ETag>&quot;{etag(k)}&quot;</ETag><Size>{size}</Size>"
                            "<StorageClass>STANDARD</StorageClass></Contents>")
            body.append("</ListBucketResult>")
            data = "".join(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
        elif len(parts) == 2 and parts[1] in keys:
            with open(os.path.join(root, parts[1]), "rb") as f:
                data = f.read()
            self.send_response(200)
            self.send_header("ETag", f'"{etag(parts[1])}"')
            self.send_header("Content-Type", "application/octet-stream")
        else:
            data = b"<Error><Code>NoSuchKey</Code><Message>no</Message></Error>"
            self.send_response(404)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
