"""A worker process of the pool (server/workers.py): what it keeps between jobs, and the thread jobs run on.

The jobs themselves are in ``jobs.py``. Each worker runs its jobs on one thread with a large stack and a
raised recursion limit: on Python 3.11 the C JSON parser and encoder then handle documents nested to
the limit at full speed. The limits never depend on it (newer Pythons cap the C parser at a fixed
depth; server/jsontext.py takes over past it).
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from replayd.scrubbing import Scrubber

from ..config import LimitsConfig
from ..scrub_rules import load_rules_file

T = TypeVar("T")

JOB_STACK_BYTES = 512 * 1024 * 1024


class _Worker:
    """What one worker process keeps between jobs: the compiled scrubber, the limits, the job thread.
    Called in-process (tests, the scrub CLI), jobs run on the caller's thread with the default limits."""

    scrubber: Scrubber | None = None
    limits: LimitsConfig = LimitsConfig()
    thread: ThreadPoolExecutor | None = None


def init_worker(rules_path: str | None, secret: str, limits: LimitsConfig) -> None:
    sys.setrecursionlimit(limits.max_nesting_depth + 500)
    threading.stack_size(JOB_STACK_BYTES)
    _Worker.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="job")
    threading.stack_size(0)
    _Worker.scrubber = Scrubber(load_rules_file(rules_path), secret=secret.encode())
    _Worker.limits = limits


def run_job(fn: Callable[..., T], *args: Any) -> T:
    """What the pool calls: ``fn(*args)`` on the job thread, without the cyclic garbage collector.

    A segment's parse allocates hundreds of thousands of lists and dicts, and each few hundred of
    them started a collection that walked the young ones, and now and then every object in the
    process: about 15 % of a job's CPU. A parsed segment holds no cycles (refcounting frees it when
    the job ends); the collector runs again between jobs, so what cycles a job does leave (an
    exception's traceback) are still collected.
    """
    gc.disable()
    try:
        if _Worker.thread is None:  # a benchmark's or test's process: on this thread
            return fn(*args)
        return _Worker.thread.submit(fn, *args).result()
    finally:
        gc.enable()


def worker_scrubber() -> Scrubber:
    assert _Worker.scrubber is not None, "init_worker was not called"
    return _Worker.scrubber


def worker_limits() -> LimitsConfig:
    return _Worker.limits
