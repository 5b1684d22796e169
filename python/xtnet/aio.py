"""xtnet on an asyncio event loop: a poll-dispatch :class:`xtnet.Context` whose callbacks run
on the loop's own thread, between the program's other tasks (``loop.add_reader`` on the
context's wakeup descriptor; each wake runs the callbacks waiting then).

    import asyncio, xtnet.aio

    async def main():
        async with xtnet.aio.Context() as ctx:
            ctx.on_data = lambda cid, data, info: ctx.send(cid, data + b"\\r\\n")
            listener = ctx.start_tcp_listener(9000)
            await asyncio.sleep(3600)

    asyncio.run(main())

Callbacks are plain functions (they run on the loop thread, so they may touch the program's
asyncio objects directly, e.g. ``queue.put_nowait``, ``future.set_result``); a callback that
wants to await schedules a task (``asyncio.ensure_future``).
"""

import asyncio
from typing import Any, Optional

from . import context as _context


class Context(_context.Context):
    """A :class:`xtnet.Context` (poll dispatch) served by the running asyncio loop, or by
    `loop`. Create it from inside the loop; close it (``async with`` does) before the loop
    ends."""

    def __init__(
        self, loop: Optional[asyncio.AbstractEventLoop] = None, **callbacks: Any
    ) -> None:
        super().__init__(dispatch="poll", **callbacks)
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        self._fd: Optional[int] = self.wakeup_fd()
        self._loop.add_reader(self._fd, self._run_waiting)

    def _run_waiting(self) -> None:
        if self._ptr:
            self.poll(0)

    def close(self) -> None:
        """Stops serving from the loop, then closes the context (callbacks still waiting run
        now, on this thread)."""
        if self._ptr and self._fd is not None:
            self._loop.remove_reader(self._fd)
            self._fd = None
        super().close()

    async def __aenter__(self) -> "Context":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()
