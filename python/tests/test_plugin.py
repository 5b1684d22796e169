"""`python -m xtnet.plugin`: a plugin file written against XTension's names, run on xtnet.

The plugin below is the seed page's own example code (XTStartTCPListener with its error check,
XTNewConnection and XTSocketError, bodies as printed there with the quotes straightened),
plus two lines that give it a port and an XTDataAvailable so it has something to answer."""

import os
import socket
import subprocess
import sys
import time

from conftest import free_port, read_lines, wait_for

PYTHON_DIR = os.path.join(os.path.dirname(__file__), "..")

# Also run, installed with pip, by tests/python_install.rs.
with open(os.path.join(os.path.dirname(__file__), "seed_plugin.txt")) as f:
    SEED_PLUGIN = f.read()


def run_plugin(tmp_path, port, seconds=20):
    plugin = tmp_path / "seed_plugin.py"
    plugin.write_text(SEED_PLUGIN)
    log = tmp_path / "plugin.log"
    env = dict(os.environ, PLUGIN_PORT=str(port), PYTHONPATH=PYTHON_DIR)
    proc = subprocess.Popen(
        [sys.executable, "-m", "xtnet.plugin", str(plugin), "--log", str(log),
         "--max-seconds", str(seconds)],
        env=env,
    )
    return proc, log


def log_lines(log):
    if not log.exists():
        return []
    # Each line: "YYYY-MM-DD HH:MM:SS text"
    return [line[20:] for line in log.read_text().splitlines()]


def test_the_seed_example_runs_as_a_plugin(tmp_path):
    port = free_port()
    proc, log = run_plugin(tmp_path, port)
    try:
        deadline = time.monotonic() + 10
        while True:  # the plugin's listener comes up
            try:
                s = socket.create_connection(("127.0.0.1", port))
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline and proc.poll() is None, "the plugin never listened"
                time.sleep(0.05)
        with s:
            s.sendall(b"hello\r\n")
            assert read_lines(s, 1, b"\r\n") == b"echo hello\r\n"
        wait_for(lambda: len(log_lines(log)) >= 3, what="the log")
    finally:
        proc.terminate()
        assert proc.wait(10) == 0, "SIGTERM ends the runner cleanly"
    assert log_lines(log) == [
        "A new connection was received from address: 127.0.0.1",
        "the connection from Mac Address: 00:00:00:00:00:00 has been closed",
        "error 102 the peer closed the connection has occurred.",
    ]


def test_the_seed_error_check_logs_a_busy_port(tmp_path):
    busy = socket.create_server(("0.0.0.0", 0))
    port = busy.getsockname()[1]
    proc, log = run_plugin(tmp_path, port, seconds=1)
    assert proc.wait(20) == 0
    busy.close()
    lines = log_lines(log)
    assert f"an error occurred trying to bind a new listener to port {port}" in lines, lines
    assert any(line.startswith(f"XTStartTCPListener({port}): error 105") for line in lines), lines
