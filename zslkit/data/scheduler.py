"""Where parallel work runs: this machine's process pool, or a Dask cluster.

Conventions
-----------
- ``scheduler: local`` runs tasks in a process pool on this machine (``workers`` processes, 0 = all
  cores; 1 = in this process). Anything else is the address of a running Dask scheduler
  (``tcp://host:8786``, or the path of a scheduler file written by ``dask scheduler
  --scheduler-file``); tasks then run on that cluster's workers, which must see the same file
  system (the data and mel folders) and have zslkit installed.
- A task is a plain function of one picklable item; :func:`run_tasks` yields ``(item, result)``
  in completion order. Tasks write their own outputs atomically, so a job killed at any point
  leaves only whole files, and rerunning it does the rest.
- A task that raises stops the job with that error; Dask's own retries (a lost worker) are left
  to Dask.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

from threadpoolctl import threadpool_limits

from ..errors import ParamError, RunError

T = TypeVar("T")
R = TypeVar("R")


def _init_worker():
    # one BLAS thread per worker process: the pool already uses every core
    threadpool_limits(1)


def is_local(scheduler: str) -> bool:
    return scheduler in ("local", "", None)


def dask_client(address: str):
    """A ``dask.distributed.Client`` connected to ``address`` (a URL or a scheduler file)."""
    try:
        from dask.distributed import Client
    except ImportError as exc:
        raise ParamError(f"audio.scheduler: {address!r} needs dask.distributed (pip install 'dask[distributed]')") \
            from exc
    try:
        if Path(address).suffix == ".json" or Path(address).is_file():
            return Client(scheduler_file=address, timeout="20s")
        return Client(address, timeout="20s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise RunError(f"audio.scheduler: cannot reach the Dask scheduler {address!r}: {exc}") from exc


def n_slots(scheduler: str, workers: int) -> int:
    """How many tasks can run at once: local processes, or the Dask cluster's worker threads."""
    if is_local(scheduler):
        return workers or os.cpu_count() or 1
    with dask_client(scheduler) as client:
        return max(1, sum(client.nthreads().values()))


def run_tasks(fn: Callable[[T], R], items: Sequence[T], scheduler: str = "local",
              workers: int = 0) -> Iterator[tuple[T, R]]:
    """Run ``fn`` on every item (module doc); yield ``(item, result)`` as tasks finish."""
    if not items:
        return
    if is_local(scheduler):
        workers = workers or os.cpu_count() or 1
        if workers == 1 or len(items) == 1:
            with threadpool_limits(1):  # as in the workers: the same summation order, bit-identical results
                for item in items:
                    yield item, fn(item)
            return
        with ProcessPoolExecutor(min(workers, len(items)), mp_context=mp.get_context("fork"),
                                 initializer=_init_worker) as pool:
            futures = {pool.submit(fn, item): item for item in items}
            for fut in as_completed(futures):
                yield futures[fut], fut.result()
        return
    yield from _run_dask(fn, items, scheduler)


def _limited(fn, item):
    with threadpool_limits(1):
        return fn(item)


def _run_dask(fn, items: Iterable, address: str):
    from dask.distributed import as_completed as dask_completed
    with dask_client(address) as client:
        futures = [client.submit(_limited, fn, item, pure=False) for item in items]
        where = {f.key: item for f, item in zip(futures, items)}
        try:
            for fut in dask_completed(futures):
                yield where[fut.key], fut.result()
        finally:
            client.cancel(futures)
