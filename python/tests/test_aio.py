"""xtnet.aio: a context served by a running asyncio loop, with real sockets on loopback."""

import asyncio
import threading

import xtnet
import xtnet.aio


def test_callbacks_run_on_the_loop_thread_between_its_tasks():
    async def main():
        loop_thread = threading.get_ident()
        seen_threads = set()
        lines = asyncio.Queue()

        def on_data(cid, data, info):
            seen_threads.add(threading.get_ident())
            lines.put_nowait(data)  # an asyncio object, touched directly: same thread
            ctx.send(cid, data.upper() + b"\r\n")

        async with xtnet.aio.Context(on_data=on_data) as ctx:
            listener = ctx.start_tcp_listener(0)
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
            for word in (b"hello", b"asyncio", b"loop"):
                writer.write(word + b"\r\n")
                await writer.drain()
                assert await asyncio.wait_for(reader.readuntil(b"\r\n"), 5) == word.upper() + b"\r\n"
            assert [lines.get_nowait() for _ in range(3)] == [b"hello", b"asyncio", b"loop"]
            # The context is in poll dispatch: nobody but the loop may poll it.
            assert ctx.dispatch == "poll"
            writer.close()
        assert seen_threads == {loop_thread}

    asyncio.run(main())


def test_an_outgoing_connection_and_its_end_arrive_on_the_loop():
    async def main():
        done = asyncio.get_running_loop().create_future()

        async def serve(reader, writer):
            writer.write(b"greeting\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        got = []
        async with xtnet.aio.Context() as ctx:
            ctx.on_data = lambda cid, data, info: got.append(data)
            ctx.on_socket_error = lambda cid, info: done.set_result(info.error_number)
            ctx.open_tcp_connection("127.0.0.1", port, b"\n")
            assert await asyncio.wait_for(done, 5) == xtnet.ERR_LOST_CONNECTION
        server.close()
        assert got == [b"greeting"]

    asyncio.run(main())
