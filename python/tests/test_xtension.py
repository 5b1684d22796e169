"""The XTension names (xtnet.Plugin) with real sockets: what a plugin's code sees."""

import socket
import urllib.parse
import urllib.request

import pytest

from conftest import read_lines, wait_for
from xtnet.xtension import Plugin


@pytest.fixture
def plugin():
    handlers, log = {}, []
    p = Plugin(handlers, log=log.append)
    p.handlers_dict, p.log_lines = handlers, log
    g = p.names()
    p.g = g
    yield p
    p.close()


def test_names_are_spelled_as_xtension_spells_them(plugin):
    for name in [
        "XTStartTCPListener", "XTStopTCPListener", "XTStartUDPListener", "XTStopUDPListener",
        "XTJoinMulticastGroup", "XTLeaveMulticastGroup", "XTSendDatagram",
        "XTStartHTMLListener", "XTWriteLog", "xtKeyRemoteAddress", "xtKeyRemotePort",
        "xtKeyName", "xtKeyMacAddress", "xtKeyUniqueId", "xtKeyErrorNumber",
        "xtKeyErrorMessage", "xtErrorNumber", "xtErrorDescription", "xtBroadcastAddress",
        "true", "false",
        # this project's own, in the same style
        "XTSendData", "XTDisconnect", "XTOpenTCPConnection", "XTStopHTMLListener",
    ]:
        assert name in plugin.g, name
    assert plugin.g["xtBroadcastAddress"] == "255.255.255.255"
    assert plugin.g["true"] is True and plugin.g["false"] is False


def test_a_tcp_conversation(plugin):
    g, h, events = plugin.g, plugin.handlers_dict, []

    def XTNewConnection(theConnectionID, theConnectionInfo):
        events.append(("new", theConnectionID, theConnectionInfo))
        return g["true"]

    def XTDataAvailable(theData, theConnectionID, theConnectionInfo):
        events.append(("data", theData, theConnectionID))
        g["XTSendData"](theConnectionID, "you said " + theData + "\r\n")

    def XTSocketError(theConnectionID, theConnectionInfo):
        events.append(("error", theConnectionID, theConnectionInfo))

    h.update(XTNewConnection=XTNewConnection, XTDataAvailable=XTDataAvailable, XTSocketError=XTSocketError)
    myServer = g["XTStartTCPListener"](0, "\r\n")
    assert isinstance(myServer, int) and myServer > 0
    port = _listener_port(plugin, myServer)
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall("héllo\r\n".encode() + b"\xff\xfe\r\n")
        wait_for(lambda: len(events) >= 3, poll=plugin, what="two messages")
        assert read_lines(s, 2, b"\r\n") == "you said héllo\r\n".encode() + b"you said \xff\xfe\r\n", (
            "text is str; bytes that are not UTF-8 go back unchanged"
        )
    wait_for(lambda: events[-1][0] == "error", poll=plugin, what="XTSocketError")
    kind, cid, info = events[0]
    assert isinstance(cid, str) and cid == info[g["xtKeyUniqueId"]]
    assert info[g["xtKeyRemoteAddress"]] == "127.0.0.1"
    assert info[g["xtKeyRemotePort"]] == port, "the listening port, as XTension documents"
    assert info[g["xtKeyName"]] == "?" and info[g["xtKeyMacAddress"]] == "00:00:00:00:00:00"
    assert events[1] == ("data", "héllo", cid)
    err = events[-1][2]
    assert err[g["xtKeyErrorNumber"]] == 102 == err[g["xtErrorNumber"]]
    assert err[g["xtKeyErrorMessage"]] == err[g["xtErrorDescription"]] != ""
    assert g["XTStopTCPListener"](myServer) is True
    assert g["XTStopTCPListener"](myServer) is False


def _listener_port(plugin, server_id):
    from xtnet._native import lib

    return lib.xt_listener_port(plugin.ctx._ptr, server_id)


def test_errors_return_0_or_false_and_are_logged(plugin):
    g = plugin.g
    first = g["XTStartTCPListener"](0, "\n")
    port = _listener_port(plugin, first)
    assert g["XTStartTCPListener"](port, "\n") == 0
    assert g["XTStartTCPListener"](80, "\n") == 0
    assert g["XTStartUDPListener"](70000) == 0
    assert g["XTSendData"]("424242", "x") is False
    assert g["XTJoinMulticastGroup"](first, "10.0.0.1") is False
    log = "\n".join(plugin.log_lines)
    assert "error 105" in log and "error 107" in log and "error 106" in log, log


def test_without_XTNewConnection_connections_are_refused(plugin):
    g = plugin.g
    port = _listener_port(plugin, g["XTStartTCPListener"](0, "\n"))
    with socket.create_connection(("127.0.0.1", port)) as s:
        for _ in range(50):
            plugin.poll(20)
        assert s.recv(10) == b""
    assert any("no XTNewConnection" in line for line in plugin.log_lines)


def test_outgoing_connection(plugin):
    g, h, events = plugin.g, plugin.handlers_dict, []
    h["XTConnected"] = lambda cid, info: events.append(("connected", cid))
    h["XTDataAvailable"] = lambda data, cid, info: events.append(("data", data, cid))
    server = socket.create_server(("127.0.0.1", 0))
    cid = g["XTOpenTCPConnection"]("127.0.0.1", server.getsockname()[1], "\n")
    assert isinstance(cid, str) and cid
    peer, _ = server.accept()
    peer.sendall(b"welcome\n")
    wait_for(lambda: ("data", "welcome", cid) in events, poll=plugin, what="data")
    assert events[0] == ("connected", cid)
    assert g["XTDisconnect"](cid) is True
    assert peer.recv(10) == b""
    peer.close()
    server.close()


def test_datagrams_and_replies(plugin):
    g, h, got = plugin.g, plugin.handlers_dict, []

    def XTReceivedDatagram(theData, theServerID, theDatagramInfo):
        got.append((theData, theServerID, theDatagramInfo))
        g["XTSendDatagram"](theServerID, theDatagramInfo[g["xtKeyRemoteAddress"]],
                            theDatagramInfo[g["xtKeyRemotePort"]], "pong")

    h["XTReceivedDatagram"] = XTReceivedDatagram
    myServer = g["XTStartUDPListener"](0)
    port = _listener_port(plugin, myServer)
    assert g["XTJoinMulticastGroup"](myServer, "239.255.255.250") is True
    assert g["XTLeaveMulticastGroup"](myServer, "239.255.255.250") is True
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"ping", ("127.0.0.1", port))
        wait_for(lambda: got, poll=plugin, what="the datagram")
        assert s.recvfrom(100)[0] == b"pong"
        data, sid, info = got[0]
        assert (data, sid) == ("ping", myServer)
        assert info[g["xtKeyRemotePort"]] == s.getsockname()[1]
    assert g["XTStopUDPListener"](myServer) is True


def test_page_requests_answered_inline(plugin):
    g, h, seen = plugin.g, plugin.handlers_dict, []

    def XTPageRequest(theServerID, theRequestInfo):
        seen.append(theRequestInfo)
        form = theRequestInfo["xtKeyFormData"]
        return 200, {"Content-Type": "text/plain"}, "hello " + form.get("who", "nobody")

    h["XTPageRequest"] = XTPageRequest
    port = _listener_port(plugin, g["XTStartHTMLListener"](0))
    import threading

    result = {}

    def client():
        body = urllib.parse.urlencode({"who": "XTension"}).encode()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/page?x=1", data=body) as r:
            result["status"], result["type"], result["body"] = r.status, r.headers["Content-Type"], r.read()

    t = threading.Thread(target=client)
    t.start()
    wait_for(lambda: "body" in result, poll=plugin, what="the page")
    t.join()
    assert result == {"status": 200, "type": "text/plain", "body": b"hello XTension"}
    info = seen[0]
    assert info["xtKeyMethod"] == "POST" and info["xtKeyPath"] == "/page"
    assert info["xtKeyQuery"] == "x=1"
    assert info["xtKeyFormData"] == {"x": "1", "who": "XTension"}
    assert info["xtKeyPostData"] == "who=XTension"
    assert info["xtKeyHeaders"]["host"] == f"127.0.0.1:{port}"
    assert info[g["xtKeyRemoteAddress"]] == "127.0.0.1"


def _get(plugin, url):
    """Fetches `url` on a thread while the plugin's events are delivered here."""
    import threading
    import urllib.error

    result = {}

    def client():
        try:
            with urllib.request.urlopen(url) as r:
                result["status"], result["body"] = r.status, r.read()
        except urllib.error.HTTPError as e:
            result["status"], result["body"] = e.code, e.read()

    t = threading.Thread(target=client)
    t.start()
    wait_for(lambda: "body" in result, poll=plugin, what=url)
    t.join()
    return result["status"], result["body"]


def test_sending_a_number_is_an_error_not_nul_bytes(plugin):
    g, h, got = plugin.g, plugin.handlers_dict, []
    h["XTNewConnection"] = lambda cid, info: True

    def XTDataAvailable(theData, theConnectionID, theConnectionInfo):
        got.append(g["XTSendData"](theConnectionID, 42))
        got.append(g["XTSendData"](theConnectionID, None))
        got.append(g["XTSendData"](theConnectionID, "ok\n"))

    h["XTDataAvailable"] = XTDataAvailable
    port = _listener_port(plugin, g["XTStartTCPListener"](0, "\n"))
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"hi\n")
        wait_for(lambda: len(got) == 3, poll=plugin, what="the sends")
        assert read_lines(s, 1) == b"ok\n", "nothing but the text went out"
    assert got == [False, False, True]
    assert any("XTSendData" in l and "not int" in l for l in plugin.log_lines), plugin.log_lines
    udp = g["XTStartUDPListener"](0)
    assert g["XTSendDatagram"](udp, "127.0.0.1", 9, 42) is False
    assert any("XTSendDatagram" in l and "not int" in l for l in plugin.log_lines)


def test_write_log_never_raises_whatever_the_text_holds(tmp_path):
    import subprocess
    import sys
    import os

    plugin_file = tmp_path / "latin1.py"
    plugin_file.write_text(
        "XTWriteLog('device says ' + b'caf\\xe9'.decode('utf-8', 'surrogateescape'))\n"
        "XTWriteLog('\\udcff lone')\n"
        "XTWriteLog(12345)\n"
        "XTWriteLog('after')\n"
        "XTStopPlugin()\n"
    )
    log = tmp_path / "plugin.log"
    env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(__file__), ".."))
    done = subprocess.run(
        [sys.executable, "-m", "xtnet.plugin", str(plugin_file), "--log", str(log)],
        env=env, capture_output=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = [l[20:] for l in log.read_text(encoding="utf-8").splitlines()]
    assert lines == ["device says caf\\xe9", "\\xff lone", "12345", "after"], lines


def test_a_repeated_form_field_keeps_every_value(plugin):
    g, h, seen = plugin.g, plugin.handlers_dict, []

    def XTPageRequest(theServerID, theRequestInfo):
        seen.append(theRequestInfo["xtKeyFormData"])
        return "ok"

    h["XTPageRequest"] = XTPageRequest
    port = _listener_port(plugin, g["XTStartHTMLListener"](0))
    assert _get(plugin, f"http://127.0.0.1:{port}/?light=hall&light=porch&light=attic&dim=50") == (200, b"ok")
    assert seen[0] == {"light": ["hall", "porch", "attic"], "dim": "50"}


def test_a_forgotten_return_true_is_explained_in_the_log(plugin):
    g, h = plugin.g, plugin.handlers_dict
    h["XTNewConnection"] = lambda cid, info: None  # forgot `return true`
    port = _listener_port(plugin, g["XTStartTCPListener"](0, "\n"))
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", port)) as s:
            wait_for(lambda: any("XTNewConnection returned nothing" in l for l in plugin.log_lines),
                     poll=plugin, what="the explanation")
            plugin.poll(50)
            assert s.recv(10) == b"", "refused"
    lines = [l for l in plugin.log_lines if "XTNewConnection returned nothing" in l]
    assert len(lines) == 1 and "return true" in lines[0], plugin.log_lines


def test_a_page_handler_that_returns_nothing_or_a_number_gets_500_and_a_log_line(plugin):
    g, h = plugin.g, plugin.handlers_dict
    answers = {"/none": None, "/int": 42, "/ok": (201, "made")}
    h["XTPageRequest"] = lambda sid, info: answers[info["xtKeyPath"]]
    port = _listener_port(plugin, g["XTStartHTMLListener"](0))
    status, body = _get(plugin, f"http://127.0.0.1:{port}/none")
    assert status == 500 and b"returned nothing" in body and b"(code, page)" in body
    status, body = _get(plugin, f"http://127.0.0.1:{port}/int")
    assert status == 500 and b"returned a int" in body and b"Response" not in body
    assert _get(plugin, f"http://127.0.0.1:{port}/ok") == (201, b"made")
    told = [l for l in plugin.log_lines if l.startswith("XTPageRequest returned")]
    assert len(told) == 2 and all("return the page as text" in l for l in told), plugin.log_lines


def test_a_privileged_port_error_tells_the_plugin_what_to_use(plugin):
    assert plugin.g["XTStartTCPListener"](80, "\n") == 0
    line = [l for l in plugin.log_lines if l.startswith("XTStartTCPListener(80)")][0]
    assert "error 107" in line and "1024 to 65535" in line, line


def test_a_plugin_answers_a_page_later_by_its_request_id(plugin):
    """XTension's "reply later by unique id": the page waits until a device's answer comes."""
    g, h, waiting = plugin.g, plugin.handlers_dict, []

    def XTPageRequest(theServerID, theRequestInfo):
        waiting.append(theRequestInfo[g["xtKeyRequestId"]])
        return g["xtReplyLater"]

    h["XTPageRequest"] = XTPageRequest
    h["XTNewConnection"] = lambda cid, info: True

    def XTDataAvailable(theData, theConnectionID, theConnectionInfo):
        # The device answered: finish every page that waits for it.
        while waiting:
            assert g["XTReplyToRequest"](waiting.pop(0), 200, "text/plain", "device says " + theData)

    h["XTDataAvailable"] = XTDataAvailable
    web = _listener_port(plugin, g["XTStartHTMLListener"](0))
    device = _listener_port(plugin, g["XTStartTCPListener"](0, "\n"))
    import threading

    result = {}

    def client():
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/status") as r:
            result["page"] = (r.status, r.read())

    t = threading.Thread(target=client)
    t.start()
    wait_for(lambda: waiting, poll=plugin, what="the deferred page")
    rid = waiting[0]
    assert isinstance(rid, str) and rid.isdigit()
    with socket.create_connection(("127.0.0.1", device)) as s:
        s.sendall(b"on\n")
        wait_for(lambda: "page" in result, poll=plugin, what="the answer")
    t.join()
    assert result["page"] == (200, b"device says on")
    assert g["XTReplyToRequest"](rid, 200, "", "again") is False
    assert any(l.startswith(f"XTReplyToRequest({rid}): error 106") for l in plugin.log_lines)


def test_a_plugin_opens_a_tls_connection_and_pins_the_device(plugin, tmp_path):
    import ssl
    import subprocess
    import threading

    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(tmp_path / "k.pem"), "-out", str(tmp_path / "c.pem"),
         "-days", "2", "-subj", "/CN=tv"], check=True, capture_output=True)
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        for _ in range(2):
            raw, _ = listener.accept()
            with sctx.wrap_socket(raw, server_side=True) as conn:
                conn.sendall(b"welcome\r\n")
                conn.recv(10)

    threading.Thread(target=serve, daemon=True).start()
    g, h, events = plugin.g, plugin.handlers_dict, []
    h["XTConnected"] = lambda cid, info: events.append(("connected", cid, info))
    h["XTDataAvailable"] = lambda data, cid, info: events.append(("data", data, cid))
    first = g["XTOpenTLSConnection"]("127.0.0.1", port, "\r\n")
    wait_for(lambda: ("data", "welcome", first) in events, poll=plugin, what="first use")
    fp = events[0][2][g["xtKeyTlsFingerprint"]]
    assert len(fp) == 64 and events[0][2][g["xtKeyTlsProtocol"]] == "TLSv1.3"
    g["XTDisconnect"](first)
    second = g["XTOpenTLSConnection"]("127.0.0.1", port, "\r\n", fp)
    wait_for(lambda: ("data", "welcome", second) in events, poll=plugin, what="pinned")
    listener.close()


def test_a_plugin_serves_https_and_accepts_and_opens_websockets(plugin):
    import ssl
    import urllib.request

    g, h, events = plugin.g, plugin.handlers_dict, []

    def XTPageRequest(theServerID, theRequestInfo):
        if theRequestInfo[g["xtKeyPath"]] == "/ws":
            cid = g["XTAcceptWebSocket"](theRequestInfo[g["xtKeyRequestId"]])
            events.append(("accepted", cid))
            g["XTSendData"](cid, "hi")
            return None
        return "plain page"

    def XTDataAvailable(theData, theConnectionID, theConnectionInfo):
        events.append(("data", theData, theConnectionInfo[g["xtKeyMessageKind"]]))
        if theData == "echo me":
            g["XTSendWebSocket"](theConnectionID, theData, True)

    h.update(XTPageRequest=XTPageRequest, XTDataAvailable=XTDataAvailable,
             XTConnected=lambda cid, info: events.append(("connected", cid)),
             XTSocketError=lambda cid, info: events.append(("end", cid, info[g["xtKeyErrorNumber"]])))
    server = g["XTStartHTTPSListener"](0)
    assert server > 0
    fp = g["XTListenerFingerprint"](server)
    assert len(fp) == 64
    port = _listener_port(plugin, server)
    insecure = ssl.create_default_context()
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
    import threading
    fetched = []
    t = threading.Thread(target=lambda: fetched.append(
        urllib.request.urlopen(f"https://127.0.0.1:{port}/", context=insecure).read()))
    t.start()
    wait_for(lambda: fetched, poll=plugin, what="the page")
    assert fetched == [b"plain page"]
    # The plugin's own client: wss to its own listener, pinned.
    client = g["XTOpenWebSocket"](f"wss://127.0.0.1:{port}/ws", fp)
    assert client
    wait_for(lambda: ("data", "hi", "text") in events, poll=plugin, what="the greeting")
    assert ("connected", client) in events
    g["XTSendData"](client, "echo me")
    wait_for(lambda: ("data", "echo me", "binary") in events, poll=plugin, what="the binary echo")
    accepted = next(e[1] for e in events if e[0] == "accepted")
    assert g["XTDisconnect"](client)
    wait_for(lambda: ("end", accepted, 102) in events and ("end", client, 102) in events,
             poll=plugin, what="both ends")
    # Not an upgrade, outside the handler, or a bad URL: "" and a log line.
    assert g["XTAcceptWebSocket"]("12345") == ""
    assert g["XTOpenWebSocket"]("http://nowhere/") == ""
    assert any("XTOpenWebSocket" in line for line in plugin.log_lines)


def test_a_plugin_reads_a_header_line_then_a_binary_block(plugin):
    g, h, got = plugin.g, plugin.handlers_dict, []

    def XTDataAvailable(theData, theConnectionID, theConnectionInfo):
        got.append(theData)
        if theData.startswith("BIN "):
            g["XTSetParsingParams"](theConnectionID, "", int(theData[4:]))
        elif len(got) > 1 and got[-2].startswith("BIN "):
            g["XTSetParsingParams"](theConnectionID, "\r\n")

    h.update(XTNewConnection=lambda cid, info: True, XTDataAvailable=XTDataAvailable)
    server = g["XTStartTCPListener"](0, "\r\n")
    with socket.create_connection(("127.0.0.1", _listener_port(plugin, server))) as s:
        s.sendall(b"BIN 6\r\nab\r\ncdline\r\n")
        wait_for(lambda: len(got) >= 3, poll=plugin, what="three messages")
    assert got == ["BIN 6", "ab\r\ncd", "line"]
    assert g["XTSetParsingParams"]("999999", "", 0) is False
