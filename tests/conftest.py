"""Shared test set-up: the offline mirror, a temporary home, and commands run as users run them.

The tests run the course's real code against the offline mirror named by
``COURSE_OFFLINE_DIR`` (default: ``../shared/offline`` beside the repository), the one
setting a classroom without internet uses too. Nothing else is prepared for the code: no
``KERAS_HOME``, no ``COURSE_CACHE_DIR``. ``HOME`` is a temporary folder for the whole session,
so every cache the code fills (``~/.keras``, ``~/.cache/tlcourse``) starts empty, is shared
by the session as one user's would be, and the developer's own home is left alone; the
gradebook the grader fills (``COURSE_GRADEBOOK``) is there too, not the repository's. A run
adds its course cache (``~/.cache/tlcourse``: the photos' features, named by what determines
them) to pytest's cache folder; ``--course-cache-of-last-run`` (``make test-all``) starts from it, as
an instructor's second run starts from the first's, so the slow tier does not compute again
what the fast tier computed from nothing.

Commands a user types are run by :func:`run_as_user`: in a fresh process whose environment
holds only ``PATH`` (without the virtual environment: ``.venv/bin/python -m ...`` as it is
often called), ``HOME``, ``LANG`` and what the test names, from a folder outside the
repository.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MIRROR = REPO.parent / "shared" / "offline"
COLAB_PYTHON = REPO / ".venv-colab" / "bin" / "python"  # built by `make test-all`
SESSION_DIR = Path(tempfile.mkdtemp(prefix="tlcourse-tests-"))
HOME = SESSION_DIR / "home"
HOME.mkdir()

if not os.environ.get("COURSE_OFFLINE_DIR") and DEFAULT_MIRROR.is_dir():
    os.environ["COURSE_OFFLINE_DIR"] = str(DEFAULT_MIRROR)
os.environ["HOME"] = str(HOME)  # before Keras is imported: it reads ~ once
for name in ("KERAS_HOME", "COURSE_CACHE_DIR", "COURSE_HOLDOUT_DIR", "COURSE_HANDIN_DIR"):
    os.environ.pop(name, None)
# The gradebook the grader fills (grader/gradebook.py): the session's, never the repository's.
os.environ["COURSE_GRADEBOOK"] = str(HOME / "gradebook.db")
os.environ.setdefault("MPLBACKEND", "Agg")  # no display here


def user_environment(home: Path = HOME, **names: str) -> dict[str, str]:
    """The environment of a user's shell: PATH without the virtual environment, HOME, LANG,
    a gradebook in that home (never the repository's), and ``names`` (e.g.
    ``COURSE_OFFLINE_DIR``)."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "COURSE_GRADEBOOK": str(Path(home) / "gradebook.db"),
        **names,
    }


def run_as_user(
    args: list[str],
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: int = 3600,
    python: str | Path = sys.executable,
) -> subprocess.CompletedProcess:
    """Run ``python args...`` (this environment's Python, not activated) as a user would."""
    return subprocess.run(
        [str(python), *map(str, args)],
        env=env or user_environment(COURSE_OFFLINE_DIR=os.environ.get("COURSE_OFFLINE_DIR", "")),
        cwd=cwd or SESSION_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


ORDINARY_USER = "tlgrader"  # CI creates it (.ci/run), and opens the folders above Python


def run_as(
    user: pwd.struct_passwd,
    args: list,
    env: dict[str, str] | None = None,
    cwd: Path | str = "/",
    timeout: int = 1800,
) -> subprocess.CompletedProcess:
    """Run ``python args...`` (this environment's Python) as ``user``, with a bare
    environment (``env``, default: that of the user's shell, without the mirror)."""
    return subprocess.run(
        [sys.executable, *map(str, args)],
        env=env or user_environment(Path(user.pw_dir)),
        cwd=cwd,
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def ordinary_user() -> pwd.struct_passwd:
    """An ordinary user who can run this environment's Python (tests run as root start
    commands as this user; created here when missing)."""
    problem = ""
    if os.geteuid() != 0:
        problem = "this test starts commands as another user: run it as root"
    else:
        try:
            user = pwd.getpwnam(ORDINARY_USER)
        except KeyError:
            command = ["useradd", "--create-home", ORDINARY_USER]
            subprocess.run(command, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, check=True)
            user = pwd.getpwnam(ORDINARY_USER)
        check = run_as(user, ["-c", "import grader"], cwd=REPO, timeout=60)
        if check.returncode == 0:
            return user
        problem = (
            f"{ORDINARY_USER} cannot run {sys.executable} in {REPO} ({check.stderr.strip()}):"
            " chmod o+x the folders above both, as .ci/run does"
        )
    _fail_or_skip(problem)


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
        _fail_or_skip(f"real-data test: {problem}")
    return Path(os.environ["COURSE_OFFLINE_DIR"])


def _fail_or_skip(problem: str) -> None:
    """A missing requirement of a real-data or real-version test: an error in CI."""
    if os.environ.get("CI"):
        pytest.fail(f"cannot run in CI: {problem}")
    pytest.skip(problem)


@pytest.fixture(scope="session")
def colab_python() -> Path:
    """The Python of Colab's versions (requirements-colab.txt) with the helper package
    installed over them without its dependencies, as the notebooks' setup cell does."""
    if not COLAB_PYTHON.exists():
        _fail_or_skip(f"{COLAB_PYTHON} is missing: `make test-all` builds it")
    return COLAB_PYTHON


@pytest.fixture(scope="session")
def session_dir() -> Path:
    """A temporary folder shared by the whole test session."""
    return SESSION_DIR


COURSE_CACHE = HOME / ".cache" / "tlcourse"
KEPT_CACHE = "course-cache"  # its name in pytest's cache folder (.pytest_cache/d/)


def pytest_addoption(parser):
    parser.addoption(
        "--course-cache-of-last-run",
        action="store_true",
        help="start the session's home with the course cache the last test run kept",
    )


def pytest_sessionstart(session):
    kept = _kept_cache(session.config)
    if session.config.getoption("--course-cache-of-last-run") and kept and kept.is_dir():
        shutil.copytree(kept, COURSE_CACHE, dirs_exist_ok=True)


def pytest_sessionfinish(session):
    kept = _kept_cache(session.config)
    if kept and COURSE_CACHE.is_dir():  # added to what earlier runs kept (files named by content)
        ignore = shutil.ignore_patterns("*.partial.*")
        shutil.copytree(COURSE_CACHE, kept, ignore=ignore, dirs_exist_ok=True)


def _kept_cache(config) -> Path | None:
    """Where runs keep the course cache (None when pytest's cache plugin is off)."""
    cache = getattr(config, "cache", None)
    return cache.mkdir(KEPT_CACHE) if cache is not None else None


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
