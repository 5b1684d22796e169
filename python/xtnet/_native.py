"""The C library, loaded with ctypes: where it is found, and the signature of every call.

Looked for, in this order: the file or folder named by the environment variable
``XTNET_LIBRARY``; a copy next to this package (``xtnet/libxtnet.so``, or the
``libxtnet.abi3.so`` that ``pip install`` builds there); the system's library
path (``LD_LIBRARY_PATH``, the linker cache, ``DYLD_LIBRARY_PATH`` on macOS). When none loads,
:class:`LibraryNotFound` lists every path tried.
"""

import ctypes
import ctypes.util
import glob
import os
import sys

_NAMES = {
    "darwin": ["libxtnet.dylib", "libxtnet.0.1.dylib"],
    "win32": ["xtnet.dll"],
}.get(sys.platform, ["libxtnet.so", "libxtnet.so.0.1"])


class LibraryNotFound(OSError):
    """The xtnet library could not be loaded from any of the places tried."""

    def __init__(self, tried):
        self.tried = tried
        lines = "\n".join(f"  {path}: {why}" for path, why in tried)
        super().__init__(
            "cannot load the xtnet library; tried:\n"
            + lines
            + "\nSet XTNET_LIBRARY to the library file (or its folder), put the library next to"
            " the xtnet package, or install it (make install)."
        )


def _candidates():
    env = os.environ.get("XTNET_LIBRARY")
    if env:
        if os.path.isdir(env):
            yield from (os.path.join(env, n) for n in _NAMES)
        else:
            yield env
    here = os.path.dirname(os.path.abspath(__file__))
    yield from (os.path.join(here, n) for n in _NAMES)
    # What `pip install` built into the package (named as an extension module: libxtnet.abi3.so).
    yield from sorted(glob.glob(os.path.join(here, "libxtnet*.so")))
    yield from sorted(glob.glob(os.path.join(here, "libxtnet*.dylib")))
    found = ctypes.util.find_library("xtnet")
    if found:
        yield found
    yield from _NAMES  # bare names: the dynamic linker's own search


def load():
    tried = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append((path, str(e).split(": ")[-1] or "not loadable"))
    raise LibraryNotFound(tried)


# ---------------------------------------------------------------- types of the C contract

c_uint8_p = ctypes.POINTER(ctypes.c_uint8)


class XtConnectionInfo(ctypes.Structure):
    _fields_ = [
        ("remote_address", ctypes.c_char_p),
        ("remote_port", ctypes.c_uint16),
        ("peer_port", ctypes.c_uint16),
        ("name", ctypes.c_char_p),
        ("mac_address", ctypes.c_char_p),
        ("unique_id", ctypes.c_char_p),
        ("server_id", ctypes.c_uint32),
        ("error_number", ctypes.c_int32),
        ("error_message", ctypes.c_char_p),
        ("tls_peer_fingerprint", ctypes.c_char_p),
        ("tls_protocol", ctypes.c_char_p),
        ("message_kind", ctypes.c_uint32),
    ]


class XtTlsOptions(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("trust", ctypes.c_uint32),
        ("ca_file", ctypes.c_char_p),
        ("pin_sha256", ctypes.c_char_p),
        ("server_name", ctypes.c_char_p),
        ("cert_file", ctypes.c_char_p),
        ("key_file", ctypes.c_char_p),
    ]


class XtDatagramInfo(ctypes.Structure):
    _fields_ = [
        ("remote_address", ctypes.c_char_p),
        ("remote_port", ctypes.c_uint16),
        ("local_port", ctypes.c_uint16),
        ("name", ctypes.c_char_p),
        ("mac_address", ctypes.c_char_p),
        ("local_address", ctypes.c_char_p),
        ("interface_name", ctypes.c_char_p),
        ("interface_index", ctypes.c_uint32),
        ("kind", ctypes.c_uint32),
    ]


INFO_P = ctypes.POINTER(XtConnectionInfo)
DATAGRAM_INFO_P = ctypes.POINTER(XtDatagramInfo)

RELEASE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
NEW_CONNECTION = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p, ctypes.c_uint64, INFO_P)
CONNECTED = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, INFO_P)
# Data and info as plain addresses (ints): cheaper to cross than pointer objects; the info is
# read only when the connection's cached copy does not exist yet.
DATA_AVAILABLE = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint64, ctypes.c_void_p
)
#: Where `message_kind` sits in an XtConnectionInfo.
MESSAGE_KIND_OFFSET = XtConnectionInfo.message_kind.offset
SOCKET_ERROR = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, INFO_P)
RECEIVED_DATAGRAM = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_uint32, c_uint8_p, ctypes.c_size_t, DATAGRAM_INFO_P
)
PAGE_REQUEST = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p, ctypes.c_void_p
)
LOG = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int32, ctypes.c_char_p)
INTERFACE_CHANGED = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_bool
)


class XtCallbacks(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("user_data", ctypes.c_void_p),
        ("release", RELEASE),
        ("new_connection", NEW_CONNECTION),
        ("connected", CONNECTED),
        ("data_available", DATA_AVAILABLE),
        ("socket_error", SOCKET_ERROR),
        ("received_datagram", RECEIVED_DATAGRAM),
        ("page_request", PAGE_REQUEST),
        ("log", LOG),
        ("interface_changed", INTERFACE_CHANGED),
    ]


_c = ctypes
_P = ctypes.c_void_p  # XtContext*, XtHttpRequest*, XtHttpResponse*: opaque
_S = ctypes.c_char_p
_SIGNATURES = {
    # library and errors
    "xt_version": (_S, []),
    "xt_last_error": (_c.c_int32, []),
    "xt_last_error_message": (_S, []),
    "xt_error_text": (_S, [_c.c_int32]),
    # context
    "xt_context_new": (_P, [_c.POINTER(XtCallbacks), _c.c_uint32]),
    "xt_context_free": (None, [_P]),
    "xt_poll": (_c.c_int32, [_P, _c.c_int32]),
    "xt_wakeup_fd": (_c.c_int32, [_P]),
    "xt_get_stat": (_c.c_int64, [_P, _c.c_uint32]),
    "xt_set_option": (_c.c_int32, [_P, _c.c_uint32, _c.c_int64]),
    "xt_get_option": (_c.c_int64, [_P, _c.c_uint32]),
    "xt_set_bind_address": (_c.c_int32, [_P, _S]),
    # TCP
    "xt_start_tcp_listener": (_c.c_uint32, [_P, _c.c_uint16, _c.c_char_p, _c.c_size_t]),
    "xt_stop_tcp_listener": (_c.c_bool, [_P, _c.c_uint32]),
    "xt_listener_port": (_c.c_uint16, [_P, _c.c_uint32]),
    "xt_open_tcp_connection": (
        _c.c_uint64,
        [_P, _S, _c.c_uint16, _c.c_char_p, _c.c_size_t],
    ),
    "xt_send_data": (_c.c_int32, [_P, _c.c_uint64, _c.c_char_p, _c.c_size_t]),
    "xt_disconnect": (_c.c_int32, [_P, _c.c_uint64]),
    # UDP
    "xt_start_udp_listener": (_c.c_uint32, [_P, _c.c_uint16]),
    "xt_stop_udp_listener": (_c.c_bool, [_P, _c.c_uint32]),
    "xt_join_multicast_group": (_c.c_bool, [_P, _c.c_uint32, _S]),
    "xt_leave_multicast_group": (_c.c_bool, [_P, _c.c_uint32, _S]),
    "xt_join_multicast_group_on": (_c.c_bool, [_P, _c.c_uint32, _S, _S]),
    "xt_leave_multicast_group_on": (_c.c_bool, [_P, _c.c_uint32, _S, _S]),
    "xt_send_datagram": (
        _c.c_int32,
        [_P, _c.c_uint32, _S, _c.c_uint16, _c.c_char_p, _c.c_size_t],
    ),
    "xt_set_multicast_interface": (_c.c_int32, [_P, _c.c_uint32, _S]),
    "xt_set_multicast_ttl": (_c.c_int32, [_P, _c.c_uint32, _c.c_uint32]),
    "xt_set_multicast_loop": (_c.c_int32, [_P, _c.c_uint32, _c.c_bool]),
    "xt_udp_dropped": (_c.c_int64, [_P, _c.c_uint32]),
    "xt_udp_send_failures": (_c.c_int64, [_P, _c.c_uint32]),
    # HTTP
    "xt_start_html_listener": (_c.c_uint32, [_P, _c.c_uint16]),
    "xt_stop_html_listener": (_c.c_bool, [_P, _c.c_uint32]),
    "xt_http_request_method": (_S, [_P]),
    "xt_http_request_path": (_S, [_P]),
    "xt_http_request_query": (_S, [_P]),
    "xt_http_request_header": (_S, [_P, _S]),
    "xt_http_request_header_count": (_c.c_size_t, [_P]),
    "xt_http_request_header_at": (
        _c.c_bool,
        [_P, _c.c_size_t, _c.POINTER(_S), _c.POINTER(_S)],
    ),
    "xt_http_request_body": (c_uint8_p, [_P, _c.POINTER(_c.c_size_t)]),
    "xt_http_request_form_count": (_c.c_size_t, [_P]),
    "xt_http_request_form_at": (
        _c.c_bool,
        [_P, _c.c_size_t, _c.POINTER(_S), _c.POINTER(_S)],
    ),
    "xt_http_request_form_value": (_S, [_P, _S]),
    "xt_http_request_file_count": (_c.c_size_t, [_P]),
    "xt_http_request_file_at": (
        _c.c_bool,
        [
            _P,
            _c.c_size_t,
            _c.POINTER(_S),
            _c.POINTER(_S),
            _c.POINTER(_S),
            _c.POINTER(c_uint8_p),
            _c.POINTER(_c.c_size_t),
        ],
    ),
    "xt_http_request_info": (INFO_P, [_P]),
    "xt_http_response_set_status": (_c.c_int32, [_P, _c.c_uint16]),
    "xt_http_response_add_header": (_c.c_int32, [_P, _S, _S]),
    "xt_http_response_set_body": (_c.c_int32, [_P, _c.c_char_p, _c.c_size_t]),
    "xt_http_request_id": (_c.c_uint64, [_P]),
    "xt_start_tls_listener": (
        _c.c_uint32,
        [_P, _c.c_uint16, _c.c_char_p, _c.c_size_t, _c.POINTER(XtTlsOptions)],
    ),
    "xt_listener_fingerprint": (_S, [_P, _c.c_uint32]),
    "xt_open_tls_connection": (
        _c.c_uint64,
        [_P, _S, _c.c_uint16, _c.c_char_p, _c.c_size_t, _c.POINTER(XtTlsOptions)],
    ),
    "xt_http_response_defer": (_c.c_uint64, [_P]),
    "xt_set_framing": (
        _c.c_int32,
        [_P, _c.c_uint64, _c.c_uint32, _c.c_char_p, _c.c_size_t, _c.c_uint32, _c.c_uint32],
    ),
    "xt_send_datagram_on": (
        _c.c_int32,
        [_P, _c.c_uint32, _S, _S, _c.c_uint16, _c.c_char_p, _c.c_size_t],
    ),
    "xt_local_address_for": (_c.c_int32, [_P, _S, _c.c_char_p, _c.c_size_t]),
    "xt_send_wake_on_lan": (_c.c_int32, [_P, _S, _S]),
    "xt_start_https_listener": (_c.c_uint32, [_P, _c.c_uint16, _c.POINTER(XtTlsOptions)]),
    "xt_http_response_accept_websocket": (_c.c_uint64, [_P, _S]),
    "xt_open_websocket": (_c.c_uint64, [_P, _S, _c.POINTER(XtTlsOptions)]),
    "xt_send_websocket": (_c.c_int32, [_P, _c.c_uint64, _c.c_char_p, _c.c_size_t, _c.c_uint32]),
    "xt_http_reply": (
        _c.c_int32,
        [_P, _c.c_uint64, _c.c_uint16, _S, _c.c_char_p, _c.c_size_t],
    ),
}


def _bind(lib):
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


lib, path = load()
_bind(lib)
