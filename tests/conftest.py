"""Shared test set-up: offline mirror, temporary caches, and no silent skips in CI.

The tests run the course's real code against the offline mirror named by
``COURSE_OFFLINE_DIR`` (default: ``../shared/offline`` beside the repository). Keras and
feature caches live in a temporary folder for the whole session, so every notebook and
grading run in the session shares them, as a class being graded would.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MIRROR = REPO.parent / "shared" / "offline"

if not os.environ.get("COURSE_OFFLINE_DIR") and DEFAULT_MIRROR.is_dir():
    os.environ["COURSE_OFFLINE_DIR"] = str(DEFAULT_MIRROR)
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="tlcourse-tests-"))
os.environ.setdefault("KERAS_HOME", str(_SESSION_DIR / "keras"))
os.environ.setdefault("COURSE_CACHE_DIR", str(_SESSION_DIR / "cache"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")


def _mirror_problem() -> str:
    mirror = os.environ.get("COURSE_OFFLINE_DIR", "")
    needed = ["keras/models", "cats_and_dogs_filtered/train", "holdout"]
    if not mirror:
        return f"COURSE_OFFLINE_DIR is not set and {DEFAULT_MIRROR} does not exist"
    missing = [name for name in needed if not (Path(mirror) / name).is_dir()]
    return f"the offline mirror {mirror} lacks {', '.join(missing)}" if missing else ""


@pytest.fixture(scope="session")
def offline_mirror() -> Path:
    """The offline mirror with the real photos and weights; skipping it is an error in CI."""
    problem = _mirror_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"real-data test cannot run in CI: {problem}")
        pytest.skip(problem)
    return Path(os.environ["COURSE_OFFLINE_DIR"])


@pytest.fixture(scope="session")
def session_dir() -> Path:
    """A temporary folder shared by the whole test session."""
    return _SESSION_DIR


_MEASUREMENTS: list[str] = []


@pytest.fixture(scope="session")
def report():
    """Call with a line (a time, a score): printed in the summary at the end of the run."""
    return _MEASUREMENTS.append


def pytest_terminal_summary(terminalreporter):
    if _MEASUREMENTS:
        terminalreporter.section("measurements")
        for line in _MEASUREMENTS:
            terminalreporter.write_line(line)
