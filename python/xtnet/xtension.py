"""The XTension plugin API v2 socket calls and events, with the names XTension's documentation
uses ("Plugin API: Listening For Incoming Connections and Making Outgoing Connections").

A :class:`Plugin` binds those names to one xtnet context and delivers events to the plugin's
own functions, looked up by name each time (so a plugin may define them in any order)::

    plugin = Plugin(handlers=globals())        # or a dict / module with the XT... functions
    globals().update(plugin.names())           # XTStartTCPListener, xtKeyName, true, ...
    myServer = XTStartTCPListener(9000, "\\r\\n")
    ... plugin.run()                           # deliver events until stopped

``python -m xtnet.plugin PLUGIN.py`` does exactly this for a plugin file.

As XTension documents them:

- ``XTStartTCPListener(thePort, theBoundryString)``, ``XTStartUDPListener(thePort)``,
  ``XTStartHTMLListener(thePort)`` return the listener's id number, or 0 on error (the error is
  written to the log). ``XTStopTCPListener(id)``, ``XTStopUDPListener(id)``.
- ``XTJoinMulticastGroup(id, group)`` / ``XTLeaveMulticastGroup`` return True on success.
- ``XTSendDatagram(id, remoteAddress, remotePort, theData)``; ``xtBroadcastAddress``.
- ``XTWriteLog(text)``.
- Events: ``XTNewConnection(theConnectionID, theConnectionInfo)`` returns true to accept (a
  plugin without it refuses incoming connections, as XTension requires it),
  ``XTDataAvailable(theData, theConnectionID, theConnectionInfo)``,
  ``XTSocketError(theConnectionID, theConnectionInfo)``.
- Connection ids are strings; connection info is a dict keyed by ``xtKeyRemoteAddress`` (the
  peer's address), ``xtKeyRemotePort`` (as XTension documents it: the LOCAL port the connection
  came in on — the listening port; for an outgoing connection its local port), ``xtKeyName``,
  ``xtKeyMacAddress``, ``xtKeyUniqueId`` and, in ``XTSocketError``, ``xtKeyErrorNumber`` /
  ``xtKeyErrorMessage`` (``xtErrorNumber`` and ``xtErrorDescription`` name the same two
  entries). This project adds ``xtKeyPeerPort`` (the peer's own port) and ``xtKeyServerId``
  (the listener that accepted it; 0 for an outgoing connection).

This project's own names, in the same style, where XTension's page names no call:

- ``XTSendData(theConnectionID, theData)`` → True/False: write to a connection.
- ``XTDisconnect(theConnectionID)`` → True/False: close it once written (XTSocketError 102
  follows).
- ``XTOpenTCPConnection(theAddress, thePort, theBoundryString)`` → the new connection's id, or
  "" on error; then the event ``XTConnected(theConnectionID, theConnectionInfo)`` (or
  ``XTSocketError``: 103 for a name that does not resolve), then ``XTDataAvailable`` as above.
- ``XTOpenTLSConnection(theAddress, thePort, theBoundryString, thePin)``: the same over TLS,
  trusting only the device whose key has the SHA-256 ``thePin`` (or, without a pin, any device,
  whose ``xtKeyTlsFingerprint`` then tells what to pin); an untrusted certificate ends in
  ``XTSocketError`` 1011. Connection infos carry ``xtKeyTlsFingerprint`` and
  ``xtKeyTlsProtocol`` ("" without TLS).
- ``XTStopHTMLListener(id)``.
- ``XTReceivedDatagram(theData, theServerID, theDatagramInfo)``: the info has
  ``xtKeyRemoteAddress``, ``xtKeyRemotePort`` — here the SENDER's port, what a reply goes to
  (unlike a connection's) —, ``xtKeyLocalPort`` (the listener's), ``xtKeyName``,
  ``xtKeyMacAddress``. Reply with ``XTSendDatagram(theServerID, ...)``.
- ``XTPageRequest(theServerID, theRequestInfo)``: the info has the connection keys plus
  ``xtKeyMethod``, ``xtKeyPath``, ``xtKeyQuery``, ``xtKeyHeaders`` (dict, lower-case names),
  ``xtKeyFormData`` (dict: query, urlencoded and multipart text fields; a field sent more than
  once, such as checkboxes, has a list of its values in order), ``xtKeyPostData`` (the
  body, as text), ``xtKeyFiles`` (list of dicts: ``xtKeyFieldName``, ``xtKeyFileName``,
  ``xtKeyContentType``, ``xtKeyFileData`` as bytes). It returns the page inline: a string (200),
  ``(code, page)`` or ``(code, headersDict, page)``; anything else (or nothing) is answered
  500 and the log says what to return. Without it every request gets 404.
- Answering later (XTension's "reply later by unique id"): ``XTPageRequest`` returns
  ``xtReplyLater`` and keeps ``theRequestInfo[xtKeyRequestId]``; later (from any event)
  ``XTReplyToRequest(theRequestID, theCode, theContentType, thePage)`` answers it (True, or
  False when it no longer waits). Unanswered within 30 s, the client gets 504.
- TLS listeners (XTension's "use SSL" with a PEM path): ``XTStartHTTPSListener(thePort,
  thePEMPath)`` and ``XTStartTLSListener(thePort, theBoundryString, thePEMPath)`` return the
  id like the plain ones; the PEM file holds the certificate chain and its key (one file, or
  give ``theKeyPath`` too). Without a path the listener makes a self-signed certificate, and
  ``XTListenerFingerprint(theServerID)`` tells its fingerprint for devices to pin.
- WebSocket: inside ``XTPageRequest``, ``XTAcceptWebSocket(theRequestInfo[xtKeyRequestId],
  theSubprotocol)`` turns the request's connection into a WebSocket and returns its connection
  id ("" when the request is no upgrade; it then gets 400); what ``XTPageRequest`` returns is
  not used then. ``XTOpenWebSocket(theURL, thePin)`` opens one to ``ws://`` or ``wss://``
  (trust as for ``XTOpenTLSConnection``) and returns its id; ``XTConnected`` follows. Each
  message comes to ``XTDataAvailable`` whole, with ``xtKeyMessageKind`` "text" or "binary" in
  the info; ``XTSendData`` sends text, ``XTSendWebSocket(theConnectionID, theData, isBinary)``
  either; ``XTDisconnect`` closes with a close frame. ``XTSocketError`` 102 tells the close
  code and reason in ``xtKeyErrorMessage``.
- Where a datagram arrived: ``theDatagramInfo`` also has ``xtKeyLocalAddress`` (our address,
  the group, or the broadcast address it was sent to), ``xtKeyInterface`` ("eth0") and
  ``xtKeyDatagramKind`` ("unicast", "broadcast", "multicast"). ``XTSendDatagramOn(theServerID,
  theInterface, remoteAddress, remotePort, theData)`` replies out of that interface;
  ``XTLocalAddressFor(remoteAddress)`` tells which of our addresses a device should call back;
  ``XTSendWakeOnLAN(theMacAddress, theInterface)`` wakes a machine. When the network changes,
  ``XTInterfaceChanged(theInterface, theAddress, isUp)`` is called (groups joined on every
  interface have already followed).
- XTension's parsing modes for one connection: ``XTSetParsingParams(theConnectionID,
  theBoundryString, theLength, theTimeoutMS)`` — a boundary, a fixed length, or neither (raw),
  and a timeout for replies without a terminator; from inside ``XTDataAvailable`` it applies
  from the byte after that message (a header line, then a binary block of known length).
- ``XTStopPlugin()`` (in ``python -m xtnet.plugin``): stop delivering events and end the plugin.
- ``XTNewConnection`` must return ``true`` to accept: one that returns nothing refuses the
  connection, and the log says so once.

Text: ``theData`` arrives as ``str`` (UTF-8; bytes that are not UTF-8 come through unchanged as
surrogate escapes, and go back unchanged when sent). ``XTSendData`` / ``XTSendDatagram`` take
``str`` or ``bytes``; anything else (a number, say) is refused: False, and the log says why.
``XTWriteLog`` never raises: bytes that are not UTF-8 are written as ``\\xe9``.
"""

import datetime
import sys
import time
import traceback
from typing import Any, Callable, Dict, Optional, Union

from .context import (
    BROADCAST_ADDRESS,
    ConnectionInfo,
    ERR_INVALID_ARGUMENT,
    LATER,
    LOG_WARNING,
    Context,
    HtmlListener,
    Response,
    DGRAM_BROADCAST,
    DGRAM_MULTICAST,
    DGRAM_UNICAST,
    TRUST_ANY,
    TRUST_PIN,
    WS_BINARY,
    WS_TEXT,
    TcpListener,
    UdpListener,
    XtError,
)

#: A listener's, connection's or request's id: XTension passes them as text; numbers work too.
Id = Union[int, str]
#: Data a plugin sends: text (as XTension's strings) or bytes.
Text = Union[str, bytes]

# ---------------------------------------------------------------- the documented constants

xtKeyRemoteAddress = "xtKeyRemoteAddress"
xtKeyRemotePort = "xtKeyRemotePort"
xtKeyName = "xtKeyName"
xtKeyMacAddress = "xtKeyMacAddress"
xtKeyUniqueId = "xtKeyUniqueId"
xtKeyErrorNumber = "xtKeyErrorNumber"
xtKeyErrorMessage = "xtKeyErrorMessage"
# "Additional Error Constants": the same two entries of the info dict.
xtErrorNumber = xtKeyErrorNumber
xtErrorDescription = xtKeyErrorMessage
xtBroadcastAddress = BROADCAST_ADDRESS

# ---------------------------------------------------------------- this project's own keys

xtKeyPeerPort = "xtKeyPeerPort"
xtKeyServerId = "xtKeyServerId"
xtKeyLocalPort = "xtKeyLocalPort"
xtKeyMethod = "xtKeyMethod"
xtKeyPath = "xtKeyPath"
xtKeyQuery = "xtKeyQuery"
xtKeyHeaders = "xtKeyHeaders"
xtKeyFormData = "xtKeyFormData"
xtKeyPostData = "xtKeyPostData"
xtKeyFiles = "xtKeyFiles"
xtKeyFieldName = "xtKeyFieldName"
xtKeyFileName = "xtKeyFileName"
xtKeyContentType = "xtKeyContentType"
xtKeyFileData = "xtKeyFileData"
xtKeyRequestId = "xtKeyRequestId"
xtKeyTlsFingerprint = "xtKeyTlsFingerprint"
xtKeyTlsProtocol = "xtKeyTlsProtocol"
xtKeyMessageKind = "xtKeyMessageKind"
xtKeyLocalAddress = "xtKeyLocalAddress"
xtKeyInterface = "xtKeyInterface"
xtKeyDatagramKind = "xtKeyDatagramKind"
# Returned by XTPageRequest: the page comes later, from XTReplyToRequest.
xtReplyLater = LATER

CONSTANTS = {
    name: value
    for name, value in globals().items()
    if name.startswith(("xtKey", "xtError", "xtBroadcast", "xtReply"))
}


def _to_text(data):
    return data.decode("utf-8", "surrogateescape")


def _to_bytes(data):
    """Text or bytes for the wire; anything else (an int would become that many NUL bytes) is
    refused with TypeError, which the XT calls report in the log and answer False."""
    if isinstance(data, str):
        return data.encode("utf-8", "surrogateescape")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"theData must be text (str) or bytes, not {type(data).__name__}")


def printable(text: Any) -> str:
    """`text` made safe for any log: bytes that came in as surrogate escapes (not UTF-8, such
    as Latin-1) are shown as ``\\xe9``; never raises."""
    try:
        return str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except Exception:  # a str subclass with a broken __str__, say
        return repr(text)


_PAGE_FORMS = "return the page as text, (code, page) or (code, headersDict, page)"


_MESSAGE_KINDS = {WS_TEXT: "text", WS_BINARY: "binary"}
_DATAGRAM_KINDS = {DGRAM_UNICAST: "unicast", DGRAM_BROADCAST: "broadcast", DGRAM_MULTICAST: "multicast"}


def connection_info(info: ConnectionInfo) -> Dict[str, Any]:
    """The XTension dict for a ConnectionInfo."""
    d = {
        xtKeyRemoteAddress: info.remote_address,
        xtKeyRemotePort: info.remote_port,
        xtKeyName: info.name,
        xtKeyMacAddress: info.mac_address,
        xtKeyUniqueId: info.unique_id,
        xtKeyPeerPort: info.peer_port,
        xtKeyServerId: info.server_id,
        xtKeyTlsFingerprint: info.tls_peer_fingerprint,
        xtKeyTlsProtocol: info.tls_protocol,
        xtKeyMessageKind: _MESSAGE_KINDS.get(info.message_kind, ""),
    }
    if info.error_number:
        d[xtKeyErrorNumber] = info.error_number
        d[xtKeyErrorMessage] = info.error_message
    return d


class Plugin:
    """An XTension-style plugin host on one xtnet context.

    `handlers` is where the plugin's event functions are found (a dict such as a plugin's
    globals, or any object with attributes); `log` receives each XTWriteLog line (default:
    printed with a time stamp). Events are delivered one at a time on the thread calling
    :meth:`run` / :meth:`poll` (poll dispatch), never concurrently with the plugin's own code.
    """

    def __init__(self, handlers: Any, log: Optional[Callable[[str], Any]] = None) -> None:
        self.handlers = handlers
        self._log = log or self._print_log
        self._refusal_logged = False
        self._request, self._ws_accepted = None, False
        self._none_logged = False
        self.ctx = Context(
            "poll",
            on_new_connection=self._new_connection,
            on_connected=self._connected,
            on_data=self._data,
            on_socket_error=self._socket_error,
            on_datagram=self._datagram,
            on_page_request=self._page_request,
            on_log=self._library_log,
            on_interface_changed=self._interface_changed,
        )
        self._stopped = False

    # -- running

    def poll(self, timeout_ms: int = 0) -> int:
        """Delivers the events waiting (waiting up to `timeout_ms` for one)."""
        return self.ctx.poll(timeout_ms)

    def run(self, max_seconds: Optional[float] = None) -> None:
        """Delivers events until :meth:`stop` (or `max_seconds`)."""
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        while not self._stopped and (deadline is None or time.monotonic() < deadline):
            self.ctx.poll(100)

    def stop(self) -> None:
        """Makes :meth:`run` return after the event it is delivering (callable from a handler)."""
        self._stopped = True

    def close(self) -> None:
        """Stops every listener and connection and frees the context; no event comes after."""
        self.ctx.close()

    # -- the names a plugin sees

    def names(self) -> Dict[str, Any]:
        """The XT functions bound to this plugin, the constants, and ``true``/``false``."""
        names = {
            name: getattr(self, name)
            for name in dir(self)
            if name.startswith("XT") and callable(getattr(self, name))
        }
        names.update(CONSTANTS)
        names.update(true=True, false=False)
        return names

    def XTWriteLog(self, text: Any) -> None:
        """Writes a line to the plugin's log. Never raises, whatever `text` holds."""
        try:
            self._log(printable(text))
        except Exception:  # the log itself failed (a closed file, a full disk): nothing to do
            pass

    def _error(self, call, e):
        hint = ""
        if e.code == 107:
            hint = " (a plugin listens on a port from 1024 to 65535, or 0 for any free port)"
        self.XTWriteLog(f"{call}: error {e.code}: {e.message}{hint}")

    def _try(self, call, action):
        """True when `action()` succeeds; else False, with the error written to the log."""
        try:
            action()
            return True
        except (XtError, ValueError, TypeError) as e:
            self._error(call, _as_xt_error(e))
            return False

    def _start(self, call, start, *args):
        """A listener's id, or 0 with the error written to the log (as XTension does)."""
        try:
            return start(*args).id
        except (XtError, ValueError, TypeError) as e:
            self._error(f"{call}({args[0]})", _as_xt_error(e))
            return 0

    # Listeners are addressed by the ids the plugin kept: the Context's listener objects are
    # made from them, so every call is checked (stale or wrong-kind ids) by the library.

    def XTStartTCPListener(self, thePort: int, theBoundryString: str = "") -> int:
        """Listens for TCP connections on `thePort` (1024-65535, or 0 for any free port),
        cutting received data at `theBoundryString` ("" delivers data as it arrives). The
        listener's id, or 0 with the error written to the log."""
        return self._start(
            "XTStartTCPListener", self.ctx.start_tcp_listener, thePort, _to_bytes(theBoundryString)
        )

    def XTStopTCPListener(self, theServerID: Id) -> bool:
        """Stops listening and disconnects the listener's connections. True/False (logged)."""
        return self._try(
            f"XTStopTCPListener({theServerID})", lambda: TcpListener(self.ctx, int(theServerID)).stop()
        )

    def XTStartUDPListener(self, thePort: int) -> int:
        """Receives datagrams on `thePort` (shared with other programs, so discovery ports
        work). The listener's id, or 0 with the error written to the log."""
        return self._start("XTStartUDPListener", self.ctx.start_udp_listener, thePort)

    def XTStopUDPListener(self, theServerID: Id) -> bool:
        """Stops the UDP listener, leaving its groups. True/False (logged)."""
        return self._try(
            f"XTStopUDPListener({theServerID})", lambda: UdpListener(self.ctx, int(theServerID)).stop()
        )

    def XTStartHTMLListener(self, thePort: int) -> int:
        """Serves HTTP on `thePort`; each request goes to XTPageRequest. The listener's id, or
        0 with the error written to the log."""
        return self._start("XTStartHTMLListener", self.ctx.start_html_listener, thePort)

    def XTStopHTMLListener(self, theServerID: Id) -> bool:
        """Stops serving; requests not yet answered get 503. True/False (logged)."""
        return self._try(
            f"XTStopHTMLListener({theServerID})", lambda: HtmlListener(self.ctx, int(theServerID)).stop()
        )

    def XTJoinMulticastGroup(self, theServerID: Id, theGroup: str) -> bool:
        """Joins multicast group `theGroup` (IPv4 or IPv6) on every multicast interface, and
        on interfaces that appear later. True/False (logged)."""
        return self._try(
            f"XTJoinMulticastGroup({theServerID}, {theGroup})",
            lambda: UdpListener(self.ctx, int(theServerID)).join(str(theGroup)),
        )

    def XTLeaveMulticastGroup(self, theServerID: Id, theGroup: str) -> bool:
        """Leaves a group joined with XTJoinMulticastGroup. True/False (logged)."""
        return self._try(
            f"XTLeaveMulticastGroup({theServerID}, {theGroup})",
            lambda: UdpListener(self.ctx, int(theServerID)).leave(str(theGroup)),
        )

    def XTSendDatagram(
        self,
        theServerID: Id,
        remoteAddress: str,
        remotePort: int,
        theData: Text,
    ) -> bool:
        """Sends one datagram from the UDP listener to `remoteAddress`:`remotePort` (a group or
        a broadcast address goes out of every interface). True/False (logged)."""
        return self._try(
            f"XTSendDatagram({theServerID}, {remoteAddress}, {remotePort})",
            lambda: UdpListener(self.ctx, int(theServerID)).send_to(
                str(remoteAddress), remotePort, _to_bytes(theData)
            ),
        )

    def XTSendDatagramOn(
        self,
        theServerID: Id,
        theInterface: str,
        remoteAddress: str,
        remotePort: int,
        theData: Text,
    ) -> bool:
        """As XTSendDatagram, out of one interface only (``theDatagramInfo[xtKeyInterface]``
        for a reply from where the query came in). True/False."""
        return self._try(
            f"XTSendDatagramOn({theServerID}, {theInterface}, {remoteAddress}, {remotePort})",
            lambda: UdpListener(self.ctx, int(theServerID)).send_on(
                str(theInterface), str(remoteAddress), remotePort, _to_bytes(theData)
            ),
        )

    def XTLocalAddressFor(self, remoteAddress: str) -> str:
        """This host's address that ``remoteAddress`` reaches it on, "" on error."""
        try:
            return self.ctx.local_address_for(str(remoteAddress))
        except (XtError, ValueError, TypeError) as e:
            self._error(f"XTLocalAddressFor({remoteAddress})", _as_xt_error(e))
            return ""

    def XTSendWakeOnLAN(self, theMacAddress: str, theInterface: str = "") -> bool:
        """Wakes the machine with ``theMacAddress`` (every interface, or one). True/False."""
        return self._try(
            f"XTSendWakeOnLAN({theMacAddress})",
            lambda: self.ctx.send_wake_on_lan(str(theMacAddress), str(theInterface) or None),
        )

    def XTSetParsingParams(
        self,
        theConnectionID: Id,
        theBoundryString: str = "",
        theLength: int = 0,
        theTimeoutMS: int = 0,
    ) -> bool:
        """XTension's parsing settings for one connection, from the next byte not yet given to
        XTDataAvailable (called from XTDataAvailable: the byte after that message): split on
        ``theBoundryString``, or into messages of ``theLength`` bytes, or (neither) pass the
        data as it comes; with ``theTimeoutMS``, data that waits that long without completing
        a message comes as one. True/False."""
        boundary = _to_bytes(theBoundryString) if theBoundryString else None
        length = int(theLength) or None
        return self._try(
            f"XTSetParsingParams({theConnectionID})",
            lambda: self.ctx.set_framing(int(theConnectionID), boundary, length, int(theTimeoutMS)),
        )

    def XTSendData(self, theConnectionID: Id, theData: Text) -> bool:
        """Sends `theData` (text as UTF-8, or bytes) on a TCP, TLS or WebSocket connection.
        True/False (logged: a stale id, a closed connection, a full write queue)."""
        return self._try(
            f"XTSendData({theConnectionID})",
            lambda: self.ctx.send(int(theConnectionID), _to_bytes(theData)),
        )

    def XTDisconnect(self, theConnectionID: Id) -> bool:
        """Closes the connection after what was sent before; XTSocketError follows.
        True/False (logged)."""
        return self._try(
            f"XTDisconnect({theConnectionID})", lambda: self.ctx.disconnect(int(theConnectionID))
        )

    def XTReplyToRequest(
        self,
        theRequestID: Id,
        theCode: int,
        theContentType: str,
        thePage: Text,
    ) -> bool:
        """Answers a page request that XTPageRequest deferred by returning ``xtReplyLater``
        (its id is ``theRequestInfo[xtKeyRequestId]``). True, or False with the reason in the
        log (106: it no longer waits — answered, timed out with 504, or its client left)."""
        ctype = None if theContentType in (None, "") else str(theContentType)
        return self._try(
            f"XTReplyToRequest({theRequestID})",
            lambda: self.ctx.reply(int(theRequestID), int(theCode), _to_bytes(thePage), ctype),
        )

    def XTOpenTLSConnection(
        self,
        theAddress: str,
        thePort: int,
        theBoundryString: str = "",
        thePin: str = "",
    ) -> str:
        """An outgoing TLS connection: with ``thePin`` (the device key's SHA-256, as
        ``xtKeyTlsFingerprint`` showed it) only that device is trusted, whatever its
        certificate's names; without it, any certificate is accepted (trust on first use) and
        ``xtKeyTlsFingerprint`` in ``XTConnected`` tells what to pin. The connection id, or ""
        on error."""
        try:
            trust = 2 if thePin else 3
            return str(self.ctx.open_tls_connection(
                str(theAddress), int(thePort), _to_bytes(theBoundryString), trust=trust,
                pin_sha256=thePin or None,
            ))
        except (XtError, ValueError, TypeError) as e:
            self._error(f"XTOpenTLSConnection({theAddress}, {thePort})", _as_xt_error(e))
            return ""

    def XTStartHTTPSListener(
        self,
        thePort: int,
        thePEMPath: str = "",
        theKeyPath: str = "",
    ) -> int:
        """The HTML listener over TLS: the certificate chain and key from ``thePEMPath`` (and
        ``theKeyPath`` when the key is in a file of its own), or a self-signed certificate
        without a path. The id, or 0 with the error in the log."""
        cert = str(thePEMPath) or None
        key = str(theKeyPath) or cert
        return self._start(
            "XTStartHTTPSListener",
            lambda port: self.ctx.start_https_listener(port, cert_file=cert, key_file=key),
            thePort,
        )

    def XTStartTLSListener(
        self,
        thePort: int,
        theBoundryString: str = "",
        thePEMPath: str = "",
        theKeyPath: str = "",
    ) -> int:
        """A TCP listener over TLS, as ``XTStartHTTPSListener`` for its certificate."""
        cert = str(thePEMPath) or None
        key = str(theKeyPath) or cert
        return self._start(
            "XTStartTLSListener",
            lambda port: self.ctx.start_tls_listener(
                port, _to_bytes(theBoundryString), cert_file=cert, key_file=key
            ),
            thePort,
        )

    def XTListenerFingerprint(self, theServerID: Id) -> str:
        """The SHA-256 (hex) of the key a TLS or HTTPS listener presents, "" on error."""
        try:
            return TcpListener(self.ctx, int(theServerID)).fingerprint
        except (XtError, ValueError, TypeError) as e:
            self._error(f"XTListenerFingerprint({theServerID})", _as_xt_error(e))
            return ""

    def XTAcceptWebSocket(self, theRequestID: Id, theSubprotocol: str = "") -> str:
        """Inside XTPageRequest: makes the request's connection a WebSocket; its id, or ""
        (the request is no upgrade and gets 400, or it is not the one being handled)."""
        request = self._request
        try:
            if request is None or str(request.id) != str(theRequestID):
                raise XtError(106, f"request {theRequestID} is not the one XTPageRequest has")
            cid = request.accept_websocket(str(theSubprotocol) or None)
            self._ws_accepted = True
            return str(cid)
        except (XtError, ValueError, TypeError) as e:
            self._error(f"XTAcceptWebSocket({theRequestID})", _as_xt_error(e))
            return ""

    def XTOpenWebSocket(self, theURL: str, thePin: str = "") -> str:
        """A WebSocket to ``ws://…`` or ``wss://…`` (for wss: only the device with key
        ``thePin``, or without it any certificate, as ``XTOpenTLSConnection``). The id, or ""."""
        try:
            trust = TRUST_PIN if thePin else TRUST_ANY
            return str(self.ctx.open_websocket(str(theURL), trust=trust, pin_sha256=thePin or None))
        except (XtError, ValueError, TypeError) as e:
            self._error(f"XTOpenWebSocket({theURL})", _as_xt_error(e))
            return ""

    def XTSendWebSocket(self, theConnectionID: Id, theData: Text, isBinary: bool = False) -> bool:
        """One WebSocket message: text, or binary with ``isBinary``. True/False."""
        return self._try(
            f"XTSendWebSocket({theConnectionID})",
            lambda: self.ctx.send_websocket(int(theConnectionID), _to_bytes(theData), bool(isBinary)),
        )

    def XTOpenTCPConnection(
        self,
        theAddress: str,
        thePort: int,
        theBoundryString: str = "",
    ) -> str:
        """Connects to `theAddress`:`thePort` (a name or an address), framing received data at
        `theBoundryString`. The connection's id at once (XTConnected follows, or XTSocketError
        if it fails), or "" with the error written to the log."""
        try:
            return str(self.ctx.open_tcp_connection(str(theAddress), int(thePort), _to_bytes(theBoundryString)))
        except (XtError, ValueError, TypeError) as e:
            self._error(f"XTOpenTCPConnection({theAddress}, {thePort})", _as_xt_error(e))
            return ""

    # -- events to the plugin

    def _handler(self, name):
        h = self.handlers
        return h.get(name) if isinstance(h, dict) else getattr(h, name, None)

    def _call(self, name, *args, failed=None):
        fn = self._handler(name)
        if fn is None:
            return failed
        try:
            return fn(*args)
        except Exception as e:  # a plugin's bug must not stop the others' events
            self.XTWriteLog(f"error in {name}: {type(e).__name__}: {e}")
            traceback.print_exc()
            return failed

    def _new_connection(self, cid, info):
        if self._handler("XTNewConnection") is None:
            if not self._refusal_logged:
                self.XTWriteLog("a connection was refused: the plugin has no XTNewConnection")
                self._refusal_logged = True
            return False
        answer = self._call("XTNewConnection", str(cid), connection_info(info), failed=False)
        if answer is None and not self._none_logged:
            self._none_logged = True
            self.XTWriteLog(
                f"XTNewConnection returned nothing for connection {cid}, so it was refused: "
                "end it with `return true` to accept a connection, `return false` to refuse it "
                "(said once)"
            )
        return bool(answer)

    def _connected(self, cid, info):
        self._call("XTConnected", str(cid), connection_info(info))

    def _data(self, cid, data, info):
        self._call("XTDataAvailable", _to_text(data), str(cid), connection_info(info))

    def _socket_error(self, cid, info):
        self._call("XTSocketError", str(cid), connection_info(info))

    def _datagram(self, server_id, data, info):
        d = {
            xtKeyRemoteAddress: info.remote_address,
            xtKeyRemotePort: info.remote_port,
            xtKeyLocalPort: info.local_port,
            xtKeyName: info.name,
            xtKeyMacAddress: info.mac_address,
            xtKeyLocalAddress: info.local_address,
            xtKeyInterface: info.interface_name,
            xtKeyDatagramKind: _DATAGRAM_KINDS.get(info.kind, ""),
        }
        self._call("XTReceivedDatagram", _to_text(data), server_id, d)

    def _page_request(self, request):
        if self._handler("XTPageRequest") is None:
            return Response(status=404, body="no page here")
        d = connection_info(request.info)
        headers, form = {}, {}
        for k, v in request.headers:
            headers.setdefault(k, v)
        for k, v in request.form:
            # A repeated field (checkboxes) keeps every value, in order, as a list.
            if k not in form:
                form[k] = v
            elif isinstance(form[k], list):
                form[k].append(v)
            else:
                form[k] = [form[k], v]
        d.update({
            xtKeyMethod: request.method,
            xtKeyPath: request.path,
            xtKeyQuery: request.query,
            xtKeyHeaders: headers,
            xtKeyFormData: form,
            xtKeyPostData: _to_text(request.body),
            xtKeyRequestId: str(request.id),
            xtKeyFiles: [
                {
                    xtKeyFieldName: f.field,
                    xtKeyFileName: f.filename,
                    xtKeyContentType: f.content_type,
                    xtKeyFileData: f.data,
                }
                for f in request.files
            ],
        })
        failed = Response(status=500, body="plugin error (see the plugin's log)")
        self._request, self._ws_accepted = request, False  # for XTAcceptWebSocket
        try:
            answer = self._call("XTPageRequest", request.server_id, d, failed=failed)
        finally:
            self._request = None
        if self._ws_accepted:
            return None  # a WebSocket now: the 101 goes out, the answer is not used
        if answer is failed or answer is LATER:
            return answer
        if isinstance(answer, (str, bytes)):
            return Response(body=_to_bytes(answer))
        if (
            isinstance(answer, tuple)
            and len(answer) in (2, 3)
            and isinstance(answer[0], int)
            and isinstance(answer[-1], (str, bytes))
            and (len(answer) == 2 or isinstance(answer[1], (dict, list)))
        ):
            return answer[:-1] + (_to_bytes(answer[-1]),)
        what = "nothing" if answer is None else f"a {type(answer).__name__}"
        self.XTWriteLog(
            f"XTPageRequest returned {what} for {request.method} {request.path}: {_PAGE_FORMS}; "
            "the request was answered 500"
        )
        return Response(status=500, body=f"XTPageRequest returned {what}: {_PAGE_FORMS}\n")

    def _interface_changed(self, name, address, up):
        self._call("XTInterfaceChanged", name, address, up)

    def _library_log(self, level, message):
        if level <= LOG_WARNING:
            self.XTWriteLog(f"xtnet: {message}")

    @staticmethod
    def _print_log(text):
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        print(f"{stamp} {text}", flush=True, file=sys.stdout)


def _as_xt_error(e):
    return e if isinstance(e, XtError) else XtError(ERR_INVALID_ARGUMENT, str(e))
