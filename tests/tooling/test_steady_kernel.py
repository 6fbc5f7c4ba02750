"""The kernel client that cannot sleep through a message (course_utils.tooling.steady_kernel).

A lost wake-up is made on purpose: a message lands while the channel waits, and the socket's
pending events are read (as a send on the same socket can do) before the event loop sees its
file descriptor turn readable. jupyter_client's own channel then sleeps until its timeout; the
steady channel notices the message within one slice.
"""

from __future__ import annotations

import asyncio
import time
from queue import Empty

import pytest
import zmq
import zmq.asyncio
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.session import Session

from course_utils.tooling.steady_kernel import (
    SLICE_S,
    SteadyChannel,
    SteadyKernelClient,
    SteadyKernelManager,
)

WAIT_S = 6.0


async def _wait_through_a_lost_wakeup(channel_class) -> tuple[float, dict]:
    session = Session(key=b"k")
    context = zmq.asyncio.Context()
    sync_context = zmq.Context()
    mine = context.socket(zmq.PAIR)
    port = mine.bind_to_random_port("tcp://127.0.0.1")
    peer = sync_context.socket(zmq.PAIR)
    peer.connect(f"tcp://127.0.0.1:{port}")
    channel = channel_class(mine, session)
    try:
        started = time.monotonic()
        waiting = asyncio.ensure_future(channel.get_msg(timeout=WAIT_S))
        await asyncio.sleep(0.2)  # the channel is polling now
        session.send(peer, "execute_reply", {"status": "ok"})
        time.sleep(0.2)  # the message reaches the socket; the loop does not run meanwhile
        shadow = zmq.Socket.shadow(mine.underlying)
        assert shadow.get(zmq.EVENTS) & zmq.POLLIN  # ... and this swallows the wake-up
        message = await waiting
        return time.monotonic() - started, message
    finally:
        channel.close()
        peer.close(linger=0)
        context.term()
        sync_context.term()


def test_a_lost_wakeup_costs_one_slice_not_the_whole_timeout():
    plain, message = asyncio.run(_wait_through_a_lost_wakeup(AsyncZMQSocketChannel))
    assert message["msg_type"] == "execute_reply"
    assert plain >= WAIT_S - 0.5, f"the plain channel woke after {plain:.1f} s: no lost wake-up"
    steady, message = asyncio.run(_wait_through_a_lost_wakeup(SteadyChannel))
    assert message["msg_type"] == "execute_reply"
    assert steady < 0.4 + SLICE_S + 0.5, f"{steady:.1f} s"


def test_a_wait_with_nothing_to_read_still_times_out():
    async def wait() -> float:
        context = zmq.asyncio.Context()
        socket = context.socket(zmq.PAIR)
        socket.bind_to_random_port("tcp://127.0.0.1")
        channel = SteadyChannel(socket, Session(key=b"k"))
        started = time.monotonic()
        try:
            with pytest.raises(Empty):
                await channel.get_msg(timeout=2.5)
            return time.monotonic() - started
        finally:
            channel.close()
            context.term()

    assert 2.4 < asyncio.run(wait()) < 3.5


def test_the_manager_hands_out_the_steady_client():
    manager = SteadyKernelManager()
    assert manager.client_factory is SteadyKernelClient
    client = manager.client()
    assert client.shell_channel_class is SteadyChannel
    assert client.iopub_channel_class is SteadyChannel
