"""Python's http.client against c-examples/http_server: GET with a query, a urlencoded POST,
keep-alive reuse, a chunked upload, HEAD, and the header limit. Exits non-zero on a failure.
For tests/http_clients.rs.

    python3 http_client_check.py PORT
"""
import http.client
import sys
import urllib.parse

port = int(sys.argv[1])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

conn.request("GET", "/?note=" + urllib.parse.quote("from python"))
r = conn.getresponse()
page = r.read().decode()
assert r.status == 200, r.status
assert "<li>note = from python</li>" in page, page
assert r.getheader("Date"), "a Date header"
assert int(r.getheader("Content-Length")) == len(page.encode())
sock = conn.sock

body = urllib.parse.urlencode({"note": "posted & encoded", "device": "Garage Door"})
conn.request("POST", "/", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
r = conn.getresponse()
page = r.read().decode()
assert "<li>note = posted &amp; encoded</li>" in page, page
assert "<li>device = Garage Door</li>" in page, page
assert conn.sock is sock, "the connection was kept alive and reused"


def chunks():
    yield b"note=chun"
    yield b"ked+upload"


conn.request("POST", "/", body=chunks(), encode_chunked=True,
             headers={"Content-Type": "application/x-www-form-urlencoded", "Transfer-Encoding": "chunked"})
r = conn.getresponse()
page = r.read().decode()
assert "<li>note = chunked upload</li>" in page, page

conn.request("GET", "/")
get_length = len(conn.getresponse().read())
conn.request("HEAD", "/")
r = conn.getresponse()
assert r.read() == b"", "HEAD has no body"
assert int(r.getheader("Content-Length")) == get_length, (r.getheader("Content-Length"), get_length)
assert conn.sock is sock

conn.request("GET", "/", headers={"X-Big": "a" * 20000})
r = conn.getresponse()
assert r.status == 431, r.status
r.read()
print("python http.client: all checks passed")
