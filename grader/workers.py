"""Where the students of a run are graded: in this process, in local worker processes, or on
a Dask cluster. Each student is one task (grader.grading.grade_notebook) submitted through a
``concurrent.futures`` executor; the results come back here, to the coordinator, which alone
writes OUT. Nothing else in the grader knows which executor ran a task.

* ``jobs == 1`` and no scheduler: one student after another, in this process.
* ``jobs > 1``: a pool of ``jobs`` local processes (started fresh, not forked: TensorFlow
  is not fork-safe), each grading one student at a time.
* ``scheduler``: the workers of a running Dask cluster (``distributed.Client(address)``).

A worker that dies loses only the students being graded with it: on a cluster, those it
was grading; in a local pool, which cannot tell which of its processes died, every student
being graded in it. They get no record, and the next run grades them (the coordinator says
so). A local pool is then started again for the students not yet begun.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

PR_SET_PDEATHSIG = 1


@dataclass
class Task:
    """One call to run: ``function(*args)``, for ``key`` (the student id)."""

    key: str
    function: Callable[..., Any]
    args: tuple


class WorkerLost(Exception):
    """The process that ran a task died (out of memory, killed); the task has no result."""


STUDENTS_PER_WORKER = 4  # a local worker's start-up (~20 s) is repaid from about 4 students


def default_jobs(memory_per_student: int | None, students: int | None = None) -> int:
    """As many students at once as there are cores and as memory allows, and at most one
    worker per :data:`STUDENTS_PER_WORKER` students (``students``: how many are to be graded),
    so that the default is never slower than one at a time (measured: README, "Grading in
    parallel")."""
    cores = len(os.sched_getaffinity(0))
    jobs = cores
    if memory_per_student:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        jobs = min(jobs, memory // memory_per_student)
    if students is not None:
        jobs = min(jobs, students // STUDENTS_PER_WORKER)
    return max(1, jobs)


def threads_per_kernel(jobs: int) -> int | None:
    """TensorFlow threads for each kernel when ``jobs`` students share this machine's cores
    (None for one student at a time: TensorFlow's default, every core)."""
    if jobs <= 1:
        return None
    return max(1, len(os.sched_getaffinity(0)) // jobs)


def run_tasks(
    tasks: list[Task], jobs: int = 1, scheduler: str | None = None
) -> Iterator[tuple[Task, Any]]:
    """Run ``tasks``; yield each with its result (or the exception it raised, or
    :class:`WorkerLost`) as it finishes. Stopping the iteration (Ctrl-C, SIGTERM, an error in
    the caller) stops every worker of a local pool at once."""
    if scheduler:
        yield from _on_cluster(tasks, scheduler)
    elif jobs <= 1:
        for task in tasks:
            try:
                result = task.function(*task.args)
            except Exception as error:  # noqa: BLE001 - handed to the caller
                result = error
            yield task, result
    else:
        yield from _in_local_processes(tasks, jobs)


def _in_local_processes(tasks: list[Task], jobs: int) -> Iterator[tuple[Task, Any]]:
    # At most ``jobs`` tasks are submitted at a time, so that all of them are being graded
    # when the pool breaks (a worker died): those are lost, the rest go to a new pool.
    waiting = list(reversed(tasks))
    while waiting:
        pool = ProcessPoolExecutor(
            max_workers=min(jobs, len(waiting)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_started,
        )
        running: dict[Future, Task] = {}
        try:
            broken = False
            while (waiting and not broken) or running:
                while waiting and not broken and len(running) < jobs:
                    task = waiting.pop()
                    running[pool.submit(task.function, *task.args)] = task
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    if future not in running:  # lost with a broken pool, reported already
                        continue
                    task, error = running.pop(future), future.exception()
                    if not isinstance(error, BrokenProcessPool):
                        yield task, error if error is not None else future.result()
                    else:  # which process died is not known: all of them are lost
                        broken = True
                        lost = WorkerLost("a local grading process died")
                        yield task, lost
                        for other in running.values():
                            yield other, lost
                        running.clear()
        finally:
            processes = _processes_of(pool)  # before shutdown, which forgets them
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.kill()
            for process in processes:
                process.join()


def _processes_of(pool: ProcessPoolExecutor) -> list[BaseProcess]:
    """The pool's own worker processes (not the caller's other children), started so far.
    ``concurrent.futures`` keeps them in ``_processes``, which it has no public name for."""
    return list((getattr(pool, "_processes", None) or {}).values())


def _worker_started() -> None:
    """In each local worker: die with the coordinator; leave Ctrl-C to the coordinator;
    keep TensorFlow's start-up lines out of the coordinator's output."""
    from .config import import_tensorflow_quietly

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import_tensorflow_quietly()


def _on_cluster(tasks: list[Task], scheduler: str) -> Iterator[tuple[Task, Any]]:
    from distributed import Client
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    client = Client(scheduler, set_as_default=False)
    executor: Executor = client.get_executor(pure=False)
    try:
        running = {executor.submit(t.function, *t.args): t for t in tasks}
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                task, error = running.pop(future), future.exception()
                if isinstance(error, KilledWorker | FutureCancelledError):
                    error = WorkerLost(f"the Dask worker running it died ({error})")
                yield task, error if error is not None else future.result()
    finally:
        executor.shutdown(wait=False)
        client.close()
