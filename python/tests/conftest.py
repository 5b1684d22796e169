"""Shared helpers. Run with the library built: XTNET_LIBRARY=target/debug/libxtnet.so
python3 -m pytest python/tests (tests/python.rs does this as part of `cargo test`)."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
# No test may hang on a socket: every blocking call gives up after 10 s.
socket.setdefaulttimeout(10)


def wait_for(predicate, timeout=10.0, what="condition", poll=None):
    """Waits until predicate() is true; `poll` (a Context or Plugin) is pumped meanwhile."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        if poll is not None:
            poll.poll(20)
        else:
            time.sleep(0.01)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_lines(sock, n, end=b"\n"):
    """Reads until `n` lines (ending in `end`) have arrived."""
    data = b""
    while data.count(end) < n:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data
