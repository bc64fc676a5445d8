"""Feature cache: run a frozen network over a data set once, keep the result on disk.

A frozen base gives the same output for the same photo every time, so training a new
head does not need to run the base again each epoch. :func:`cached_features` computes
``extractor(images)`` for every photo of a folder once and stores it under a key made
of everything that determines it: the extractor's weights, what it computes (its
output on a fixed probe batch), the photos' bytes, and the image size. A second run,
or the next student graded, finds the file and skips the work.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from .data import IMAGE_SIZE, image_dataset, labelled_files, split_dir
from .downloads import cache_dir

FORMAT_VERSION = "1"


def extractor_fingerprint(extractor) -> str:
    """Hash of an extractor's weights, input/output shapes and output on a probe batch."""
    digest = hashlib.sha256(FORMAT_VERSION.encode())
    for weight in extractor.weights:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    digest.update(repr((extractor.input_shape, extractor.output_shape)).encode())
    shape = tuple(size or 32 for size in extractor.input_shape[1:])
    probe = np.random.default_rng(0).uniform(0, 255, (2, *shape)).astype("float32")
    output = np.asarray(extractor(probe, training=False))
    digest.update(np.round(output.astype("float64"), 3).tobytes())
    return digest.hexdigest()


def files_fingerprint(paths: list[Path], labels: list[int]) -> str:
    """Hash of the photos' names, labels and bytes."""
    digest = hashlib.sha256()
    for path, label in zip(paths, labels):
        digest.update(f"{Path(path).name}\t{label}\n".encode())
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def feature_file(
    extractor,
    folder: str | Path,
    image_size: tuple[int, int] = IMAGE_SIZE,
    cache: Path | None = None,
) -> Path:
    """Where :func:`cached_features` keeps ``extractor``'s features of ``folder`` (may not exist).

    The name is a hash of everything that determines them: the extractor, the photos and
    the image size.
    """
    expected = tuple(extractor.input_shape[1:3])
    if None not in expected and expected != tuple(image_size):
        raise ValueError(
            f"The extractor takes images of {expected[0]}x{expected[1]} pixels but "
            f"image_size is {tuple(image_size)}: pass image_size={expected} or build the "
            f"extractor with keras.Input(shape=({image_size[0]}, {image_size[1]}, 3))."
        )
    folder = split_dir(folder) if folder in ("train", "validation", "holdout") else Path(folder)
    paths, labels = labelled_files(folder)
    key = hashlib.sha256(
        f"{extractor_fingerprint(extractor)}|{files_fingerprint(paths, labels)}|"
        f"{tuple(image_size)}".encode()
    ).hexdigest()[:32]
    return Path(cache or cache_dir() / "features") / f"{key}.npz"


def cached_features(
    extractor,
    folder: str | Path,
    image_size: tuple[int, int] = IMAGE_SIZE,
    batch_size: int = 50,
    cache: Path | None = None,
    verbose: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """``(features, labels)`` of every photo in ``folder``, computed at most once.

    ``extractor`` maps a batch of raw RGB images in [0, 255] to features (for the lab:
    preprocessing -> frozen base -> pooling). ``folder`` is a split name
    (``"train"``, ``"validation"``) or a path with ``cats/`` and ``dogs/``. Rows are in
    the order of :func:`tlcourse.data.labelled_files` (cats first, by file name).
    """
    store = feature_file(extractor, folder, image_size, cache)
    folder = split_dir(folder) if folder in ("train", "validation", "holdout") else Path(folder)
    paths, labels = labelled_files(folder)
    if store.exists():
        with np.load(store) as saved:
            if verbose:
                print(f"Features for {folder.name}: loaded from cache ({store.name})")
            return saved["features"], saved["labels"]

    import keras

    dataset = image_dataset(folder, image_size=image_size, batch_size=batch_size)
    progress = keras.utils.Progbar(len(paths), unit_name="photo", verbose=1 if verbose else 0)
    feature_batches, label_batches = [], []
    for images, batch_labels in dataset:
        feature_batches.append(np.asarray(extractor.predict_on_batch(images)))
        label_batches.append(np.asarray(batch_labels).reshape(-1))
        progress.add(len(images))
    features = np.concatenate(feature_batches)
    labels_array = np.concatenate(label_batches).astype("float32")
    if not np.array_equal(labels_array, np.asarray(labels, dtype="float32")):
        raise RuntimeError(f"{folder}: the data set's order differs from labelled_files()")
    store.parent.mkdir(parents=True, exist_ok=True)
    partial = store.with_suffix(f".{os.getpid()}.partial.npz")  # one per writing process
    np.savez(partial, features=features, labels=labels_array)
    partial.replace(store)  # atomic: a reader never sees half a file
    if verbose:
        print(f"Features for {folder.name}: computed {features.shape}, cached as {store.name}")
    return features, labels_array
