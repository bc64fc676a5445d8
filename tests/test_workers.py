"""Where students are graded (grader/workers.py): the tasks' results come back whatever
runs them, an error stays with its task, and a worker that dies loses only what it ran."""

from __future__ import annotations

import os
import signal
import time

from grader.workers import Task, WorkerLost, default_jobs, run_tasks, threads_per_kernel


def double(value: int, seconds: float = 0.0) -> int:
    time.sleep(seconds)
    return 2 * value


def fail(message: str) -> None:
    raise ValueError(message)


def die(seconds: float) -> None:
    time.sleep(seconds)
    os.kill(os.getpid(), signal.SIGKILL)


def results(tasks: list[Task], jobs: int) -> dict[str, object]:
    return {task.key: result for task, result in run_tasks(tasks, jobs)}


def test_one_job_runs_here_and_keeps_an_error_with_its_task():
    got = results([Task("a", double, (1,)), Task("b", fail, ("no",)), Task("c", os.getpid, ())], 1)
    assert got["a"] == 2 and got["c"] == os.getpid()
    assert isinstance(got["b"], ValueError) and str(got["b"]) == "no"


def test_local_processes_run_tasks_at_once_elsewhere():
    started = time.monotonic()
    got = results(
        [Task(str(n), double, (n, 1.0)) for n in range(4)] + [Task("pid", os.getpid, ())], 2
    )
    assert {k: v for k, v in got.items() if k != "pid"} == {"0": 0, "1": 2, "2": 4, "3": 6}
    assert got["pid"] != os.getpid()
    assert time.monotonic() - started < 4.0 + 3.0  # two at a time, not 4 s one after another


def test_a_dead_worker_loses_what_was_running_and_the_rest_is_run():
    tasks = [Task("dies", die, (0.2,)), Task("beside", double, (1, 3.0))]
    tasks += [Task(f"later{n}", double, (n,)) for n in range(3)]
    got = results(tasks, 2)
    assert isinstance(got["dies"], WorkerLost) and isinstance(got["beside"], WorkerLost)
    assert {k: got[k] for k in ("later0", "later1", "later2")} == {
        "later0": 0,
        "later1": 2,
        "later2": 4,
    }


def test_jobs_follow_cores_and_memory_and_threads_are_shared_out():
    cores = len(os.sched_getaffinity(0))
    assert default_jobs(None) == cores
    assert default_jobs(1 << 60) == 1  # no machine has an exbibyte for a second student
    assert threads_per_kernel(1) is None
    assert threads_per_kernel(cores) == 1
    assert threads_per_kernel(cores * 4) == 1
