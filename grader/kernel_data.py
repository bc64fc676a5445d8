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
