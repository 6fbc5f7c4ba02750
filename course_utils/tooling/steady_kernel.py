"""A kernel client whose waits for a message end within a second of its arrival.

nbclient (under nbgrader, nbconvert and our own runners) waits for a cell's reply with one
poll of the shell socket lasting up to the cell's whole timeout, and for the cell's output with
a poll of IOPub that never times out. ZeroMQ tells the event loop that a message is there
through an edge-triggered file descriptor, so a wake-up that gets lost leaves the message
unread until the next one arrives; after a cell's last message none does. The client then
sits out the timeout while the kernel waits, idle, for the next cell. The suite met this with
nbclient 0.11, jupyter_client 8.10, pyzmq 27.3 and ipykernel 6.31: lab 03's dry run waited 15
minutes of its 30-minute cell timeout, both processes idle in ``epoll``, after the cell with
the explorer's ``Output`` widget had run. (ipykernel 7's own waits, a request left unread in
the kernel, are not this and no client can end them: the course keeps ipykernel below 7.)

Here every wait is a series of polls of at most :data:`SLICE_S`: each poll asks the socket
itself whether a message is queued when it starts and when it ends, so a lost wake-up costs at
most one slice. Nothing else changes: the same messages, timeouts and errors.

Use :class:`SteadyKernelManager` as a ``NotebookClient``'s ``kernel_manager_class``, or
:data:`CLIENT_CLASS` as a kernel manager's ``client_class``.
"""

from __future__ import annotations

import time
from queue import Empty
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from traitlets import DottedObjectName, Type

SLICE_S = 1.0
CLIENT_CLASS = "course_utils.tooling.steady_kernel.SteadyKernelClient"


class SteadyChannel(AsyncZMQSocketChannel):
    """An asynchronous channel whose ``get_msg`` polls in slices of :data:`SLICE_S`."""

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:  # type: ignore[override]
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            step = SLICE_S if left is None else max(0.0, min(SLICE_S, left))
            if await self.socket.poll(int(step * 1000)):
                return await self._recv()
            if left is not None and left <= SLICE_S:
                raise Empty


class SteadyKernelClient(AsyncKernelClient):
    """nbclient's asynchronous kernel client, with :class:`SteadyChannel` for its waits."""

    shell_channel_class = Type(SteadyChannel)  # type: ignore[assignment]
    iopub_channel_class = Type(SteadyChannel)  # type: ignore[assignment]
    stdin_channel_class = Type(SteadyChannel)  # type: ignore[assignment]
    control_channel_class = Type(SteadyChannel)  # type: ignore[assignment]


class SteadyKernelManager(AsyncKernelManager):
    """nbclient's default kernel manager, handing out :class:`SteadyKernelClient`."""

    client_class = DottedObjectName(CLIENT_CLASS, config=True)
    client_factory = Type(SteadyKernelClient, klass=AsyncKernelClient, config=True)
