"""Framed ("\r\n") TCP echo servers in Python for benches/python_echo.rs: one on xtnet.Context
(thread, poll or inline dispatch, on_data answering with ctx.send) and one on plain asyncio
streams (readuntil, write, drain). Each prints "listening on port N" and runs until killed.

    python3 benches/python/echo.py xtnet-thread|xtnet-poll|xtnet-inline|asyncio
"""

import asyncio
import selectors
import sys


def xtnet_echo(dispatch):
    import xtnet

    ctx = xtnet.Context(dispatch=dispatch)
    send = ctx.send

    def on_data(cid, data, info):
        send(cid, data + b"\r\n")

    ctx.on_data = on_data
    listener = ctx.start_tcp_listener(0, b"\r\n")
    print(f"listening on port {listener.port}", flush=True)
    if dispatch == "poll":
        # The plugin runner's shape: a selector on the wakeup descriptor, then poll.
        sel = selectors.DefaultSelector()
        sel.register(ctx.wakeup_fd(), selectors.EVENT_READ)
        while True:
            sel.select()
            ctx.poll(0)
    else:
        import threading

        threading.Event().wait()


async def asyncio_echo():
    async def serve(reader, writer):
        try:
            while True:
                line = await reader.readuntil(b"\r\n")
                writer.write(line)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "0.0.0.0", 0, limit=1 << 20)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on port {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "asyncio":
        asyncio.run(asyncio_echo())
    else:
        xtnet_echo(mode.split("-", 1)[1])
