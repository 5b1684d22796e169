"""The Pythonic layer: a :class:`Context` with listeners, connections and callbacks.

Every callback is a plain Python callable, set on the context (``ctx.on_data = f``) or passed
to its constructor. They run one at a time: on a thread of the context's own
(``dispatch="thread"``: a Python thread that pumps the library's poll dispatch, so Python
callbacks do not pay for a foreign thread taking the GIL each time) or inside
:meth:`Context.poll` on the caller's thread (``dispatch="poll"``); with ``dispatch="inline"``
on xtnet's network threads, different connections' at the same time (each callback takes the
GIL from a library thread: slower from Python than the other two, see BENCHMARKS.md).
A connection's ``info`` is copied once and the same object is passed to each of its events. Data is ``bytes``
in and out (``str`` is accepted where data is sent and encoded as UTF-8). A failed call
raises :class:`XtError` with xtnet's error code and text.

An exception raised by a callback is printed (with its traceback) to ``sys.stderr`` and does
not stop the context; a ``on_new_connection`` that raises refuses the connection.
"""

import ctypes
import logging
import os
import selectors
import sys
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

from . import _native
from ._native import lib

#: What may be sent: bytes-like, or text (sent as UTF-8).
Data = Union[bytes, bytearray, memoryview, str]

# ---------------------------------------------------------------- constants (as in xtnet.h)

OK = 0
ERR_LOST_CONNECTION = 102
ERR_NAME_RESOLUTION = 103
ERR_ADDRESS_IN_USE = 105
ERR_INVALID_STATE = 106
ERR_INVALID_PORT = 107
ERR_OUT_OF_MEMORY = 108
ERR_INVALID_ARGUMENT = 1001
ERR_PANIC = 1002

OPT_MAX_MESSAGE_LEN = 1
OPT_WRITE_QUEUE_LIMIT = 2
OPT_ALLOW_PRIVILEGED_PORTS = 3
OPT_LISTEN_BACKLOG = 4
OPT_IDLE_TIMEOUT_MS = 5
OPT_CONNECT_TIMEOUT_MS = 6
OPT_HTTP_MAX_HEADER_BYTES = 7
OPT_HTTP_MAX_BODY_BYTES = 8
OPT_HTTP_REQUEST_TIMEOUT_MS = 9
OPT_PEER_LOOKUP_MS = 10
OPT_HTTP_DEFER_TIMEOUT_MS = 11
OPT_MULTICAST_REFRESH_MS = 12
OPT_NETWORK_THREADS = 13
TRUST_SYSTEM = 0
TRUST_CA_FILE = 1
TRUST_PIN = 2
TRUST_ANY = 3
ERR_TLS_HANDSHAKE = 1010
ERR_TLS_UNTRUSTED = 1011
ERR_TIMEOUT = 1012
ERR_WEBSOCKET = 1013
OPT_WS_MAX_MESSAGE_BYTES = 14
WS_TEXT = 1
WS_BINARY = 2
FRAME_RAW = 0
FRAME_BOUNDARY = 1
FRAME_LENGTH = 2
DGRAM_UNICAST = 1
DGRAM_BROADCAST = 2
DGRAM_MULTICAST = 3

STAT_CONNECTIONS = 1
STAT_LISTENERS = 2
STAT_BACKLOG_BYTES = 3
STAT_PEER_CACHE_ENTRIES = 4
STAT_PEER_LOOKUPS = 5
STAT_ACCEPT_ERRORS = 6

LOG_ERROR = 1
LOG_WARNING = 2
LOG_INFO = 3
LOG_DEBUG = 4

BROADCAST_ADDRESS = "255.255.255.255"

#: Where the library's log lines go when a context has no ``on_log``: Python's logging.
_LOGGER = logging.getLogger("xtnet")
_LOG_LEVELS = {
    LOG_ERROR: logging.ERROR,
    LOG_WARNING: logging.WARNING,
    LOG_INFO: logging.INFO,
    LOG_DEBUG: logging.DEBUG,
}

_DISPATCH = {"thread": 0, "poll": 1, "inline": 2}


class XtError(Exception):
    """A failed xtnet call: ``code`` is xtnet's number (102-108, 1001, 1002 or a system errno),
    ``message`` its text."""

    def __init__(self, code, message):
        self.code = code
        self.message = message
        super().__init__(f"xtnet error {code}: {message}")


def version() -> str:
    """The library's version, "MAJOR.MINOR.PATCH"."""
    return lib.xt_version().decode()


def error_text(code: int) -> str:
    """The text for any xtnet error code."""
    return lib.xt_error_text(code).decode("utf-8", "replace")


def _last_error():
    code = lib.xt_last_error()
    message = lib.xt_last_error_message()
    return XtError(code, message.decode("utf-8", "replace") if message else error_text(code))


def _check(rc):
    if rc != OK:
        raise XtError(rc, (lib.xt_last_error_message() or b"").decode("utf-8", "replace"))


def _port(port):
    """A port number, checked here: ctypes would silently truncate 70000 to 16 bits."""
    port = int(port)
    if not 0 <= port <= 65535:
        raise XtError(ERR_INVALID_PORT, f"port {port} is not in 0..65535")
    return port


def _data(data):
    """Data to send: text (UTF-8) or bytes-like. Anything else is a mistake (``bytes(42)``
    would be 42 NUL bytes), so it is refused."""
    if isinstance(data, str):
        return data.encode("utf-8", "surrogateescape")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"data to send must be str or bytes, not {type(data).__name__}")


def _text(p):
    return p.decode("utf-8", "replace") if p else ""


# ---------------------------------------------------------------- what callbacks receive


@dataclass(frozen=True)
class ConnectionInfo:
    """A connection and its peer (a copy: it stays valid after the callback)."""

    remote_address: str
    remote_port: int  # the LOCAL port (the listening port for accepted connections)
    peer_port: int
    name: str  # Bonjour/local name, "?" when unknown
    mac_address: str  # "aa:bb:cc:dd:ee:ff", zeros when unknown
    unique_id: str  # the connection id as text
    server_id: int  # the listener that accepted it; 0 for an outgoing connection
    error_number: int = 0  # in on_socket_error only
    error_message: str = ""
    tls_peer_fingerprint: str = ""  # hex SHA-256 of the peer's key; "" without TLS
    tls_protocol: str = ""  # "TLSv1.3", "TLSv1.2"; "" without TLS
    message_kind: int = 0  # in on_data of a WebSocket: WS_TEXT or WS_BINARY

    @classmethod
    def _copy(cls, p):
        i = p.contents
        return cls(
            _text(i.remote_address),
            i.remote_port,
            i.peer_port,
            _text(i.name),
            _text(i.mac_address),
            _text(i.unique_id),
            i.server_id,
            i.error_number,
            _text(i.error_message),
            _text(i.tls_peer_fingerprint),
            _text(i.tls_protocol),
            i.message_kind,
        )


@dataclass(frozen=True)
class DatagramInfo:
    """The sender of a datagram (a copy)."""

    remote_address: str
    remote_port: int  # the sender's port
    local_port: int  # the port it arrived on
    name: str
    mac_address: str
    local_address: str = ""  # its destination: our address, the group, or the broadcast address
    interface_name: str = ""  # the arrival interface ("eth0")
    interface_index: int = 0
    kind: int = 0  # DGRAM_UNICAST, DGRAM_BROADCAST or DGRAM_MULTICAST


@dataclass
class UploadedFile:
    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class Request:
    """An HTTP request (a copy, built before the handler runs)."""

    method: str
    path: str  # percent-decoded, without the query
    query: str  # raw, without "?"
    headers: list  # [(name in lower case, value)], in order
    body: bytes
    form: list  # [(name, value)]: query fields, then urlencoded or multipart text fields
    files: list  # [UploadedFile]
    info: ConnectionInfo  # the requester
    server_id: int = 0
    id: int = 0  # the request's id: answer it later with Context.reply(id, ...) after LATER
    _response: object = field(default=None, repr=False, compare=False)

    def accept_websocket(self, subprotocol: Optional[str] = None) -> int:
        """Inside the page handler of a WebSocket upgrade request: the request's connection
        becomes a WebSocket with its own connection id (returned; send to it at once). Its
        messages come to on_data (``info.message_kind`` WS_TEXT or WS_BINARY), its end to
        on_socket_error. XtError 106 when the request is no valid upgrade (it gets 400) or
        outside the handler; 1001 for a subprotocol the client did not offer."""
        if self._response is None:
            raise XtError(ERR_INVALID_STATE, "only inside the page handler")
        proto = None if subprotocol is None else str(subprotocol).encode("utf-8")
        cid = lib.xt_http_response_accept_websocket(self._response, proto)
        if not cid:
            raise _last_error()
        return cid

    def header(self, name: str) -> Optional[str]:
        """The first header called `name` (any case), or None."""
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def form_value(self, name: str) -> Optional[str]:
        """The first form field called `name`, or None."""
        return next((v for k, v in self.form if k == name), None)


@dataclass
class Response:
    """What a page handler answers. ``body`` may be bytes or str (sent as UTF-8)."""

    body: object = b""
    status: int = 200
    headers: list = field(default_factory=list)  # [(name, value)]


def _pair_list(count, at, r):
    out = []
    for i in range(count(r)):
        k, v = ctypes.c_char_p(), ctypes.c_char_p()
        if at(r, i, ctypes.byref(k), ctypes.byref(v)):
            out.append((_text(k.value), _text(v.value)))
    return out


def _read_request(server_id, r):
    size = ctypes.c_size_t()
    body_p = lib.xt_http_request_body(r, ctypes.byref(size))
    body = ctypes.string_at(body_p, size.value) if body_p and size.value else b""
    files = []
    for i in range(lib.xt_http_request_file_count(r)):
        f, n, c = ctypes.c_char_p(), ctypes.c_char_p(), ctypes.c_char_p()
        d, length = _native.c_uint8_p(), ctypes.c_size_t()
        if lib.xt_http_request_file_at(
            r, i, ctypes.byref(f), ctypes.byref(n), ctypes.byref(c), ctypes.byref(d),
            ctypes.byref(length),
        ):
            data = ctypes.string_at(d, length.value) if length.value else b""
            files.append(UploadedFile(_text(f.value), _text(n.value), _text(c.value), data))
    return Request(
        method=_text(lib.xt_http_request_method(r)),
        path=_text(lib.xt_http_request_path(r)),
        query=_text(lib.xt_http_request_query(r)),
        headers=_pair_list(lib.xt_http_request_header_count, lib.xt_http_request_header_at, r),
        body=body,
        form=_pair_list(lib.xt_http_request_form_count, lib.xt_http_request_form_at, r),
        files=files,
        info=ConnectionInfo._copy(lib.xt_http_request_info(r)),
        server_id=server_id,
        id=lib.xt_http_request_id(r),
    )


def _tls_options(trust=TRUST_SYSTEM, ca_file=None, pin_sha256=None, server_name=None,
                 cert_file=None, key_file=None):
    enc = lambda s: None if s is None else str(s).encode("utf-8")  # noqa: E731
    return _native.XtTlsOptions(
        ctypes.sizeof(_native.XtTlsOptions), int(trust), enc(ca_file), enc(pin_sha256),
        enc(server_name), enc(cert_file), enc(key_file),
    )


class _Later:
    """What a page handler returns to answer later: see :data:`LATER`."""

    def __repr__(self):
        return "xtnet.LATER"


#: Returned by a page handler: the request waits for :meth:`Context.reply` with its
#: ``request.id`` (from any thread), or gets 504 after ``OPT_HTTP_DEFER_TIMEOUT_MS``.
LATER = _Later()


def _as_response(answer):
    """A handler's answer: a Response, bytes/str (200), (status, body) or
    (status, headers, body) with headers a dict or a list of pairs."""
    if isinstance(answer, Response):
        return answer
    if answer is None:
        return Response()
    if isinstance(answer, (bytes, bytearray, str)):
        return Response(body=answer)
    if isinstance(answer, tuple) and len(answer) == 2:
        return Response(status=answer[0], body=answer[1])
    if isinstance(answer, tuple) and len(answer) == 3:
        headers = answer[1].items() if isinstance(answer[1], dict) else answer[1]
        return Response(status=answer[0], headers=list(headers), body=answer[2])
    raise TypeError(f"a page handler returned {type(answer).__name__}; see xtnet.Response")


def _write_response(resp, answer):
    _check(lib.xt_http_response_set_status(resp, int(answer.status)))
    for k, v in answer.headers:
        _check(lib.xt_http_response_add_header(resp, str(k).encode(), str(v).encode()))
    body = _data(answer.body)
    _check(lib.xt_http_response_set_body(resp, body, len(body)))


# ---------------------------------------------------------------- listeners


class _Listener:
    kind = ""

    def __init__(self, ctx: "Context", server_id: int, port: Optional[int] = None) -> None:
        self.ctx = ctx
        self.id = server_id
        self._port = port

    @property
    def port(self) -> int:
        """The port it listens on (0 for an id that is not a live listener). Looked up only
        when asked: a listener made from a kept id just to send or stop costs no lookup."""
        if self._port is None:
            self._port = lib.xt_listener_port(self.ctx._live(), self.id)
        return self._port

    def __repr__(self):
        return f"<xtnet {self.kind} listener {self.id} on port {self.port}>"


class TcpListener(_Listener):
    """A TCP (or TLS) listener: ``id``, ``port``; made by Context.start_tcp_listener and
    start_tls_listener, or from an id kept earlier (``TcpListener(ctx, id)``)."""

    kind = "TCP"

    def stop(self) -> None:
        """Stops listening and ends its connections (each gets its on_socket_error)."""
        if not lib.xt_stop_tcp_listener(self.ctx._live(), self.id):
            raise _last_error()

    @property
    def fingerprint(self) -> str:
        """A TLS listener's certificate fingerprint (hex SHA-256 of its key), for clients to
        pin; XtError 106 for a listener without TLS."""
        fp = lib.xt_listener_fingerprint(self.ctx._live(), self.id)
        if fp is None:
            raise _last_error()
        return _text(fp)


class UdpListener(_Listener):
    """A UDP listener: ``id``, ``port``; made by Context.start_udp_listener, or from an id kept
    earlier (``UdpListener(ctx, id)``)."""

    kind = "UDP"

    def stop(self) -> None:
        """Stops receiving and leaves the listener's groups."""
        if not lib.xt_stop_udp_listener(self.ctx._live(), self.id):
            raise _last_error()

    def join(self, group: str, interface: Optional[str] = None) -> None:
        """Joins a multicast group on every interface, or on one (name or address)."""
        ok = (
            lib.xt_join_multicast_group(self.ctx._live(), self.id, group.encode())
            if interface is None
            else lib.xt_join_multicast_group_on(
                self.ctx._live(), self.id, group.encode(), interface.encode()
            )
        )
        if not ok:
            raise _last_error()

    def leave(self, group: str, interface: Optional[str] = None) -> None:
        """Leaves a group joined on every interface, or on one."""
        ok = (
            lib.xt_leave_multicast_group(self.ctx._live(), self.id, group.encode())
            if interface is None
            else lib.xt_leave_multicast_group_on(
                self.ctx._live(), self.id, group.encode(), interface.encode()
            )
        )
        if not ok:
            raise _last_error()

    def send_to(self, address: str, port: int, data: Data) -> None:
        """Sends one datagram from this listener's port; address may be BROADCAST_ADDRESS or a
        multicast group."""
        data = _data(data)
        _check(lib.xt_send_datagram(self.ctx._live(), self.id, address.encode(), _port(port), data, len(data)))

    def send_on(self, interface: str, address: str, port: int, data: Data) -> None:
        """Sends one datagram out of `interface` only (a name such as "eth0", or one of its
        addresses): the reply to a query from the interface it arrived on
        (``info.interface_name``)."""
        data = _data(data)
        _check(lib.xt_send_datagram_on(
            self.ctx._live(), self.id, str(interface).encode(), str(address).encode(),
            _port(port), data, len(data),
        ))

    @property
    def dropped(self) -> int:
        """Datagrams dropped because the callbacks fell behind."""
        return lib.xt_udp_dropped(self.ctx._live(), self.id)


class HtmlListener(_Listener):
    """An HTTP (or HTTPS) listener: ``id``, ``port``; made by Context.start_html_listener and
    start_https_listener, or from an id kept earlier (``HtmlListener(ctx, id)``)."""

    kind = "HTTP"

    def stop(self) -> None:
        """Stops serving; its WebSockets end too (close code 1001)."""
        if not lib.xt_stop_html_listener(self.ctx._live(), self.id):
            raise _last_error()

    @property
    def fingerprint(self) -> str:
        """An HTTPS listener's certificate fingerprint; XtError 106 for plain HTTP."""
        return TcpListener.fingerprint.fget(self)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- the context


class _Pump:
    """The thread of a thread-dispatch Context: waits on the context's wakeup descriptor and
    runs its callbacks (xt_poll) until stopped."""

    def __init__(self, ptr):
        self._ptr = ptr
        self._stop_r, self._stop_w = os.pipe()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="xtnet-callbacks", daemon=True)
        self._thread.start()

    def _run(self):
        sel = selectors.DefaultSelector()
        sel.register(lib.xt_wakeup_fd(self._ptr), selectors.EVENT_READ)
        sel.register(self._stop_r, selectors.EVENT_READ)
        while not self._stopping:
            sel.select()
            if not self._stopping:
                lib.xt_poll(self._ptr, 0)
        sel.close()

    def stop(self) -> None:
        """Ends the thread (from any other thread); callbacks still waiting then run in
        xt_context_free."""
        self._stopping = True
        os.write(self._stop_w, b"x")
        if self._thread is not threading.current_thread():
            self._thread.join()
        os.close(self._stop_r)
        os.close(self._stop_w)


class Context:
    """One xtnet context: its own threads, listeners and connections.

    ``dispatch`` says where callbacks run: "thread" (default; one thread of the context's own,
    one callback at a time), "poll" (inside :meth:`poll` on the caller's thread) or "inline"
    (on the library's network threads, several at once: the callbacks must be thread-safe, and
    each takes the GIL, so it is the slowest choice from Python).

    Callbacks (each optional; set them before starting listeners):

    - ``on_new_connection(conn_id, info) -> bool``: accept (True) or refuse an incoming
      connection. Without it every connection is accepted.
    - ``on_connected(conn_id, info)``: an outgoing connection is open.
    - ``on_data(conn_id, data, info)``: one message (without its boundary) or raw chunk.
    - ``on_socket_error(conn_id, info)``: the connection's last event; ``info.error_number``
      is 102 for a normal close.
    - ``on_datagram(server_id, data, info)``: a UDP datagram with its DatagramInfo.
    - ``on_page_request(request) -> answer``: an HTTP request; see :func:`_as_response` for
      what it may return (a Response, bytes/str, (status, body), (status, headers, body)).
      Without it every request gets 404.
    - ``on_log(level, message)``: the library's log (LOG_ERROR..LOG_DEBUG). Without it the lines
      go to ``logging.getLogger("xtnet")`` at the matching level.
    - ``on_interface_changed(interface, address, up)``: an interface came up or went down, or
      gained or lost an address ("" for a link without one); multicast memberships have
      followed already.

    Use as a context manager, or call :meth:`close`.
    """

    on_new_connection: Optional[Callable[[int, ConnectionInfo], bool]]
    on_connected: Optional[Callable[[int, ConnectionInfo], Any]]
    on_data: Optional[Callable[[int, bytes, ConnectionInfo], Any]]
    on_socket_error: Optional[Callable[[int, ConnectionInfo], Any]]
    on_datagram: Optional[Callable[[int, bytes, DatagramInfo], Any]]
    on_page_request: Optional[Callable[[Request], Any]]
    on_log: Optional[Callable[[int, str], Any]]
    on_interface_changed: Optional[Callable[[str, str, bool], Any]]

    def __init__(self, dispatch: str = "thread", **callbacks: Any) -> None:
        if dispatch not in _DISPATCH:
            raise ValueError('dispatch is "thread", "poll" or "inline"')
        self.dispatch = dispatch
        self.on_new_connection = callbacks.pop("on_new_connection", None)
        self.on_connected = callbacks.pop("on_connected", None)
        self.on_data = callbacks.pop("on_data", None)
        self.on_socket_error = callbacks.pop("on_socket_error", None)
        self.on_datagram = callbacks.pop("on_datagram", None)
        self.on_page_request = callbacks.pop("on_page_request", None)
        self.on_log = callbacks.pop("on_log", None)
        self.on_interface_changed = callbacks.pop("on_interface_changed", None)
        if callbacks:
            raise TypeError(f"unknown callbacks: {', '.join(callbacks)}")
        # Whether this thread runs one of this context's callbacks now (close() is refused
        # there); per thread, since inline dispatch calls from several at once.
        self._inside = threading.local()
        # Each connection's info, copied once (it does not change), by (id, message kind);
        # dropped with the connection's final event.
        self._infos: "dict[tuple[int, int], ConnectionInfo]" = {}
        self._ptr = None
        # The C function pointers must live as long as the context: kept here.
        self._table = _native.XtCallbacks(
            struct_size=ctypes.sizeof(_native.XtCallbacks),
            user_data=None,
            release=_native.RELEASE(),
            new_connection=_native.NEW_CONNECTION(self._c_new_connection),
            connected=_native.CONNECTED(self._c_connected),
            data_available=_native.DATA_AVAILABLE(self._c_data),
            socket_error=_native.SOCKET_ERROR(self._c_socket_error),
            received_datagram=_native.RECEIVED_DATAGRAM(self._c_datagram),
            page_request=_native.PAGE_REQUEST(self._c_page_request),
            log=_native.LOG(self._c_log),
            interface_changed=_native.INTERFACE_CHANGED(self._c_interface_changed),
        )
        # Thread dispatch runs on a poll context pumped by a Python thread of its own: each
        # callback then comes from a thread Python already knows, holding the GIL for a
        # whole batch, instead of a foreign library thread taking the GIL once per callback
        # (measured: benches/python_echo.rs). To the program it is the same: callbacks one at
        # a time on a thread of the context's own.
        native = "poll" if dispatch == "thread" else dispatch
        self._ptr = lib.xt_context_new(ctypes.byref(self._table), _DISPATCH[native])
        if not self._ptr:
            raise _last_error()
        self._pump = None
        if dispatch == "thread":
            self._pump = _Pump(self._ptr)

    # -- life

    def close(self) -> None:
        """Ends everything: every connection gets its on_socket_error (102), callbacks waiting
        run, then no callback runs again. Not from inside one of this context's callbacks
        (XtError 106)."""
        if getattr(self._inside, "on", False):
            raise XtError(ERR_INVALID_STATE, "close() cannot be called from inside a callback")
        if self._ptr:
            if self._pump is not None:
                self._pump.stop()
            ptr, self._ptr = self._ptr, None
            lib.xt_context_free(ptr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def _live(self):
        if not self._ptr:
            raise XtError(ERR_INVALID_STATE, "the context is closed")
        return self._ptr

    def _poll_dispatch(self, what):
        if self.dispatch != "poll":
            raise XtError(ERR_INVALID_STATE, f"{what} is for contexts with dispatch=\"poll\"")

    def poll(self, timeout_ms: int = 0) -> int:
        """Poll dispatch: runs the callbacks that are waiting (waiting up to `timeout_ms` for
        one, -1 = forever) on this thread; returns how many ran."""
        self._poll_dispatch("poll()")
        n = lib.xt_poll(self._live(), timeout_ms)
        if n < 0:
            raise _last_error()
        return n

    def wakeup_fd(self) -> int:
        """Poll dispatch: a descriptor readable while callbacks wait (for select/selectors)."""
        self._poll_dispatch("wakeup_fd()")
        fd = lib.xt_wakeup_fd(self._live())
        if fd < 0:
            raise _last_error()
        return fd

    def set_option(self, option: int, value: int) -> None:
        """Sets an ``OPT_...`` option (the header's XT_OPT_ table gives each one's range)."""
        _check(lib.xt_set_option(self._live(), option, int(value)))

    def get_option(self, option: int) -> int:
        """The current value of an ``OPT_...`` option."""
        v = lib.xt_get_option(self._live(), option)
        if v < 0:
            raise _last_error()
        return v

    def set_bind_address(self, address: str) -> None:
        """Listeners started afterwards bind this address only ("" = every interface)."""
        _check(lib.xt_set_bind_address(self._live(), address.encode()))

    def stat(self, counter: int) -> int:
        """A ``STAT_...`` counter of this context (connections, bytes, drops...)."""
        v = lib.xt_get_stat(self._live(), counter)
        if v < 0:
            raise _last_error()
        return v

    # -- TCP

    def start_tcp_listener(self, port: int, boundary: Data = b"\r\n") -> "TcpListener":
        """A framed TCP listener on `port` (0 = any free port); `boundary` splits each
        connection's stream into messages (b"" = raw chunks)."""
        boundary = _data(boundary)
        sid = lib.xt_start_tcp_listener(self._live(), _port(port), boundary, len(boundary))
        if not sid:
            raise _last_error()
        return TcpListener(self, sid, lib.xt_listener_port(self._ptr, sid))

    def start_tls_listener(self, port: int, boundary: Data = b"\r\n",
                           cert_file: Optional[str] = None, key_file: Optional[str] = None,
                           ca_file: Optional[str] = None) -> "TcpListener":
        """A framed TCP listener over TLS, presenting the PEM chain `cert_file` with its
        `key_file`, or (neither given) a self-signed certificate made for this host; its
        `fingerprint` is what clients pin. With `ca_file`, clients must present a
        certificate from that CA (its fingerprint is info.tls_peer_fingerprint)."""
        boundary = _data(boundary)
        opts = _tls_options(TRUST_ANY, ca_file=ca_file, cert_file=cert_file, key_file=key_file)
        sid = lib.xt_start_tls_listener(
            self._live(), _port(port), boundary, len(boundary), ctypes.byref(opts)
        )
        if not sid:
            raise _last_error()
        return TcpListener(self, sid, lib.xt_listener_port(self._ptr, sid))

    def open_tcp_connection(self, host: str, port: int, boundary: Data = b"\r\n") -> int:
        """Connects to host:port in the background; returns the connection id at once.
        on_connected follows, or on_socket_error (103 for a name that does not resolve)."""
        boundary = _data(boundary)
        cid = lib.xt_open_tcp_connection(
            self._live(), host.encode(), _port(port), boundary, len(boundary)
        )
        if not cid:
            raise _last_error()
        return cid

    def open_tls_connection(self, host: str, port: int, boundary: Data = b"\r\n",
                            trust: Optional[int] = None, ca_file: Optional[str] = None,
                            pin_sha256: Optional[str] = None, server_name: Optional[str] = None,
                            cert_file: Optional[str] = None,
                            key_file: Optional[str] = None) -> int:
        """Like :meth:`open_tcp_connection`, over TLS. `trust` is TRUST_SYSTEM (default),
        TRUST_CA_FILE (with `ca_file`), TRUST_PIN (with `pin_sha256`, the hex SHA-256 of the
        device's key) or TRUST_ANY (trust on first use: read info.tls_peer_fingerprint and pin
        it next time). An untrusted certificate ends in on_socket_error 1011 with its
        fingerprint; other handshake failures 1010. `cert_file`/`key_file`: a client
        certificate for servers that ask for one."""
        boundary = _data(boundary)
        opts = _tls_options(
            TRUST_SYSTEM if trust is None else trust, ca_file, pin_sha256, server_name,
            cert_file, key_file,
        )
        cid = lib.xt_open_tls_connection(
            self._live(), host.encode(), _port(port), boundary, len(boundary), ctypes.byref(opts)
        )
        if not cid:
            raise _last_error()
        return cid

    def open_websocket(self, url: str, trust: Optional[int] = None,
                       ca_file: Optional[str] = None, pin_sha256: Optional[str] = None,
                       server_name: Optional[str] = None, cert_file: Optional[str] = None,
                       key_file: Optional[str] = None) -> int:
        """Opens a WebSocket to a ws:// or wss:// URL in the background; returns its
        connection id at once. on_connected follows the handshake (or on_socket_error: 1013
        when the server refuses the upgrade, the TLS codes for wss). For wss, trust as in
        :meth:`open_tls_connection`. Then as an accepted WebSocket: one on_data per message."""
        opts = None
        if str(url).lower().startswith("wss:") or trust is not None or ca_file or pin_sha256:
            opts = ctypes.byref(_tls_options(
                TRUST_SYSTEM if trust is None else trust, ca_file, pin_sha256, server_name,
                cert_file, key_file,
            ))
        cid = lib.xt_open_websocket(self._live(), str(url).encode("utf-8"), opts)
        if not cid:
            raise _last_error()
        return cid

    def send_websocket(self, conn_id: int, data: Data, binary: bool = False) -> None:
        """Sends one WebSocket message: text (a str, or UTF-8 bytes) or, with `binary`, binary.
        :meth:`send` on a WebSocket sends text."""
        data = _data(data)
        kind = WS_BINARY if binary else WS_TEXT
        _check(lib.xt_send_websocket(self._live(), int(conn_id), data, len(data), kind))

    def send(self, conn_id: int, data: Data) -> None:
        """Queues data on a connection (copied; never blocks; any thread)."""
        if type(data) is not bytes:  # the common case needs no conversion
            data = _data(data)
        rc = lib.xt_send_data(self._ptr or self._live(), conn_id, data, len(data))
        if rc:
            _check(rc)

    def reply(self, request_id: int, status: int = 200, body: Data = b"",
              content_type: Optional[str] = None) -> None:
        """Answers an HTTP request its page handler deferred (returned :data:`LATER`): any
        thread, once. XtError 106 when it no longer waits (answered, timed out, client gone)."""
        body = _data(body)
        ctype = None if content_type is None else str(content_type).encode("utf-8")
        _check(lib.xt_http_reply(self._live(), int(request_id), int(status), ctype, body, len(body)))

    def set_framing(self, conn_id: int, boundary: Optional[Data] = None,
                    length: Optional[int] = None, timeout_ms: int = 0) -> None:
        """How a connection's stream is split from the next byte not yet delivered (inside
        on_data: the byte after that message): on `boundary`, into messages of `length` bytes,
        or (neither) raw chunks; with `timeout_ms`, bytes that wait that long without
        completing a message come as one."""
        if boundary is not None and length is not None:
            raise ValueError("a boundary or a length, not both")
        b = b"" if boundary is None else _data(boundary)
        mode = FRAME_BOUNDARY if boundary is not None else FRAME_LENGTH if length is not None else FRAME_RAW
        _check(lib.xt_set_framing(
            self._live(), int(conn_id), mode, b, len(b), int(length or 0), int(timeout_ms)
        ))

    def disconnect(self, conn_id: int) -> None:
        """Closes a connection once what was sent is written; on_socket_error (102) follows."""
        _check(lib.xt_disconnect(self._live(), int(conn_id)))

    # -- UDP and HTTP

    def local_address_for(self, remote_address: str) -> str:
        """This host's address that `remote_address` reaches it on (the routing table's
        answer; nothing is sent): for an SSDP LOCATION, a GENA CALLBACK, an mDNS A record."""
        out = ctypes.create_string_buffer(64)
        _check(lib.xt_local_address_for(self._live(), str(remote_address).encode(), out, len(out)))
        return out.value.decode()

    def send_wake_on_lan(self, mac_address: str, interface: Optional[str] = None) -> None:
        """Sends the Wake-on-LAN magic packet for `mac_address` as a broadcast out of every
        interface (or `interface` only)."""
        iface = None if interface is None else str(interface).encode()
        _check(lib.xt_send_wake_on_lan(self._live(), str(mac_address).encode(), iface))

    def start_udp_listener(self, port: int) -> "UdpListener":
        """Receives datagrams on `port` (0: any free port), shared with other programs so
        discovery ports (1900, 5353) work; each goes to on_datagram."""
        sid = lib.xt_start_udp_listener(self._live(), _port(port))
        if not sid:
            raise _last_error()
        return UdpListener(self, sid, lib.xt_listener_port(self._ptr, sid))

    def start_html_listener(self, port: int) -> "HtmlListener":
        """An HTTP/1.1 server; requests go to on_page_request, answered inline, later
        (:data:`LATER`), or turned into WebSockets (:meth:`Request.accept_websocket`)."""
        sid = lib.xt_start_html_listener(self._live(), _port(port))
        if not sid:
            raise _last_error()
        return HtmlListener(self, sid, lib.xt_listener_port(self._ptr, sid))

    def start_https_listener(self, port: int, cert_file: Optional[str] = None,
                             key_file: Optional[str] = None,
                             ca_file: Optional[str] = None) -> "HtmlListener":
        """The HTML listener over TLS (also wss://): the PEM chain `cert_file` with its
        `key_file`, or a self-signed certificate made for this host (see its `fingerprint`);
        with `ca_file`, clients must present a certificate from that CA."""
        opts = _tls_options(TRUST_ANY, ca_file=ca_file, cert_file=cert_file, key_file=key_file)
        sid = lib.xt_start_https_listener(self._live(), _port(port), ctypes.byref(opts))
        if not sid:
            raise _last_error()
        return HtmlListener(self, sid, lib.xt_listener_port(self._ptr, sid))

    # -- the C callbacks (borrowed pointers are copied before the Python callable runs)

    def _run(self, where, fn, *args, failed=None):
        """Runs a Python callback: marks this thread as inside one (close() is refused
        there), and turns an exception into a printed traceback and `failed`."""
        inside = self._inside
        inside.on = True
        try:
            return fn(*args)
        except Exception:
            print(f"xtnet: exception in {where}:", file=sys.stderr)
            traceback.print_exc()
            return failed
        finally:
            inside.on = False

    def _info(self, cid, address):
        """The connection's info for a data event at `address`: copied once per connection."""
        kind = ctypes.c_uint32.from_address(address + _native.MESSAGE_KIND_OFFSET).value
        info = self._infos.get((cid, kind))
        if info is None:
            info = ConnectionInfo._copy(ctypes.cast(address, _native.INFO_P))
            self._infos[(cid, kind)] = info
        return info

    def _c_new_connection(self, _ud, cid, info):
        if self.on_new_connection is None:
            return True
        return bool(
            self._run(
                "on_new_connection (the connection is refused)",
                self.on_new_connection,
                cid,
                ConnectionInfo._copy(info),
                failed=False,
            )
        )

    def _c_connected(self, _ud, cid, info):
        if self.on_connected is not None:
            self._run("on_connected", self.on_connected, cid, ConnectionInfo._copy(info))

    def _c_data(self, _ud, data, length, cid, info):
        on_data = self.on_data
        if on_data is not None:
            payload = ctypes.string_at(data, length) if length else b""
            self._run("on_data", on_data, cid, payload, self._info(cid, info))

    def _c_socket_error(self, _ud, cid, info):
        self._infos.pop((cid, 0), None)
        self._infos.pop((cid, WS_TEXT), None)
        self._infos.pop((cid, WS_BINARY), None)
        if self.on_socket_error is not None:
            self._run("on_socket_error", self.on_socket_error, cid, ConnectionInfo._copy(info))

    def _c_datagram(self, _ud, sid, data, length, info):
        if self.on_datagram is not None:
            i = info.contents
            sender = DatagramInfo(
                _text(i.remote_address), i.remote_port, i.local_port, _text(i.name),
                _text(i.mac_address), _text(i.local_address), _text(i.interface_name),
                i.interface_index, i.kind,
            )
            payload = ctypes.string_at(data, length) if length else b""
            self._run("on_datagram", self.on_datagram, sid, payload, sender)

    def _c_page_request(self, _ud, sid, request, response):
        if self.on_page_request is None:
            lib.xt_http_response_set_status(response, 404)
            return

        def answer():
            req = _read_request(sid, request)
            req._response = response
            try:
                result = self.on_page_request(req)
            finally:
                req._response = None  # the response pointer dies with the callback
            if result is LATER:
                if not lib.xt_http_response_defer(response):
                    raise XtError(lib.xt_last_error(), _text(lib.xt_last_error_message()))
                return True
            _write_response(response, _as_response(result))
            return True

        if not self._run("on_page_request (answered 500)", answer, failed=False):
            lib.xt_http_response_set_status(response, 500)
            lib.xt_http_response_set_body(response, b"internal error", 14)

    def _c_log(self, _ud, level, message):
        if self.on_log is not None:
            self._run("on_log", self.on_log, level, _text(message))
        else:
            _LOGGER.log(_LOG_LEVELS.get(level, logging.INFO), "%s", _text(message))

    def _c_interface_changed(self, _ud, name, address, up):
        if self.on_interface_changed is not None:
            self._run("on_interface_changed", self.on_interface_changed, _text(name),
                      _text(address), bool(up))


__all__ = [name for name in dir() if name.isupper() and not name.startswith("_")] + [
    "ConnectionInfo",
    "Context",
    "DatagramInfo",
    "HtmlListener",
    "Request",
    "Response",
    "TcpListener",
    "UdpListener",
    "UploadedFile",
    "XtError",
    "error_text",
    "version",
]
