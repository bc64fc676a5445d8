"""Downloads that also work without internet.

Every file the course needs comes through :func:`fetch`. Normally it calls
``keras.utils.get_file`` (download once, then cached). When the environment
variable ``COURSE_OFFLINE_DIR`` names a folder laid out like the course's offline
mirror, the file is served from that folder and nothing touches the network::

    $COURSE_OFFLINE_DIR/
        keras/models/<weights file>.h5
        cats_and_dogs_filtered/{train,validation}/{cats,dogs}/*.jpg
        holdout/{cats,dogs}/*.jpg

``COURSE_DOWNLOAD_BASE`` (say ``http://cache.campus:8080``) downloads from a server that
mirrors the paths of storage.googleapis.com instead; the tests use it to run the online
path against a local server.
"""

from __future__ import annotations

import os
from pathlib import Path

OFFLINE_ENV = "COURSE_OFFLINE_DIR"
CACHE_ENV = "COURSE_CACHE_DIR"
# A server that mirrors the official host's paths (a campus cache, the tests' local server).
BASE_ENV = "COURSE_DOWNLOAD_BASE"
OFFICIAL_HOST = "https://storage.googleapis.com"
# The pretrained weights the lab uses: MobileNetV2 (alpha 1.0, 224 px) without its top, under
# the name and address keras.applications uses, so both share one copy in Keras' cache.
WEIGHTS_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
WEIGHTS_URL = (
    f"https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/{WEIGHTS_FILE}"
)


class CourseDataError(RuntimeError):
    """A file the course needs is missing; the message says where to put it."""


def offline_dir() -> Path | None:
    """The offline mirror named by ``COURSE_OFFLINE_DIR``, or None when online."""
    value = os.environ.get(OFFLINE_ENV, "").strip()
    if not value:
        return None
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise CourseDataError(
            f"{OFFLINE_ENV}={value!r} is not a folder. Point it at the course's offline "
            f"mirror (a folder holding keras/, cats_and_dogs_filtered/, holdout/), "
            f"or unset it to download from the internet."
        )
    return path


def cache_dir() -> Path:
    """Folder for files the course computes (feature cache, exported data sets)."""
    path = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "tlcourse")
    path.mkdir(parents=True, exist_ok=True)
    return path


def fetch(
    fname: str,
    origin: str,
    mirror_path: str,
    *,
    cache_subdir: str = "datasets",
    extract: bool = False,
) -> Path:
    """Return a local path for ``fname``: from the offline mirror, or downloaded once.

    ``mirror_path`` is where the file (or, for archives, the extracted folder) lives
    inside the offline mirror.
    """
    mirror = offline_dir()
    if mirror is not None:
        path = mirror / mirror_path
        if path.exists():
            return path
        raise CourseDataError(
            f"Offline mode ({OFFLINE_ENV}={mirror}) but {path} does not exist. "
            f"Put a copy of {origin} there (unpacked if it is an archive), "
            f"or unset {OFFLINE_ENV} to download it."
        )
    return download(fname, origin, cache_subdir=cache_subdir, extract=extract)


def download(
    fname: str, origin: str, *, cache_subdir: str = "datasets", extract: bool = False
) -> Path:
    """``keras.utils.get_file``: ``fname`` from ``origin`` (or ``$COURSE_DOWNLOAD_BASE``),
    downloaded once into Keras' cache; a failure says what to do."""
    import keras

    url = download_url(origin)
    try:
        return Path(
            keras.utils.get_file(fname, origin=url, cache_subdir=cache_subdir, extract=extract)
        )
    except Exception as error:  # urllib, HTTP and archive errors all mean the same here
        raise CourseDataError(
            f"Could not download {fname} from {url} ({error}). Check the internet "
            f"connection, or download it by hand into a folder laid out like the course's "
            f"offline mirror and set {OFFLINE_ENV} to that folder."
        ) from error


def download_url(origin: str) -> str:
    """``origin``, or the same path on ``$COURSE_DOWNLOAD_BASE`` when that is set."""
    base = os.environ.get(BASE_ENV, "").strip().rstrip("/")
    if base and origin.startswith(OFFICIAL_HOST + "/"):
        return base + origin[len(OFFICIAL_HOST) :]
    return origin


def mobilenet_v2_weights() -> Path:
    """The lab's ImageNet weights file: from the offline mirror, or Keras' cache (downloaded once)."""
    return fetch(WEIGHTS_FILE, WEIGHTS_URL, f"keras/models/{WEIGHTS_FILE}", cache_subdir="models")


def seed_keras_cache() -> list[Path]:
    """Put the offline mirror's pretrained weights into the Keras cache.

    After this, ``keras.applications.MobileNetV2(weights="imagenet", ...)`` finds its
    weights without a download. Does nothing when ``COURSE_OFFLINE_DIR`` is unset.
    The copy goes through ``keras.utils.get_file`` with a ``file://`` origin, so it
    lands wherever this Keras keeps its cache.
    """
    mirror = offline_dir()
    if mirror is None:
        return []
    import contextlib
    import io

    import keras

    placed = []
    for weights in sorted((mirror / "keras" / "models").glob("*.h5")):
        # Quietly: Keras prints "Downloading data from file:///..." (this machine's path).
        with contextlib.redirect_stdout(io.StringIO()):
            path = keras.utils.get_file(
                weights.name, origin=weights.as_uri(), cache_subdir="models"
            )
        placed.append(Path(path))
    return placed
