"""The lab's photos: cats vs dogs, as folders and as ``tf.data`` pipelines.

Labels follow the folder names in alphabetical order: ``cats`` is 0, ``dogs`` is 1,
so a model's single output is the probability that a photo shows a dog.
"""

from __future__ import annotations

import os
from pathlib import Path

from .downloads import CourseDataError, cache_dir, fetch, offline_dir

DATA_URL = "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"
CLASS_NAMES = ("cats", "dogs")
IMAGE_SIZE = (224, 224)
HOLDOUT_ENV = "COURSE_HOLDOUT_DIR"
HOLDOUT_PER_CLASS = 500
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def cats_and_dogs_dir() -> Path:
    """Folder with ``train/`` and ``validation/`` (each ``cats/`` and ``dogs/``)."""
    path = fetch("cats_and_dogs_filtered.zip", DATA_URL, "cats_and_dogs_filtered", extract=True)
    # Keras extracts into <cache>/cats_and_dogs_filtered_extracted/cats_and_dogs_filtered.
    if not (path / "train").is_dir() and (path / "cats_and_dogs_filtered").is_dir():
        path = path / "cats_and_dogs_filtered"
    return check_image_folder(path / "train").parent


def split_dir(split: str) -> Path:
    """The folder of one split: ``"train"``, ``"validation"`` or ``"holdout"``."""
    if split == "holdout":
        return holdout_dir()
    if split not in ("train", "validation"):
        raise ValueError(f"split must be 'train', 'validation' or 'holdout', not {split!r}")
    return check_image_folder(cats_and_dogs_dir() / split)


def holdout_dir() -> Path:
    """Photos kept out of training and validation, used to grade the lab.

    In order: the folder named by ``COURSE_HOLDOUT_DIR``; the offline mirror's
    ``holdout/``; otherwise 500 cats and 500 dogs from the Oxford-IIIT Pet test split
    (a catalogue dataset in ``tensorflow_datasets``, photographed apart from the
    Asirra photos the lab trains on), exported once as JPEG files.
    """
    named = os.environ.get(HOLDOUT_ENV, "").strip()
    if named:
        return check_image_folder(Path(named).expanduser())
    mirror = offline_dir()
    if mirror is not None:
        return check_image_folder(mirror / "holdout")
    folder = cache_dir() / "holdout_oxford_iiit_pet"
    if not (folder / "dogs").is_dir():
        export_pet_holdout(folder)
    return check_image_folder(folder)


def export_pet_holdout(folder: Path, per_class: int = HOLDOUT_PER_CLASS) -> Path:
    """Write ``per_class`` cat and dog photos of Oxford-IIIT Pet (test) to ``folder``."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    counts = {name: 0 for name in CLASS_NAMES}
    partial = folder.with_name(folder.name + ".partial")
    for name in CLASS_NAMES:
        (partial / name).mkdir(parents=True, exist_ok=True)
    for example in tfds.as_numpy(tfds.load("oxford_iiit_pet", split="test")):
        name = CLASS_NAMES[int(example["species"])]
        if counts[name] >= per_class:
            if min(counts.values()) >= per_class:
                break
            continue
        jpeg = tf.io.encode_jpeg(example["image"], quality=90).numpy()
        (partial / name / f"pet_{name}_{counts[name]:04d}.jpg").write_bytes(jpeg)
        counts[name] += 1
    if min(counts.values()) == 0:
        raise CourseDataError(f"Oxford-IIIT Pet gave no photos of one class: {counts}")
    partial.rename(folder)
    return folder


def check_image_folder(folder: Path) -> Path:
    """Return ``folder`` if it holds ``cats/`` and ``dogs/`` with images, else explain."""
    folder = Path(folder)
    missing = [name for name in CLASS_NAMES if not (folder / name).is_dir()]
    if missing:
        raise CourseDataError(
            f"{folder} should hold one sub-folder per class ({', '.join(CLASS_NAMES)}) "
            f"with the photos inside; missing: {', '.join(missing)}."
        )
    empty = [name for name in CLASS_NAMES if not image_files(folder / name)]
    if empty:
        raise CourseDataError(f"{folder}: no .jpg/.png photos in {', '.join(empty)}/.")
    return folder


def image_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def labelled_files(folder: Path) -> tuple[list[Path], list[int]]:
    """All photos of an image folder with their labels (0 = cat, 1 = dog)."""
    folder = check_image_folder(folder)
    paths, labels = [], []
    for label, name in enumerate(CLASS_NAMES):
        files = image_files(folder / name)
        paths += files
        labels += [label] * len(files)
    return paths, labels


def class_counts(folder: Path) -> dict[str, int]:
    """How many photos of each class a folder holds."""
    return {name: len(image_files(check_image_folder(folder) / name)) for name in CLASS_NAMES}


def image_dataset(
    folder: Path | str,
    image_size: tuple[int, int] = IMAGE_SIZE,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 42,
):
    """A batched, prefetched ``tf.data.Dataset`` of ``(images, labels)``.

    ``folder`` is a split name (``"train"``, ``"validation"``, ``"holdout"``) or a path.
    Images are float32 RGB in [0, 255], resized to ``image_size``; labels are 0 or 1.
    """
    import keras
    import tensorflow as tf

    path = split_dir(folder) if folder in ("train", "validation", "holdout") else Path(folder)
    check_image_folder(path)
    dataset = keras.utils.image_dataset_from_directory(
        path,
        labels="inferred",
        label_mode="binary",
        class_names=list(CLASS_NAMES),
        image_size=image_size,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        verbose=False,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def load_images(paths: list[Path], image_size: tuple[int, int] = IMAGE_SIZE):
    """Decode and resize a few photos into one float32 array ``(n, h, w, 3)``.

    Uses the same decoding and bilinear resizing as :func:`image_dataset`.
    """
    import numpy as np
    import tensorflow as tf

    images = []
    for path in paths:
        image = tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False)
        images.append(tf.image.resize(image, image_size, method="bilinear").numpy())
    return np.stack(images).astype("float32")
