"""What the grading kernels are given, gathered once per run before anyone is graded.

Kernels have no network and see only what their sandbox shows them. So the grader finds the
lab's files the way the lab does, in this process (the offline mirror when
``COURSE_OFFLINE_DIR`` is set, else Keras' own cache, where a first run downloads them), and
hands the kernels exactly those, by explicit paths in their environment:

* ``mirror``: a folder laid out like the offline mirror, linking to the photos and the
  weights found above; both kernels get it as ``COURSE_OFFLINE_DIR``;
* ``notebook_cache``: the student's kernel's ``COURSE_CACHE_DIR``, the course cache itself
  (``~/.cache/tlcourse`` or ``$COURSE_CACHE_DIR``): the frozen base's features of the
  training and validation photos (Part D; the very files the lab caches, so an instructor
  who ran it has them already) and the ImageNet digests;
* ``check_cache``: the clean kernel's, ``grader-check/`` in the course cache: the held-out
  photos' features and the digests. The student's kernel does not see this folder.

The held-out photos and their features never reach the student's kernel. Both caches serve
later runs too: their files are named by what they hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LAB_PHOTOS = "cats_and_dogs_filtered"


@dataclass(frozen=True)
class KernelData:
    mirror: Path
    linked: tuple[Path, ...]  # the real folder and file the mirror's links lead to
    notebook_cache: Path
    check_cache: Path
    holdout: Path

    def given(self) -> list[Path]:
        """What every kernel is given, as it sees it: the mirror's photos and weights."""
        weights = [
            self.mirror / "keras" / "models" / p.name for p in self.linked if p.suffix == ".h5"
        ]
        return [self.mirror / LAB_PHOTOS, *weights]

    def notebook_ready_check(self) -> str:
        """Code the student's kernel runs before it serves: what it is given is there."""
        return ready_check([*self.given(), self.notebook_cache])

    def check_ready_check(self) -> str:
        """Code the clean kernel runs before it serves: the same, and the held-out photos."""
        return ready_check([*self.given(), self.check_cache, self.holdout])

    def notebook_environment(self) -> dict[str, str]:
        return {
            "COURSE_OFFLINE_DIR": str(self.mirror),
            "COURSE_CACHE_DIR": str(self.notebook_cache),
        }

    def check_environment(self) -> dict[str, str]:
        return {
            "COURSE_OFFLINE_DIR": str(self.mirror),
            "COURSE_CACHE_DIR": str(self.check_cache),
            "COURSE_HOLDOUT_DIR": str(self.holdout),
        }


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


def prepare_kernel_data(folder: Path, holdout: Path) -> KernelData:
    """Find the lab's files, link them into ``folder``, fill both caches.

    Raises :class:`tlcourse.CourseDataError` (with what to do) when a file cannot be had.
    """
    import tlcourse
    from tlcourse import reference
    from tlcourse.downloads import cache_dir

    photos = tlcourse.cats_and_dogs_dir().resolve()
    weights = tlcourse.mobilenet_v2_weights().resolve()
    mirror = Path(folder) / "course_data"
    (mirror / "keras" / "models").mkdir(parents=True, exist_ok=True)
    for link, target in (
        (mirror / LAB_PHOTOS, photos),
        (mirror / "keras" / "models" / weights.name, weights),
    ):
        link.unlink(missing_ok=True)
        link.symlink_to(target)
    course_cache = cache_dir().resolve()
    data = KernelData(
        mirror,
        (photos, weights),
        course_cache,
        course_cache / "grader-check",
        Path(holdout).resolve(),
    )
    extractor = reference.feature_extractor()
    for split in ("train", "validation"):
        tlcourse.cached_features(
            extractor, photos / split, cache=data.notebook_cache / "features", verbose=False
        )
    tlcourse.cached_features(
        extractor, data.holdout, cache=data.check_cache / "features", verbose=False
    )
    for cache in (data.notebook_cache, data.check_cache):
        reference.imagenet_digests(cache)
    return data
