"""Query answers kept per build, behind the executor: the same job (query text, dataset,
bindings, media types, base IRI) on the same build gives the same bytes, so it runs once.

The answer cache (`copkg.web.cache`) keeps whole HTTP answers per request (URL, host, Accept,
Origin); this keeps the executor's answers, which requests that differ in those share: a named
query asked as JSON from another host or origin, or after the start-up warm-up
(`copkg.web.warmup`) ran it. Concurrent runs of one job wait for the first and get its answer
or its error. Like the answer cache it is used only for a store that cannot change (one with a
build identity).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable

from copkg.errors import CopkgError
from copkg.querying.executor import Answer, Executor, Job


def job_key(job: Job) -> Hashable:
    """What a job's answer depends on (bound terms by their N-Triples form; a page read's
    name and arguments)."""
    bindings = None
    if job.bindings:
        bindings = tuple(sorted((str(name), term.n3()) for name, term in job.bindings.items()))
    return (
        job.sparql,
        job.default_graphs,
        job.named_graphs,
        bindings,
        tuple(sorted(job.media_types.items())),
        job.base,
        job.read,
        job.args,
    )


class _Running:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: CopkgError | None = None


class MemoExecutor:
    """An executor keeping the answers of another, at most `max_bytes` of bodies (LRU)."""

    def __init__(self, inner: Executor, max_bytes: int, wait: float) -> None:
        self.inner = inner
        self.timeout = inner.timeout
        self.max_bytes = max_bytes
        self.wait = wait
        self._answers: OrderedDict[Hashable, Answer] = OrderedDict()
        self._size = 0
        self._running: dict[Hashable, _Running] = {}
        self._lock = threading.Lock()

    def run(self, job: Job) -> Answer:
        key = job_key(job)
        answer, running, first = self._claim(key)
        if answer is not None:
            return answer
        if first is not None:
            return self._run_first(key, first, job)
        assert running is not None
        running.done.wait(self.wait)
        return self._after_wait(key, running) or self.inner.run(job)

    async def run_async(self, job: Job, threads: concurrent.futures.Executor) -> Answer:
        """`run` for an asyncio loop: a kept answer at once, a job run first by the inner
        executor's own `run_async` (if it has one); a job another request is running waits
        for it in one of `threads`."""
        run_async: Callable[..., Awaitable[Answer]] | None = getattr(self.inner, "run_async", None)
        loop = asyncio.get_running_loop()
        if run_async is None:
            return await loop.run_in_executor(threads, self.run, job)
        key = job_key(job)
        answer, running, first = self._claim(key)
        if answer is not None:
            return answer
        if first is None:  # another request runs it: its answer or error, else run it
            assert running is not None
            await loop.run_in_executor(threads, running.done.wait, self.wait)
            return self._after_wait(key, running) or await run_async(job, threads)
        try:
            answer = await run_async(job, threads)
        except CopkgError as exc:
            first.error = exc
            raise
        else:
            self._put(key, answer)  # before the waiters wake
            return answer
        finally:
            self._release(key, first)

    def _claim(self, key: Hashable) -> tuple[Answer | None, _Running | None, _Running | None]:
        """The kept answer; else the run of the same job under way (to wait for); else a new
        run this caller leads (`first`: it runs the job and wakes the waiters)."""
        with self._lock:
            answer = self._get(key)
            if answer is not None:
                return answer, None, None
            running = self._running.get(key)
            if running is not None:
                return None, running, None
            self._running[key] = first = _Running()
            return None, None, first

    def _after_wait(self, key: Hashable, running: _Running) -> Answer | None:
        """After waiting for another request's run: its answer, its error raised, or None
        (still running past the wait, or not kept: too large) for the caller to run the job."""
        with self._lock:
            answer = self._get(key)
        if answer is None and running.error is not None:
            raise running.error
        return answer

    def _release(self, key: Hashable, first: _Running) -> None:
        with self._lock:
            del self._running[key]
        first.done.set()

    def _run_first(self, key: Hashable, running: _Running, job: Job) -> Answer:
        try:
            answer = self.inner.run(job)
        except CopkgError as exc:
            running.error = exc
            raise
        else:
            self._put(key, answer)  # before the waiters wake
            return answer
        finally:
            self._release(key, running)

    def _get(self, key: Hashable) -> Answer | None:
        answer = self._answers.get(key)
        if answer is not None:
            self._answers.move_to_end(key)
        return answer

    def _put(self, key: Hashable, answer: Answer) -> None:
        size = len(answer.body)
        if size > self.max_bytes // 4:
            return
        with self._lock:
            if key in self._answers:
                return
            self._answers[key] = answer
            self._size += size
            while self._size > self.max_bytes:
                _, dropped = self._answers.popitem(last=False)
                self._size -= len(dropped.body)

    def __len__(self) -> int:
        return len(self._answers)

    def close(self) -> None:
        self.inner.close()
