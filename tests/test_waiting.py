"""The waiting helpers of the slow tests (tests/waiting.py), checked on this process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.waiting import has_loaded, sandboxed, started_after, wait_until


def test_wait_until_returns_the_first_true_value_and_fails_at_its_deadline():
    calls = iter([0, "", "ready", "later"])
    assert wait_until(lambda: next(calls), 5, "a value", every=0.01) == "ready"
    started = time.monotonic()
    with pytest.raises(AssertionError, match="waited 0.2 s for nothing at all, in vain"):
        wait_until(lambda: None, 0.2, "nothing at all", every=0.05)
    assert time.monotonic() - started < 2


def test_processes_are_told_apart_by_what_they_loaded_and_their_uid():
    assert has_loaded(os.getpid(), "python")
    assert not has_loaded(os.getpid(), "no-such-library-anywhere")
    assert not sandboxed(os.getpid())  # the test runs as root or a user, not a sandbox uid
    ended = subprocess.Popen([sys.executable, "-c", ""])
    ended.wait()
    assert not has_loaded(ended.pid, "python") and not sandboxed(ended.pid)  # gone: False


def test_started_after_tells_a_new_process_from_an_old_one():
    before = time.time()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert started_after(child.pid, before)
        assert not started_after(os.getpid(), before)  # this test's process is older
    finally:
        child.kill()
        child.wait()
    assert not started_after(child.pid, before)  # gone
