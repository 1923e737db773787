"""Who gets the next idle query worker: first come, first served, and fair between clients
(`FairPool`); `RefusedError` for a client over its share of long queries."""

from __future__ import annotations

import asyncio
import collections
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


class FairPool(Generic[T]):
    """Idle items handed out first come, first served: a released item goes straight to the
    longest waiter, so a query that arrives later never takes a worker from one that has been
    waiting (with queue.Queue it can, and under load an early query waited out its time).

    With `size` (the number of items) it is also fair between clients: no client takes the
    last idle item while it holds another (so no one client holds them all), and a client
    `over` its share of long queries gets an item only if another stays idle, else
    `RefusedError` at once (waiting ones too, when it goes over). A waiter that may not take an
    item lets the next one that may go first.
    """

    def __init__(self, size: int = 0, over: Callable[[str], bool] = lambda client: False) -> None:
        self._lock = threading.Lock()
        self._idle: collections.deque[T] = collections.deque()
        self._waiters: collections.deque[_Waiter[T]] = collections.deque()
        self._size = size
        self._over = over
        self._held: collections.Counter[str] = collections.Counter()

    def _may_take(self, client: str, idle: int) -> bool:
        if not self._size:
            return True
        if self._over(client):
            return idle > 1  # another stays idle after it takes one
        return self._size == 1 or self._held[client] + 1 < self._size

    def put(self, item: T) -> None:
        with self._lock:
            for waiter in self._waiters:
                if self._may_take(waiter.client, len(self._idle) + 1):
                    self._waiters.remove(waiter)
                    self._held[waiter.client] += 1
                    waiter.box.append(item)
                    waiter.wake()
                    return
            self._idle.append(item)

    def release(self, client: str = "-") -> None:
        """An item taken for `client` is back (or gone): call before putting it back."""
        with self._lock:
            self._held[client] -= 1
            if self._held[client] <= 0:
                del self._held[client]

    def refuse_waiting(self, client: str) -> None:
        """Send away the waiters of a client that has gone over its share."""
        with self._lock:
            for waiter in [w for w in self._waiters if w.client == client]:
                self._waiters.remove(waiter)
                waiter.refused = True
                waiter.wake()

    def _now_or_wait(self, client: str, waiter: _Waiter[T]) -> T | None:
        """An idle item the client may take now, else None with `waiter` in the queue."""
        with self._lock:
            if (
                self._idle
                and self._may_take(client, len(self._idle))
                and not (self._waiters and not self._size)
            ):
                self._held[client] += 1
                return self._idle.popleft()
            if self._size and self._over(client):
                raise RefusedError
            self._waiters.append(waiter)
        return None

    def _after_wait(self, waiter: _Waiter[T]) -> T:
        with self._lock:
            if waiter.box:
                return waiter.box[0]
            if waiter.refused:
                raise RefusedError
            self._waiters.remove(waiter)
        raise queue.Empty

    def get(self, timeout: float, client: str = "-") -> T:
        """The next idle item; queue.Empty after `timeout` s without one, RefusedError at once
        (or as soon as it goes over) for a client over its share."""
        event = threading.Event()
        waiter: _Waiter[T] = _Waiter(client, event.set)
        item = self._now_or_wait(client, waiter)
        if item is not None:
            return item
        event.wait(timeout)
        return self._after_wait(waiter)

    async def get_async(self, timeout: float, client: str = "-") -> T:
        """`get` for an asyncio loop: the waiting task is woken by whichever thread puts."""
        loop = asyncio.get_running_loop()
        woken = loop.create_future()

        def settle() -> None:
            if not woken.done():
                woken.set_result(None)

        def wake() -> None:
            loop.call_soon_threadsafe(settle)

        waiter: _Waiter[T] = _Waiter(client, wake)
        item = self._now_or_wait(client, waiter)
        if item is not None:
            return item
        try:
            async with asyncio.timeout(timeout):
                await woken
        except TimeoutError:
            pass
        except asyncio.CancelledError:  # gone: an item handed over meanwhile goes back
            with self._lock:
                item = waiter.box[0] if waiter.box else None
                if item is None and waiter in self._waiters:
                    self._waiters.remove(waiter)
            if item is not None:
                self.release(client)
                self.put(item)
            raise
        return self._after_wait(waiter)


class RefusedError(Exception):
    """The client is over its share of long queries."""


@dataclass(eq=False)
class _Waiter(Generic[T]):
    client: str
    wake: Callable[[], object]  # called (under the pool's lock) when served or refused
    box: list[T] = field(default_factory=list)
    refused: bool = False
