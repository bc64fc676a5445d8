"""The lab's reference: MobileNetV2 with its ImageNet weights, as the grader checks against it.

The lab's hidden tests compare a student's frozen base with the ImageNet weights, layer by
layer, and measure a model's accuracy on held-out photos. Both go through this module, so
that the reference is built at most once per kernel, and its features of the held-out photos
once per class:

* :func:`imagenet_digests`: a SHA-256 of every weight of every layer of the ImageNet base,
  kept on disk next to the feature cache;
* :func:`holdout_predictions`: a model's outputs for every held-out photo. When the model
  provably starts with the lab's extractor (the ImageNet base, same weights, and the same
  output on a probe batch), only its head runs, on the extractor's cached features of those
  photos; otherwise every photo goes through the whole model.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from pathlib import Path

import keras
import numpy as np

from .data import IMAGE_SIZE, check_image_folder, holdout_dir, image_dataset
from .downloads import cache_dir, mobilenet_v2_weights
from .features import feature_file

PROBE_IMAGES = 4  # random images on which a model must match the reference extractor
_BUILDING = threading.RLock()  # the reference is built once, even from two threads


def imagenet_base() -> keras.Model:
    """A frozen MobileNetV2 (224 px, no top) with the lab's ImageNet weights."""
    base = keras.applications.MobileNetV2(
        input_shape=(*IMAGE_SIZE, 3), include_top=False, weights=str(mobilenet_v2_weights())
    )
    base.trainable = False
    return base


def feature_extractor() -> keras.Model:
    """The lab's extractor (Part D): rescaling to [-1, 1], the frozen base, average pooling."""
    with _BUILDING:
        return _feature_extractor()


@functools.cache
def _feature_extractor() -> keras.Model:
    inputs = keras.Input(shape=(*IMAGE_SIZE, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = imagenet_base()(x, training=False)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def layer_digests(layer) -> list[str]:
    """A SHA-256 of each of ``layer``'s weights (values, shape and type)."""
    digests = []
    for weight in layer.get_weights():
        array = np.ascontiguousarray(weight)
        digest = hashlib.sha256(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
        digests.append(digest.hexdigest())
    return digests


@functools.cache
def imagenet_digests(cache: Path | None = None) -> dict[str, list[str]]:
    """``{layer name: digests}`` of every layer of :func:`imagenet_base` that has weights.

    Computed once from the weights file and kept in ``cache`` (default: the course cache),
    keyed by the file's contents.
    """
    weights = mobilenet_v2_weights()
    key = hashlib.sha256(weights.read_bytes()).hexdigest()[:24]
    store = Path(cache or cache_dir()) / "reference" / f"mobilenet_v2_{key}.json"
    if store.exists():
        return json.loads(store.read_text())
    digests = {
        layer.name: layer_digests(layer) for layer in imagenet_base().layers if layer.weights
    }
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        partial = store.with_suffix(f".{os.getpid()}.partial")  # one per writing process
        partial.write_text(json.dumps(digests))
        partial.replace(store)
    except OSError:  # a read-only cache: compute again next time
        pass
    return digests


def changed_layers(layers) -> list[str]:
    """Names of the ImageNet base's layers that ``layers`` lack or hold other weights in."""
    reference = imagenet_digests()
    given = {layer.name: layer for layer in layers if layer.weights}
    return [
        name
        for name, digests in reference.items()
        if name not in given or layer_digests(given[name]) != digests
    ]


def reference_features(
    folder: Path, cache: Path | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(features, labels)`` of :func:`feature_extractor` for ``folder`` if they are in the
    feature cache (the grader computes them once per class), else None."""
    with _BUILDING:
        return _reference_features(Path(folder), cache)


def warm_up(folder: Path) -> threading.Thread:
    """Build the extractor and load ``folder``'s features in the background (a checking
    kernel does this while it already serves)."""
    thread = threading.Thread(target=reference_features, args=(folder,), daemon=True)
    thread.start()
    return thread


@functools.cache
def _reference_features(folder: Path, cache: Path | None) -> tuple[np.ndarray, np.ndarray] | None:
    store = feature_file(feature_extractor(), folder, cache=cache)
    if not store.exists():
        return None
    with np.load(store) as saved:
        return saved["features"], saved["labels"]


def holdout_predictions(
    model, folder: Path | None = None, batch_size: int = 50, reuse_features: bool = True
) -> tuple[np.ndarray, np.ndarray, str]:
    """``(outputs, labels, how)`` of ``model`` on every photo of ``folder`` (default: held out).

    ``outputs`` are the model's raw outputs, one row per photo in the order of
    :func:`tlcourse.data.labelled_files`; ``how`` says which way they were computed.
    ``reuse_features=False`` sends every photo through the whole model in any case.
    """
    folder = check_image_folder(folder or holdout_dir())
    head = _head_on_reference_features(model) if reuse_features else None
    stored = reference_features(folder) if head is not None else None
    if stored is not None:
        features, labels = stored
        outputs = np.asarray(
            head.predict(features, batch_size=batch_size, verbose=0), dtype="float64"
        )
        return outputs, labels, "the frozen ImageNet base was recognised: its features were reused"
    import tensorflow as tf

    call = tf.function(lambda images: model(images, training=False))
    outputs, labels = [], []
    for images, batch_labels in image_dataset(folder, batch_size=batch_size):
        outputs.append(np.asarray(call(images), dtype="float64"))
        labels.append(np.asarray(batch_labels).reshape(-1))
    return np.concatenate(outputs), np.concatenate(labels), "every photo went through the model"


def _head_on_reference_features(model) -> keras.Model | None:
    """The part of ``model`` after its pooling, when everything before it provably equals
    :func:`feature_extractor`; otherwise None."""
    if not isinstance(model, keras.Model) or len(model.outputs) != 1:
        return None
    if tuple(model.input_shape) != (None, *IMAGE_SIZE, 3):
        return None
    pools = [
        layer for layer in model.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)
    ]
    if len(pools) != 1 or changed_layers(_all_layers(model)):
        return None
    try:
        if isinstance(model, keras.Sequential):
            after = model.layers[model.layers.index(pools[0]) + 1 :]
            head = keras.Sequential([keras.Input(pools[0].output.shape[1:]), *after])
        else:
            head = keras.Model(pools[0].output, model.output)
        probe = np.random.default_rng(0).uniform(0, 255, (PROBE_IMAGES, *IMAGE_SIZE, 3))
        probe = probe.astype("float32")
        whole = np.asarray(model(probe, training=False), dtype="float64")
        split = np.asarray(head(feature_extractor()(probe), training=False), dtype="float64")
    except Exception:  # noqa: BLE001 - any model the split does not fit goes the long way
        return None
    return head if whole.shape == split.shape and np.allclose(whole, split, atol=1e-5) else None


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
