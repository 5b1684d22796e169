"""Drives headless Chromium (Debian's `chromium`) over the DevTools protocol on a pipe (no
extra packages).

    python3 browser.py URL NOTE   loads a page, fills and submits its form like a user, and
                                  prints the DOM the browser rendered (tests/http_clients.rs)
    python3 browser.py live URL   loads a live page (self-signed HTTPS accepted), prints "live"
                                  once its WebSocket delivered the first status, then reads one
                                  line from stdin and prints the DOM once the page shows that
                                  text, pushed by the host (tests/demo.rs)
"""
import json
import os
import subprocess
import sys
import tempfile
import time

live = sys.argv[1] == "live"
url, note = (sys.argv[2], None) if live else (sys.argv[1], sys.argv[2])
# The binary itself: Debian's /usr/bin/chromium is a shell wrapper.
CHROMIUM = next(
    (p for p in ("/usr/lib/chromium/chromium", "/usr/bin/chromium") if os.path.exists(p)), "chromium"
)
to_chrome_r, to_chrome_w = os.pipe()
from_chrome_r, from_chrome_w = os.pipe()


def child_fds():
    # Chromium reads commands on fd 3 and writes replies on fd 4. Go through high numbers
    # first: the pipes themselves may be numbered 3 and 4.
    a, b = os.dup2(to_chrome_r, 100), os.dup2(from_chrome_w, 101)
    os.dup2(a, 3)
    os.dup2(b, 4)


profile = tempfile.mkdtemp(prefix="xtnet-chromium-")
chrome = subprocess.Popen(
    [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--remote-debugging-pipe",
        f"--user-data-dir={profile}", "about:blank",
    ] + (["--ignore-certificate-errors"] if live else []) + [
    ],
    preexec_fn=child_fds, close_fds=False,
    stdout=subprocess.DEVNULL, stderr=open(os.path.join(profile, "stderr.log"), "wb"),
)
os.close(to_chrome_r)
os.close(from_chrome_w)
out = os.fdopen(to_chrome_w, "wb", buffering=0)
inp = os.fdopen(from_chrome_r, "rb", buffering=0)
pending = b""
next_id = 0
events = []


def read_message():
    global pending
    while b"\0" not in pending:
        chunk = inp.read(65536)
        if not chunk:
            raise SystemExit("chromium closed the pipe")
        pending += chunk
    raw, pending = pending.split(b"\0", 1)
    return json.loads(raw)


def call(method, params=None, session=None):
    global next_id
    next_id += 1
    message = {"id": next_id, "method": method, "params": params or {}}
    if session:
        message["sessionId"] = session
    out.write(json.dumps(message).encode() + b"\0")
    while True:
        m = read_message()
        if m.get("id") == next_id:
            if "error" in m:
                raise SystemExit(f"{method}: {m['error']}")
            return m.get("result", {})
        events.append(m)


def wait_event(name, session, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for i, e in enumerate(events):
            if e.get("method") == name and e.get("sessionId") == session:
                del events[: i + 1]
                return e
        events.append(read_message())
    raise SystemExit(f"no {name} within {timeout}s")


def evaluate(expression, session):
    return call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)["result"].get("value")


def wait_true(expression, session, timeout=20):
    deadline = time.time() + timeout
    while not evaluate(expression, session):
        if time.time() > deadline:
            raise SystemExit(f"never true: {expression}\n" + str(evaluate("document.documentElement.outerHTML", session)))
        time.sleep(0.1)


def follow_live_page(session):
    # The page's script connects its WebSocket and shows "live" with the first pushed status.
    wait_true("document.getElementById('ws').textContent === 'live'", session)
    print("live", flush=True)
    text = sys.stdin.readline().strip()
    wait_true("document.getElementById('live').textContent.includes(%s)" % json.dumps(text), session)
    print(evaluate("document.documentElement.outerHTML", session))


try:
    targets = call("Target.getTargets")["targetInfos"]
    page = next(t for t in targets if t["type"] == "page")
    session = call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]
    call("Page.enable", session=session)
    call("Page.navigate", {"url": url}, session=session)
    wait_event("Page.loadEventFired", session)
    if live:
        follow_live_page(session)
        raise SystemExit(0)
    # What a user does: type a note, pick a device, press Send.
    script = (
        "document.getElementById('note').value = %s;"
        "document.querySelector('select[name=device]').value = 'Garage Door';"
        "document.getElementById('send').click(); true" % json.dumps(note)
    )
    call("Runtime.evaluate", {"expression": script}, session=session)
    wait_event("Page.loadEventFired", session)
    dom = call("Runtime.evaluate", {"expression": "document.documentElement.outerHTML", "returnByValue": True}, session=session)
    print(dom["result"]["value"])
finally:
    try:
        call("Browser.close")
    except BaseException:
        pass
    chrome.kill()
    chrome.wait()
