"""Waiting, in tests, for something to happen (with a deadline) instead of sleeping."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

from grader.sandbox import UID_BASE, UID_COUNT

T = TypeVar("T")


def wait_until(condition: Callable[[], T], seconds: float, what: str, every: float = 0.2) -> T:
    """Call ``condition`` until it returns something true, and return that; fail, naming
    ``what``, once ``seconds`` have passed first."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {seconds:g} s for {what}, in vain")
        time.sleep(every)


def has_loaded(pid: int, library: str) -> bool:
    """Whether process ``pid`` has a file named like ``library`` mapped (a shared library it
    imported); False once it is gone."""
    try:
        with open(f"/proc/{pid}/maps") as maps:
            return any(library in line for line in maps)
    except OSError:
        return False


def sandboxed(pid: int) -> bool:
    """Whether process ``pid`` runs as one of the sandbox's uids (a student's kernel or the
    clean kernel); False once it is gone."""
    try:
        return UID_BASE <= os.stat(f"/proc/{pid}").st_uid < UID_BASE + UID_COUNT
    except OSError:
        return False


def started_after(pid: int, moment: float) -> bool:
    """Whether process ``pid`` started after ``moment`` (a ``time.time()``), to the kernel's
    clock tick (compared in seconds since boot: /proc/stat's btime is whole seconds only);
    False once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            ticks = int(handle.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    moment_since_boot = uptime - (time.time() - moment)
    return ticks / os.sysconf("SC_CLK_TCK") > moment_since_boot - 0.02
