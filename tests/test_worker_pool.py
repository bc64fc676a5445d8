"""A local pool that is stopped early (grader/workers.py) ends its own processes, and only
those: the caller's other child processes live on."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

from grader import workers
from grader.workers import Task, run_tasks
from tests.waiting import wait_until


def quiet_start() -> None:
    """In place of the workers' initializer, which imports TensorFlow (seconds, not needed)."""


def started_then_sleeps(folder: Path) -> None:
    (folder / "slow.pid").write_text(str(os.getpid()))
    time.sleep(120)


def gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


def test_a_pool_stopped_early_kills_its_workers_and_no_other_child(tmp_path, monkeypatch):
    monkeypatch.setattr(workers, "_worker_started", quiet_start)
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
