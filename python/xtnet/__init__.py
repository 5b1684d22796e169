"""xtnet for Python: the XTension plugin API v2 sockets (TCP listeners with framing, outgoing
TCP, UDP with broadcast and multicast, an HTTP server answered inline or later, peer names and
MAC addresses) and what devices need beyond it (TLS with pinned or CA trust, WebSocket both
ways, a LAN that changes under a running host), over the xtnet C library with ctypes.

Two layers:

- :class:`Context` and friends (``xtnet.context``): a Pythonic API with bytes, exceptions and
  callables.
- :class:`Plugin` (``xtnet.xtension``) and the runner ``python -m xtnet.plugin PLUGIN.py``:
  XTension's own names (``XTStartTCPListener``, ``XTNewConnection``, ``xtKeyRemoteAddress``, ...).

``xtnet.aio.Context`` runs the callbacks on a running asyncio loop instead.

The library is loaded from ``$XTNET_LIBRARY`` (a file or folder), from next to this package
(where ``pip install`` puts it), or from the system's library path; :class:`LibraryNotFound` lists what was tried.
"""

from ._native import LibraryNotFound, path as library_path
from . import context as _context
from .context import *  # noqa: F401,F403  (constants ERR_*, OPT_*, ..., Context, XtError, ...)
from .xtension import Plugin

__all__ = ["LibraryNotFound", "library_path", "Plugin"] + _context.__all__
