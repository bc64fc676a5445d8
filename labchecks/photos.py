"""The grader's hooks for the course's photo labs, named in their ``lab.toml``.

Each hook takes the lab's settings (``settings``: the constants of the master notebook's
``*_setting`` cells, e.g. lab 2's ``CUT``). :func:`prepare_*` run once per grading run, in
the grader, before anyone is graded: they fill the course caches the kernels are given.
:func:`warm_*` run in a clean kernel before it serves.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import keras

import tlcourse
from tlcourse.features import feature_file

from . import holdout, mobilenet


def prepare_pooled(settings: dict, notebook_cache: Path, check_cache: Path, held_out: Path | None):
    """Lab 1: cache the pooled features (see :func:`fill_caches`)."""
    fill_caches(mobilenet.pooled_extractor(), notebook_cache, check_cache, held_out)


def prepare_bottom(settings: dict, notebook_cache: Path, check_cache: Path, held_out: Path | None):
    """Lab 2: cache the bottom's output, the base up to its ``CUT`` (see :func:`fill_caches`)."""
    fill_caches(mobilenet.bottom_extractor(settings["CUT"]), notebook_cache, check_cache, held_out)


def warm_pooled(settings: dict) -> None:
    """Lab 1's clean kernel: the digests, the pooled extractor and its held-out features."""
    mobilenet.imagenet_digests()
    holdout.warm_up(mobilenet.pooled_extractor(), tlcourse.holdout_dir())


def warm_bottom(settings: dict) -> None:
    """Lab 2's clean kernel: the digests, the bottom and its held-out output."""
    mobilenet.imagenet_digests()
    holdout.warm_up(mobilenet.bottom_extractor(settings["CUT"]), tlcourse.holdout_dir())


def fill_caches(
    extractor: keras.Model, notebook_cache: Path, check_cache: Path, held_out: Path | None
) -> None:
    """Cache ``extractor``'s output of the photos each kernel may read (the lab's train and
    validation photos for the student's kernel, the held-out and validation photos for the
    clean kernel) and the ImageNet digests for both."""
    photos = tlcourse.cats_and_dogs_dir()
    for split in ("train", "validation"):
        tlcourse.cached_features(
            extractor, photos / split, cache=notebook_cache / "features", verbose=False
        )
    if held_out is not None:
        tlcourse.cached_features(extractor, held_out, cache=check_cache / "features", verbose=False)
    # The clean kernel's checks sample the validation photos too (lab 2's Parts C and D): the
    # notebook cache's file, copied rather than computed again.
    computed = feature_file(extractor, photos / "validation", cache=notebook_cache / "features")
    copy = feature_file(extractor, photos / "validation", cache=check_cache / "features")
    if not copy.exists():
        copy.parent.mkdir(parents=True, exist_ok=True)
        partial = copy.with_suffix(f".{os.getpid()}.partial.npz")
        shutil.copyfile(computed, partial)
        partial.replace(copy)  # atomic, as tlcourse.cached_features writes it
    for cache in (notebook_cache, check_cache):
        mobilenet.imagenet_digests(cache)
