"""The Pythonic layer over the C library, with real sockets on loopback."""

import os
import re
import select
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

import xtnet
from conftest import read_lines, wait_for

HEADER = os.path.join(os.path.dirname(__file__), "..", "..", "include", "xtnet.h")


def test_constants_match_the_header():
    text = open(HEADER).read()
    defines = dict(re.findall(r"#define XT_([A-Z_]+) (\d+)", text))
    assert defines, "no #define in the header?"
    for name, value in defines.items():
        assert getattr(xtnet, name) == int(value), name
    assert xtnet.BROADCAST_ADDRESS == re.search(r'#define XT_BROADCAST_ADDRESS "([^"]+)"', text)[1]


def test_a_missing_library_says_where_it_looked():
    env = dict(os.environ, XTNET_LIBRARY="/nonexistent/libxtnet.so", LD_LIBRARY_PATH="")
    env["PYTHONPATH"] = os.path.join(os.path.dirname(__file__), "..")
    out = subprocess.run(
        [sys.executable, "-c", "import xtnet"], env=env, capture_output=True, text=True,
        cwd="/",
    )
    assert out.returncode != 0
    assert "LibraryNotFound" in out.stderr
    assert "/nonexistent/libxtnet.so" in out.stderr
    assert "XTNET_LIBRARY" in out.stderr


def test_framed_echo_with_events_in_order():
    events = []
    with xtnet.Context() as ctx:
        ctx.on_new_connection = lambda cid, info: events.append(("new", cid, info)) or True
        ctx.on_data = lambda cid, data, info: (events.append(("data", cid, data)), ctx.send(cid, data.upper() + b"\n"))
        ctx.on_socket_error = lambda cid, info: events.append(("error", cid, info))
        listener = ctx.start_tcp_listener(0, b"\n")
        assert listener.port > 0
        with socket.create_connection(("127.0.0.1", listener.port)) as s:
            s.sendall(b"hello\nwor")
            s.sendall(b"ld\n")
            assert read_lines(s, 2) == b"HELLO\nWORLD\n"
        wait_for(lambda: any(e[0] == "error" for e in events), what="socket_error")
    kinds = [e[0] for e in events]
    assert kinds == ["new", "data", "data", "error"]
    new_info, err_info = events[0][2], events[-1][2]
    assert new_info.remote_address == "127.0.0.1"
    assert new_info.remote_port == listener.port
    assert new_info.unique_id == str(events[0][1])
    assert (new_info.name, new_info.mac_address) == ("?", "00:00:00:00:00:00")
    assert err_info.error_number == xtnet.ERR_LOST_CONNECTION


def test_refusing_and_a_raising_callback_refuse_the_connection():
    calls = []

    def refuse_then_raise(cid, info):
        calls.append(cid)
        if len(calls) == 1:
            return False
        raise RuntimeError("a plugin bug")

    with xtnet.Context(on_new_connection=refuse_then_raise) as ctx:
        port = ctx.start_tcp_listener(0).port
        for _ in range(2):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.settimeout(5)
                assert s.recv(10) == b"", "refused: closed at once"
        assert len(calls) == 2
        assert ctx.stat(xtnet.STAT_CONNECTIONS) == 0


def test_outgoing_connection_and_name_resolution_error():
    server = socket.create_server(("127.0.0.1", 0))
    events = []
    with xtnet.Context(
        on_connected=lambda cid, info: events.append(("connected", cid, info)),
        on_data=lambda cid, data, info: events.append(("data", cid, data)),
        on_socket_error=lambda cid, info: events.append(("error", cid, info.error_number)),
    ) as ctx:
        cid = ctx.open_tcp_connection("127.0.0.1", server.getsockname()[1], b"\r\n")
        peer, _ = server.accept()
        peer.sendall(b"hi\r\n")
        wait_for(lambda: ("data", cid, b"hi") in events, what="data")
        assert events[0][0] == "connected" and events[0][2].server_id == 0
        bad = ctx.open_tcp_connection("no-such-host.invalid", 80)
        wait_for(lambda: ("error", bad, xtnet.ERR_NAME_RESOLUTION) in events, what="103")
        peer.close()
        wait_for(lambda: ("error", cid, xtnet.ERR_LOST_CONNECTION) in events, what="102")
    server.close()


def test_errors_raise_with_code_and_text():
    with xtnet.Context() as ctx:
        busy = ctx.start_tcp_listener(0)
        with pytest.raises(xtnet.XtError) as e:
            ctx.start_tcp_listener(busy.port)
        assert e.value.code == xtnet.ERR_ADDRESS_IN_USE
        assert str(busy.port) in e.value.message
        for port in (80, 70000, -1):
            with pytest.raises(xtnet.XtError) as e:
                ctx.start_tcp_listener(port)
            assert e.value.code == xtnet.ERR_INVALID_PORT, port
        with pytest.raises(xtnet.XtError) as e:
            ctx.send(987654, b"x")
        assert e.value.code == xtnet.ERR_INVALID_STATE
        with pytest.raises(xtnet.XtError) as e:
            ctx.set_option(xtnet.OPT_MAX_MESSAGE_LEN, -5)
        assert e.value.code == xtnet.ERR_INVALID_ARGUMENT
        busy.stop()
        with pytest.raises(xtnet.XtError):
            busy.stop()
    with pytest.raises(xtnet.XtError) as e:
        ctx.start_tcp_listener(0)
    assert e.value.code == xtnet.ERR_INVALID_STATE, "a closed context"
    assert xtnet.error_text(102)


def test_poll_dispatch_runs_callbacks_only_inside_poll():
    got = []
    with xtnet.Context("poll", on_data=lambda cid, d, i: got.append(d)) as ctx:
        port = ctx.start_tcp_listener(0, b"\n").port
        fd = ctx.wakeup_fd()
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"one\n")
            readable, _, _ = select.select([fd], [], [], 5)
            assert readable == [fd], "the descriptor wakes the host's loop"
            assert got == [], "nothing runs outside poll()"
            wait_for(lambda: got == [b"one"], poll=ctx, what="data in poll")


def test_close_inside_a_callback_is_refused():
    seen = []

    def on_data(cid, data, info):
        try:
            ctx.close()
        except xtnet.XtError as e:
            seen.append(e.code)

    with xtnet.Context(on_data=on_data) as ctx:
        port = ctx.start_tcp_listener(0, b"\n").port
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"x\n")
            wait_for(lambda: seen, what="the callback")
        assert seen == [xtnet.ERR_INVALID_STATE]
        assert ctx.stat(xtnet.STAT_LISTENERS) == 1, "still open"


def test_udp_datagrams_in_and_replies_out():
    got = []
    with xtnet.Context() as ctx:
        listener = ctx.start_udp_listener(0)

        def on_datagram(sid, data, info):
            got.append((sid, data, info))
            listener.send_to(info.remote_address, info.remote_port, b"re: " + data)

        ctx.on_datagram = on_datagram
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(b"ping", ("127.0.0.1", listener.port))
            reply, sender = s.recvfrom(100)
            assert reply == b"re: ping"
            assert sender[1] == listener.port, "replies leave from the listening port"
            sid, data, info = got[0]
            assert (sid, data) == (listener.id, b"ping")
            assert info.remote_port == s.getsockname()[1] and info.local_port == listener.port
        with pytest.raises(xtnet.XtError) as e:
            listener.join("10.1.2.3")
        assert e.value.code == xtnet.ERR_INVALID_ARGUMENT
        listener.join("239.255.255.250")
        listener.leave("239.255.255.250")
        assert listener.dropped == 0


def test_http_pages_answered_inline():
    seen = []

    def page(request):
        seen.append(request)
        if request.path == "/boom":
            raise ValueError("handler bug")
        if request.method == "POST":
            name = request.form_value("name")
            return 201, {"X-Name-Length": str(len(name))}, f"hello {name}"
        return f"<p>{request.path} {request.query}</p>"

    with xtnet.Context(on_page_request=page) as ctx:
        port = ctx.start_html_listener(0).port
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(base + "/a%20b?x=1&y=2") as r:
            assert r.status == 200 and r.read() == b"<p>/a b x=1&y=2</p>"
            assert r.headers["Content-Type"].startswith("text/html")
        body = urllib.parse.urlencode({"name": "Zoë"}).encode()
        with urllib.request.urlopen(base + "/form", data=body) as r:
            assert r.status == 201 and r.headers["X-Name-Length"] == "3"
            assert r.read().decode() == "hello Zoë"
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + "/boom")
        assert e.value.code == 500
    request = seen[0]
    assert (request.method, request.path, request.query) == ("GET", "/a b", "x=1&y=2")
    assert request.form == [("x", "1"), ("y", "2")]
    assert request.header("host") == f"127.0.0.1:{port}"
    assert request.info.remote_address == "127.0.0.1"
    assert seen[1].body == body

    with xtnet.Context() as ctx:
        port = ctx.start_html_listener(0).port
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/")
        assert e.value.code == 404, "no handler: 404"


def test_a_page_answered_later_from_another_thread():
    import threading

    waiting = []

    def on_page(request):
        waiting.append(request.id)
        return xtnet.LATER

    with xtnet.Context(on_page_request=on_page) as ctx:
        listener = ctx.start_html_listener(0)
        results = {}

        def client(path):
            with urllib.request.urlopen(f"http://127.0.0.1:{listener.port}{path}") as r:
                results[path] = (r.status, r.headers["Content-Type"], r.read())

        threads = [threading.Thread(target=client, args=(p,)) for p in ("/a", "/b")]
        for t in threads:
            t.start()
        wait_for(lambda: len(waiting) == 2, what="both requests deferred")
        for rid in waiting:
            ctx.reply(rid, 202, f"later {rid}", "text/plain")
        for t in threads:
            t.join()
        assert sorted(r[0] for r in results.values()) == [202, 202]
        assert all(r[1] == "text/plain" for r in results.values())
        assert sorted(r[2] for r in results.values()) == sorted(f"later {i}".encode() for i in waiting)
        with pytest.raises(xtnet.XtError) as e:
            ctx.reply(waiting[0], 200, "twice")
        assert e.value.code == xtnet.ERR_INVALID_STATE


def test_a_deferred_page_not_answered_in_time_gets_504():
    with xtnet.Context(on_page_request=lambda request: xtnet.LATER) as ctx:
        ctx.set_option(xtnet.OPT_HTTP_DEFER_TIMEOUT_MS, 200)
        listener = ctx.start_html_listener(0)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{listener.port}/")
        assert e.value.code == 504


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """A self-signed device certificate served by Python's ssl: a line echo on loopback."""
    import ssl
    import threading

    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(d / "k.pem"), "-out", str(d / "c.pem"), "-days", "2",
         "-subj", "/CN=device"], check=True, capture_output=True)
    fp = subprocess.run(
        f"openssl x509 -in {d / 'c.pem'} -pubkey -noout | openssl pkey -pubin -outform DER"
        " | openssl dgst -sha256 -r", shell=True, check=True, capture_output=True, text=True,
    ).stdout.split()[0]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "c.pem", d / "k.pem")
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(raw, server_side=True) as conn:
                    f = conn.makefile("rwb", buffering=0)
                    for line in f:
                        f.write(line)
            except (OSError, ssl.SSLError):
                pass

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], fp
    listener.close()


def test_tls_trust_on_first_use_then_pinned(tls_server):
    port, fingerprint = tls_server
    seen, ends = [], []
    with xtnet.Context(
        on_connected=lambda cid, info: seen.append(info),
        on_data=lambda cid, data, info: seen.append(data),
        on_socket_error=lambda cid, info: ends.append(info),
    ) as ctx:
        cid = ctx.open_tls_connection("127.0.0.1", port, b"\n", trust=xtnet.TRUST_ANY)
        wait_for(lambda: seen, what="connected")
        assert seen[0].tls_peer_fingerprint == fingerprint and seen[0].tls_protocol == "TLSv1.3"
        ctx.send(cid, "hi\n")
        wait_for(lambda: b"hi" in seen, what="the echo")
        pinned = ctx.open_tls_connection("127.0.0.1", port, b"\n", trust=xtnet.TRUST_PIN,
                                         pin_sha256=fingerprint.upper())
        wait_for(lambda: len(seen) >= 3, what="the pinned connection")
        ctx.disconnect(pinned)
        ctx.open_tls_connection("127.0.0.1", port, b"\n", trust=xtnet.TRUST_PIN,
                                pin_sha256="00" * 32)
        wait_for(lambda: any(e.error_number == xtnet.ERR_TLS_UNTRUSTED for e in ends),
                 what="the refused pin")
        refused = [e for e in ends if e.error_number == xtnet.ERR_TLS_UNTRUSTED][0]
        assert refused.tls_peer_fingerprint == fingerprint
        assert fingerprint in refused.error_message


def test_a_self_signed_tls_listener_pinned_by_its_fingerprint():
    got = []
    with xtnet.Context(on_data=lambda cid, data, info: got.append((data, info))) as ctx:
        listener = ctx.start_tls_listener(0, b"\n")
        fp = listener.fingerprint
        assert len(fp) == 64
        cid = ctx.open_tls_connection("127.0.0.1", listener.port, b"\n", trust=xtnet.TRUST_PIN,
                                      pin_sha256=fp)
        deadline = time.monotonic() + 10
        while True:
            try:
                ctx.send(cid, b"pinned\n")
                break
            except xtnet.XtError:  # 106 until the handshake is done
                assert time.monotonic() < deadline, "never connected"
                time.sleep(0.02)
        wait_for(lambda: got, what="the message")
        assert got[0][0] == b"pinned" and got[0][1].tls_protocol == "TLSv1.3"
        plain = ctx.start_tcp_listener(0)
        with pytest.raises(xtnet.XtError) as e:
            plain.fingerprint
        assert e.value.code == xtnet.ERR_INVALID_STATE


def test_a_live_page_over_https_and_wss_with_the_websockets_package():
    websockets = pytest.importorskip("websockets.sync.client")
    import ssl
    import urllib.request

    got, ends = [], []

    def page(request):
        if request.path == "/live":
            cid = request.accept_websocket()
            ctx.send(cid, "hello from the host")
            return None
        return "<p>status</p>"

    ctx = xtnet.Context(
        on_page_request=page,
        on_data=lambda cid, data, info: (got.append((data, info.message_kind)),
                                         ctx.send_websocket(cid, data, binary=info.message_kind == xtnet.WS_BINARY)),
        on_socket_error=lambda cid, info: ends.append(info),
    )
    with ctx:
        listener = ctx.start_https_listener(0)
        fp = listener.fingerprint
        assert len(fp) == 64
        insecure = ssl.create_default_context()
        insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
        page_text = urllib.request.urlopen(f"https://127.0.0.1:{listener.port}/", context=insecure).read()
        assert page_text == b"<p>status</p>"
        with websockets.connect(f"wss://127.0.0.1:{listener.port}/live", ssl=insecure) as ws:
            assert ws.recv() == "hello from the host"
            ws.send(b"\x01\x02")
            assert ws.recv() == b"\x01\x02"
            ws.send("text")
            assert ws.recv() == "text"
        wait_for(lambda: ends, what="the close")
        assert got == [(b"\x01\x02", xtnet.WS_BINARY), (b"text", xtnet.WS_TEXT)]
        assert ends[0].error_number == xtnet.ERR_LOST_CONNECTION and "(1000)" in ends[0].error_message
        assert ends[0].tls_protocol == "TLSv1.3"
        # An xtnet client pins the listener and gets the same greeting.
        greeted = []
        client = xtnet.Context(on_data=lambda cid, data, info: greeted.append(data))
        with client:
            client.open_websocket(f"wss://127.0.0.1:{listener.port}/live", trust=xtnet.TRUST_PIN,
                                  pin_sha256=fp)
            wait_for(lambda: greeted, what="the greeting")
            assert greeted == [b"hello from the host"]
        # A request that is no upgrade cannot become a WebSocket.
        with pytest.raises(xtnet.XtError) as e:
            xtnet.Request("GET", "/", "", [], b"", [], [], None).accept_websocket()
        assert e.value.code == xtnet.ERR_INVALID_STATE


def test_datagram_arrival_info_the_local_address_and_wake_on_lan_arguments():
    got = []
    with xtnet.Context(on_datagram=lambda sid, data, info: got.append(info)) as ctx:
        listener = ctx.start_udp_listener(0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"hello", ("127.0.0.1", listener.port))
            wait_for(lambda: got, what="the datagram")
            info = got[0]
            assert info.local_address == "127.0.0.1" and info.kind == xtnet.DGRAM_UNICAST
            assert info.interface_name == "lo" and info.interface_index > 0
            # A reply out of the arrival interface reaches the sender.
            listener.send_on(info.interface_name, info.remote_address, info.remote_port, b"back")
            assert s.recvfrom(100)[0] == b"back"
        assert ctx.local_address_for("127.0.0.1") == "127.0.0.1"
        with pytest.raises(xtnet.XtError) as e:
            ctx.local_address_for("not an address")
        assert e.value.code == xtnet.ERR_INVALID_ARGUMENT
        with pytest.raises(xtnet.XtError) as e:
            ctx.send_wake_on_lan("00:11:22")
        assert e.value.code == xtnet.ERR_INVALID_ARGUMENT


@pytest.mark.parametrize("dispatch", ["thread", "poll", "inline"])
def test_every_dispatch_echoes_many_connections_in_order(dispatch):
    threads = set()
    infos = {}

    def on_data(cid, data, info):
        threads.add(__import__("threading").current_thread().name)
        infos.setdefault(cid, set()).add(id(info))
        ctx.send(cid, data + b"\n")

    with xtnet.Context(dispatch=dispatch, on_data=on_data) as ctx:
        if dispatch == "inline":
            ctx.set_option(xtnet.OPT_NETWORK_THREADS, 2)
        listener = ctx.start_tcp_listener(0, b"\n")
        if dispatch == "poll":
            with pytest.raises(xtnet.XtError) as e:
                ctx.set_option(xtnet.OPT_NETWORK_THREADS, 3)  # the network runs already
            assert e.value.code == xtnet.ERR_INVALID_STATE
        clients = [socket.create_connection(("127.0.0.1", listener.port)) for _ in range(6)]
        for rnd in range(20):
            for i, c in enumerate(clients):
                c.sendall(f"{i}:{rnd}\n".encode())
            if dispatch == "poll":
                deadline = time.time() + 5
                while ctx.poll(20) or time.time() < deadline and not all(
                    select.select([c], [], [], 0)[0] for c in clients
                ):
                    pass
            for i, c in enumerate(clients):
                assert read_lines(c, 1) == f"{i}:{rnd}\n".encode()
        for c in clients:
            c.close()
        if dispatch != "poll":
            with pytest.raises(xtnet.XtError) as e:
                ctx.poll(0)
            assert e.value.code == xtnet.ERR_INVALID_STATE
    # One info object per connection, reused for every message.
    assert all(len(ids) == 1 for ids in infos.values()) and len(infos) == 6
    if dispatch == "thread":
        assert threads == {"xtnet-callbacks"}
    if dispatch == "inline":
        assert threads and all(not t.startswith("xtnet-callbacks") for t in threads)


def test_without_on_log_the_library_logs_to_python_logging(caplog):
    caplog.set_level("DEBUG", logger="xtnet")
    with xtnet.Context() as ctx:
        listener = ctx.start_tcp_listener(0, b"\n")
        wait_for(lambda: any("listening" in r.getMessage() for r in caplog.records), what="a log line")
    record = next(r for r in caplog.records if "listening" in r.getMessage())
    assert record.name == "xtnet" and record.levelname == "INFO"
    assert str(listener.port) in record.getMessage()


# Runs in a process of its own with SIGPIPE at its default, as in a C, Swift or Xojo host
# (Python itself ignores the signal, which hides the problem from every other test here).
_RESET_DURING_A_LARGE_RESPONSE = r"""
import signal, socket, ssl, struct, sys, time
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
import xtnet
page = b"x" * (8 << 20)
insecure = ssl.create_default_context()
insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
served = []
def answer(request):
    served.append(request.path)
    return 200, page
with xtnet.Context(on_page_request=answer, dispatch=sys.argv[1]) as ctx:
    port = ctx.start_https_listener(0).port
    for i in range(40):
        raw = socket.create_connection(("127.0.0.1", port))
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        tls = insecure.wrap_socket(raw)
        tls.sendall(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i * 2)
        tls.recv(1000)
        time.sleep(0.002 * (i % 5))
        tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        tls.close()
    time.sleep(0.3)
    assert len(served) >= 40, served
print("alive")
"""


@pytest.mark.parametrize("dispatch", ["thread", "inline"])
def test_a_peer_resetting_during_a_large_https_response_does_not_kill_a_host_without_sigpipe_handling(dispatch):
    run = subprocess.run([sys.executable, "-c", _RESET_DURING_A_LARGE_RESPONSE, dispatch],
                         capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(__file__), "..")))
    assert run.returncode == 0 and run.stdout.strip() == "alive", (run.returncode, run.stdout, run.stderr[-2000:])
