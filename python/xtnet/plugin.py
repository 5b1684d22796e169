"""Runs an XTension-style plugin file on xtnet:

    python -m xtnet.plugin PLUGIN.py [--log FILE] [--max-seconds N]

The plugin's top-level code runs first, with every XTension name (``XTStartTCPListener``,
``XTWriteLog``, ``xtKeyRemoteAddress``, ..., ``true``/``false``) in its globals; then its event
functions (``XTNewConnection``, ``XTDataAvailable``, ``XTSocketError``, ``XTReceivedDatagram``,
``XTPageRequest``, ``XTConnected``) are called as events arrive, one at a time, on the main
thread, until SIGINT/SIGTERM, ``--max-seconds``, or the plugin calls ``XTStopPlugin()``.
``XTWriteLog`` lines go to FILE (appended) or to standard output, each with a time stamp.
See :mod:`xtnet.xtension` for every name.
"""

import argparse
import datetime
import signal
import sys

from .xtension import Plugin


def main(argv=None):
    """Runs the plugin file named on the command line until it calls stop or is interrupted."""
    parser = argparse.ArgumentParser(prog="python -m xtnet.plugin", description=__doc__.split("\n\n")[0])
    parser.add_argument("plugin", help="the plugin's Python file")
    parser.add_argument("--log", help="append XTWriteLog lines to this file (default: stdout)")
    parser.add_argument("--max-seconds", type=float, help="stop after this many seconds")
    args = parser.parse_args(argv)

    log_file = (
        open(args.log, "a", buffering=1, encoding="utf-8", errors="backslashreplace")
        if args.log
        else sys.stdout
    )

    def log(text):
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        line = f"{stamp} {text}\n"
        try:
            log_file.write(line)
        except UnicodeEncodeError:  # a terminal that takes only ASCII, say
            log_file.write(line.encode("ascii", "backslashreplace").decode("ascii"))
        log_file.flush()

    with open(args.plugin, encoding="utf-8") as f:
        source = f.read()
    plugin_globals = {"__name__": "__xtplugin__", "__file__": args.plugin}
    plugin = Plugin(plugin_globals, log=log)
    plugin_globals.update(plugin.names())
    plugin_globals["XTStopPlugin"] = plugin.stop

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: plugin.stop())
    try:
        exec(compile(source, args.plugin, "exec"), plugin_globals)
        plugin.run(args.max_seconds)
    finally:
        plugin.close()
        if log_file is not sys.stdout:
            log_file.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
