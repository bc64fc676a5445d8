"""What the grading kernels are given, gathered once per run before anyone is graded.

Kernels have no network and see only what their sandbox shows them. So the grader finds a
lab's files the way the lab does, in this process (its spec's ``given`` hooks: the offline
mirror when ``COURSE_OFFLINE_DIR`` is set, else a download cache), and hands the kernels
exactly those, by explicit paths in their environment:

* ``mirror``: a folder laid out like the offline mirror, linking to the files found above;
  both kernels get it as ``COURSE_OFFLINE_DIR``;
* ``notebook_cache``: the student's kernel's ``COURSE_CACHE_DIR``, the course cache itself
  (``~/.cache/tlcourse`` or ``$COURSE_CACHE_DIR``), which the lab's ``prepare`` hook fills
  with what the lab caches (the very files, so an instructor who ran the lab has them);
* ``check_cache``: the clean kernel's, ``grader-check/`` in the course cache; the student's
  kernel does not see it;
* ``holdout``: the held-out data, for the clean kernel alone (its ``COURSE_HOLDOUT_DIR``).

A lab that is given nothing gets none of these. Both caches serve later runs too: their
files are named by what they hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .master import Master, hook


@dataclass(frozen=True)
class KernelData:
    mirror: Path | None = None
    given_paths: tuple[str, ...] = ()  # what the mirror holds, relative to it
    linked: tuple[Path, ...] = ()  # the real files and folders the mirror's links lead to
    notebook_cache: Path | None = None
    check_cache: Path | None = None
    holdout: Path | None = None

    def given(self) -> list[Path]:
        """What every kernel is given, as it sees it: the mirror's files."""
        return [self.mirror / path for path in self.given_paths] if self.mirror else []

    def notebook_ready_check(self) -> str:
        """Code the student's kernel runs before it serves: what it is given is there."""
        return ready_check([*self.given(), *_some(self.notebook_cache)])

    def check_ready_check(self) -> str:
        """Code the clean kernel runs before it serves: the same, and the held-out data."""
        return ready_check([*self.given(), *_some(self.check_cache), *_some(self.holdout)])

    def notebook_environment(self) -> dict[str, str]:
        return _named(COURSE_OFFLINE_DIR=self.mirror, COURSE_CACHE_DIR=self.notebook_cache)

    def check_environment(self) -> dict[str, str]:
        return _named(
            COURSE_OFFLINE_DIR=self.mirror,
            COURSE_CACHE_DIR=self.check_cache,
            COURSE_HOLDOUT_DIR=self.holdout,
        )

    def readonly(self) -> list[Path]:
        """What a sandbox must show read-only for the kernels to read what they are given."""
        return [*_some(self.mirror), *self.linked]


def _some(path: Path | None) -> list[Path]:
    return [path] if path else []


def _named(**paths: Path | None) -> dict[str, str]:
    return {name: str(path) for name, path in paths.items() if path}


# Run in a kernel before it serves (grader.sandbox's ``preload``): every file under PATHS
# can be opened and read, and every HDF5 file (Keras weights) loads, array by array. Raises,
# naming the file, when one cannot: the kernel then reports that it is not ready.
READY_CHECK = """
import os

def _read(path):
    with open(path, "rb") as handle:
        handle.read(1)
    if path.endswith((".h5", ".hdf5")):
        import h5py
        with h5py.File(path, "r") as weights:
            weights.visititems(lambda _, item: item[()] if isinstance(item, h5py.Dataset) else None)

for _given in PATHS:
    if not os.path.exists(_given):
        raise FileNotFoundError(f"{_given}, which the grader gives every kernel, is missing")
    if os.path.isdir(_given):
        for _folder, _dirs, _files in os.walk(_given, followlinks=True):
            for _name in _files:
                _read(os.path.join(_folder, _name))
    else:
        _read(_given)
"""


def ready_check(paths: list[Path]) -> str:
    """:data:`READY_CHECK` for ``paths``."""
    return f"PATHS = {[str(p) for p in paths]!r}\n{READY_CHECK}"


def prepare_kernel_data(folder: Path, master: Master, holdout: Path | None) -> KernelData:
    """Find what ``master``'s lab gives its kernels, link it into ``folder``, fill the caches.

    Raises :class:`tlcourse.CourseDataError` (with what to do) when a file cannot be had.
    """
    spec = master.spec
    if not spec.given:
        return KernelData(holdout=Path(holdout).resolve() if spec.holdout and holdout else None)
    from tlcourse.downloads import cache_dir

    mirror = Path(folder) / "course_data"
    linked = []
    for path, finder in spec.given.items():
        target = Path(hook(finder)()).resolve()
        link = mirror / path
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(target)
        linked.append(target)
    course_cache = cache_dir().resolve()
    data = KernelData(
        mirror,
        tuple(spec.given),
        tuple(linked),
        course_cache,
        course_cache / "grader-check",
        Path(holdout).resolve() if spec.holdout and holdout else None,
    )
    data.check_cache.mkdir(parents=True, exist_ok=True)
    if spec.prepare:
        hook(spec.prepare)(
            master.setting_values(), data.notebook_cache, data.check_cache, data.holdout
        )
    return data
