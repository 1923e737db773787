"""Who gets the next idle query worker: first come, first served, and fair between clients
(`FairPool`); `RefusedError` for a client over its share of long queries."""

from __future__ import annotations

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
                    waiter.event.set()
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
                waiter.event.set()

    def get(self, timeout: float, client: str = "-") -> T:
        """The next idle item; queue.Empty after `timeout` s without one, RefusedError at once
        (or as soon as it goes over) for a client over its share."""
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
            waiter: _Waiter[T] = _Waiter(client)
            self._waiters.append(waiter)
        waiter.event.wait(timeout)
        with self._lock:
            if waiter.box:
                return waiter.box[0]
            if waiter.refused:
                raise RefusedError
            self._waiters.remove(waiter)
        raise queue.Empty


class RefusedError(Exception):
    """The client is over its share of long queries."""


@dataclass
class _Waiter(Generic[T]):
    client: str
    event: threading.Event = field(default_factory=threading.Event)
    box: list[T] = field(default_factory=list)
    refused: bool = False
