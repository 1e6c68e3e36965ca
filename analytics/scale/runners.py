"""Where the partitioned pipeline's tasks run: in this process, in local processes, or on a Dask cluster.

A runner maps a picklable function over items and returns the results in the items' order; the
first task to fail (in that order) raises its exception in the client, a ``DatasetRefused``
included. Tasks read and write the work folder, which a cluster's workers must share.
"""

from __future__ import annotations

import multiprocessing
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from analytics.errors import AnalyticsRefusal

ENGINES = ("local", "dask")
CONNECT_TIMEOUT = "20s"
"""How long to wait for a scheduler given by address."""

T = TypeVar("T")
R = TypeVar("R")


@contextmanager
def _plain_main() -> Iterator[None]:
    """Start worker processes without this process's main script.

    A new process (spawn, forkserver, a Dask nanny) first imports the parent's ``__main__`` again. Under
    Streamlit and its AppTest that is the dashboard's script, which must not run in a worker; under
    ``python -m analytics`` it is harmless. Workers are started while a bare ``__main__`` stands in.
    """
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def _nothing(item: int) -> int:
    return item


class EngineFailed(AnalyticsRefusal):
    """The engine itself failed (a scheduler that cannot be reached, a worker process lost): not the data."""


Done = Callable[[int, int], None]
"""Told (tasks finished, tasks) as tasks finish, for progress on long work."""


def _quiet(finished: int, total: int) -> None:
    del finished, total


class Runner(Protocol):
    def map(self, function: Callable[[T], R], items: Sequence[T], done: Done = _quiet) -> list[R]: ...


class SerialRunner:
    """Every task in this process, one after the other."""

    def map(self, function: Callable[[T], R], items: Sequence[T], done: Done = _quiet) -> list[R]:
        results = []
        for item in items:
            results.append(function(item))
            done(len(results), len(items))
        return results


class ProcessRunner:
    """Tasks in ``workers`` local processes, a few partitions at a time (the default engine on big data)."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> ProcessRunner:
        # forkserver: no copy of the client's memory or threads in the workers; the server imports the
        # pipeline once, so each worker starts as a fork of it instead of importing pandas anew.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["analytics.scale.engine"])
        self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
        with _plain_main():  # every worker started now, without the parent's main script
            started = [self._pool.submit(_nothing, i) for i in range(self.workers)]
            for future in started:
                future.result()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def map(self, function: Callable[[T], R], items: Sequence[T], done: Done = _quiet) -> list[R]:
        if self._pool is None or len(items) <= 1:
            return SerialRunner().map(function, items, done)
        try:
            futures = [self._pool.submit(function, item) for item in items]
            for finished, _ in enumerate(as_completed(futures), start=1):
                done(finished, len(items))
            return [future.result() for future in futures]  # the first failure in the items' order
        except BrokenProcessPool as exc:
            raise EngineFailed(f"a worker process ended abruptly (out of memory?): {exc}") from exc
        except AnalyticsRefusal:
            raise
        except Exception as exc:  # a task's own failure, said in one line instead of a worker's traceback
            raise EngineFailed(f"a task failed: {type(exc).__name__}: {exc}") from exc


class DaskRunner:
    """Tasks on a ``dask.distributed`` cluster: at ``address``, or a ``LocalCluster`` of ``workers`` processes."""

    def __init__(self, address: str | None = None, workers: int = 2, memory_limit: str = "auto"):
        self.address = address
        self.workers = workers
        self.memory_limit = memory_limit
        self._client: Any = None
        self._cluster: Any = None

    def __enter__(self) -> DaskRunner:
        from distributed import Client, LocalCluster

        if self.address:
            try:
                self._client = Client(self.address, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as exc:
                raise EngineFailed(f"no Dask scheduler answers at {self.address} ({exc})") from exc
        else:
            with _plain_main():
                self._cluster = LocalCluster(
                    n_workers=self.workers,
                    threads_per_worker=1,
                    processes=True,
                    memory_limit=self.memory_limit,
                    dashboard_address=None,
                )
            self._client = Client(self._cluster)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    @property
    def client(self) -> Any:
        return self._client

    def map(self, function: Callable[[T], R], items: Sequence[T], done: Done = _quiet) -> list[R]:
        if not items:
            return []
        from distributed import KilledWorker, as_completed
        from distributed.comm.core import CommClosedError

        futures = self._client.map(function, list(items), pure=False)
        try:
            for finished, _ in enumerate(as_completed(futures), start=1):
                done(finished, len(items))
            return [future.result() for future in futures]
        except (KilledWorker, CommClosedError) as exc:
            raise EngineFailed(f"a Dask worker was lost: {exc}") from exc
        except AnalyticsRefusal:
            raise
        except Exception as exc:  # a task's own failure (on a worker whose environment differs, say)
            raise EngineFailed(f"a task failed on a Dask worker: {type(exc).__name__}: {exc}") from exc
        finally:
            self._client.cancel(futures)


@contextmanager
def runner_for(engine: str, workers: int, scheduler: str | None = None) -> Iterator[Runner]:
    """The runner of ``engine``: local processes (one worker: this process) or a Dask cluster."""
    if engine == "dask":
        with DaskRunner(scheduler, workers) as dask_runner:
            yield dask_runner
    elif workers <= 1:
        yield SerialRunner()
    else:
        with ProcessRunner(workers) as pool:
            yield pool
