"""Where students are graded (grader/workers.py): the tasks' results come back whatever
runs them, an error stays with its task, a worker that dies loses only what it ran, and a
pool stopped early ends its own processes and only those."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from grader import workers
from grader.workers import Task, WorkerLost, default_jobs, run_tasks, threads_per_kernel
from tests.waiting import wait_until


def quiet_start() -> None:
    """In place of the workers' initializer, which imports TensorFlow (seconds a worker, not
    needed here; the slow tier's classes run the real one)."""


@pytest.fixture(autouse=True)
def quiet_workers(monkeypatch):
    monkeypatch.setattr(workers, "_worker_started", quiet_start)


def double(value: int, seconds: float = 0.0) -> int:
    time.sleep(seconds)
    return 2 * value


def fail(message: str) -> None:
    raise ValueError(message)


def wait_for(path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def meet(folder: Path, name: str, other: str) -> tuple[int, bool]:
    """Say this task started, then wait for ``other`` to start: (pid, whether it did)."""
    (folder / name).touch()
    wait_for(folder / other, 30)
    return os.getpid(), (folder / other).exists()


def die_beside(folder: Path) -> None:
    """Die once the task ``beside`` is running in the other worker."""
    wait_for(folder / "beside")
    os.kill(os.getpid(), signal.SIGKILL)


def beside(folder: Path) -> str:
    (folder / "beside").touch()
    time.sleep(3)
    return "done"


def results(tasks: list[Task], jobs: int) -> dict[str, object]:
    return {task.key: result for task, result in run_tasks(tasks, jobs)}


def test_one_job_runs_here_and_keeps_an_error_with_its_task():
    got = results([Task("a", double, (1,)), Task("b", fail, ("no",)), Task("c", os.getpid, ())], 1)
    assert got["a"] == 2 and got["c"] == os.getpid()
    assert isinstance(got["b"], ValueError) and str(got["b"]) == "no"


def test_local_processes_run_tasks_at_once_elsewhere(tmp_path):
    got = results(
        [Task("a", meet, (tmp_path, "a", "b")), Task("b", meet, (tmp_path, "b", "a"))]
        + [Task(str(n), double, (n,)) for n in range(3)],
        2,
    )
    (pid_a, met_a), (pid_b, met_b) = got["a"], got["b"]
    assert met_a and met_b  # each saw the other running: two at a time
    assert len({pid_a, pid_b, os.getpid()}) == 3  # in two processes, not this one
    assert [got[str(n)] for n in range(3)] == [0, 2, 4]


def test_a_dead_worker_loses_its_task_and_the_rest_is_run(tmp_path):
    """The task whose process died is lost. A local pool notices a dead process late, and
    cannot tell which task it ran: every task running when it does is lost with it (the next
    run grades those); every other task gets its own result, the later ones in a new pool."""
    tasks = [Task("dies", die_beside, (tmp_path,)), Task("beside", beside, (tmp_path,))]
    tasks += [Task(f"later{n}", double, (n,)) for n in range(3)]
    got = results(tasks, 2)
    assert isinstance(got["dies"], WorkerLost)
    expected = {"beside": "done", "later0": 0, "later1": 2, "later2": 4}
    for key, value in expected.items():
        assert got[key] == value or isinstance(got[key], WorkerLost), (key, got[key])
    assert sum(got[key] == value for key, value in expected.items()) >= 2


def test_jobs_follow_cores_and_memory_and_threads_are_shared_out():
    cores = len(os.sched_getaffinity(0))
    assert default_jobs(None) == cores
    assert default_jobs(1 << 60) == 1  # no machine has an exbibyte for a second student
    assert threads_per_kernel(1) is None
    assert threads_per_kernel(cores) == 1
    assert threads_per_kernel(cores * 4) == 1


def test_the_default_jobs_follow_the_class_size():
    cores = len(os.sched_getaffinity(0))
    assert default_jobs(None, students=3) == 1  # a worker's start-up is not repaid
    assert default_jobs(None, students=4 * cores) == cores
    assert default_jobs(None, students=1000) == cores


def started_then_sleeps(folder: Path) -> None:
    (folder / "slow.pid").write_text(str(os.getpid()))
    time.sleep(120)


def gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


def test_a_pool_stopped_early_kills_its_workers_and_no_other_child(tmp_path):
    bystander = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(120,))
    bystander.start()
    try:
        tasks = [Task("slow", started_then_sleeps, (tmp_path,)), Task("fast", os.getpid, ())]
        results = run_tasks(tasks, jobs=2)
        task, fast_pid = next(results)
        assert task.key == "fast" and fast_pid != os.getpid()
        slow = tmp_path / "slow.pid"
        slow_pid = int(wait_until(lambda: slow.exists() and slow.read_text(), 60, "slow.pid"))
        results.close()  # the caller stops iterating (an error, Ctrl-C)
        assert gone(fast_pid) and gone(slow_pid)  # killed and reaped
        assert bystander.is_alive() and bystander.exitcode is None
    finally:
        bystander.kill()
        bystander.join()
