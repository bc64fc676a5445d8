"""A model's outputs on every held-out photo, the fast way when that is provably the same.

A lab's frozen prefix (an ``extractor``: photos in, a tensor out) gives the same output for
the same photo every time; the grader caches that output for the held-out photos once per
class. When a handed-in model provably starts with the prefix (every weighted layer of the
prefix present with ImageNet's weights, and the model's output equal to "prefix, then the
rest" on a probe batch), only the rest runs, on the cached outputs. Otherwise every photo
goes through the whole model.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

import keras
import numpy as np

from tlcourse.data import IMAGE_SIZE, check_image_folder, holdout_dir, image_dataset
from tlcourse.features import feature_file

from .mobilenet import _BUILDING, all_layers, changed_layers

PROBE_IMAGES = 4  # random images on which "prefix, then the rest" must equal the model
REUSED = "the frozen ImageNet prefix was recognised: its cached output was reused"
FULL = "every photo went through the model"


def holdout_predictions(
    model,
    extractor: keras.Model,
    folder: Path | None = None,
    batch_size: int = 50,
    reuse: bool = True,
) -> tuple[np.ndarray, np.ndarray, str]:
    """``(outputs, labels, how)`` of ``model`` on every photo of ``folder`` (default: held out).

    ``outputs`` are the model's raw outputs, one row per photo in the order of
    :func:`tlcourse.data.labelled_files`; ``how`` says which way they were computed.
    ``reuse=False`` sends every photo through the whole model in any case.
    """
    folder = check_image_folder(folder or holdout_dir())
    rest = rest_after(model, extractor) if reuse else None
    stored = stored_outputs(extractor, folder) if rest is not None else None
    if stored is not None:
        inputs, labels = stored
        outputs = rest.predict(inputs, batch_size=batch_size, verbose=0)
        return np.asarray(outputs, dtype="float64"), labels, REUSED
    import tensorflow as tf

    call = tf.function(lambda images: model(images, training=False))
    outputs, labels = [], []
    for images, batch_labels in image_dataset(folder, batch_size=batch_size):
        outputs.append(np.asarray(call(images), dtype="float64"))
        labels.append(np.asarray(batch_labels).reshape(-1))
    return np.concatenate(outputs), np.concatenate(labels), FULL


def stored_outputs(extractor: keras.Model, folder: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """``(outputs, labels)`` of ``extractor`` for ``folder`` if they are in the course's
    feature cache (the grader computes them once per class), else None."""
    with _BUILDING:
        return _stored_outputs(extractor, Path(folder))


@functools.cache
def _stored_outputs(extractor, folder: Path):
    store = feature_file(extractor, folder)
    if not store.exists():
        return None
    with np.load(store) as saved:
        return saved["features"], saved["labels"]


def warm_up(extractor: keras.Model, folder: Path) -> threading.Thread:
    """Load ``extractor``'s cached outputs of ``folder`` in the background (a clean kernel
    does this while it already serves)."""
    thread = threading.Thread(target=stored_outputs, args=(extractor, folder), daemon=True)
    thread.start()
    return thread


def rest_after(model, extractor: keras.Model) -> keras.Model | None:
    """The part of ``model`` after the output of ``extractor``, when everything before it
    provably equals ``extractor``; otherwise None."""
    if not isinstance(model, keras.Model) or len(model.outputs) != 1:
        return None
    if tuple(model.input_shape) != (None, *IMAGE_SIZE, 3):
        return None
    prefix = [layer.name for layer in all_layers(extractor) if layer.weights]
    if changed_layers(all_layers(model), names=prefix):
        return None
    probe = np.random.default_rng(0).uniform(0, 255, (PROBE_IMAGES, *IMAGE_SIZE, 3))
    probe = probe.astype("float32")
    try:
        whole = np.asarray(model(probe, training=False), dtype="float64")
        cut = extractor(probe, training=False)
    except Exception:  # noqa: BLE001 - a model that fails on the probe goes the long way
        return None
    for at, layer in enumerate(model.layers):
        output = _output_in(model, layer)
        if output is None or tuple(output.shape[1:]) != tuple(extractor.output.shape[1:]):
            continue
        try:
            if isinstance(model, keras.Sequential):
                rest = keras.Sequential([keras.Input(output.shape[1:]), *model.layers[at + 1 :]])
            else:
                rest = keras.Model(output, model.output)
            split = np.asarray(rest(cut, training=False), dtype="float64")
        except Exception:  # noqa: BLE001, S112 - a layer the graph cannot be cut at
            continue
        if whole.shape == split.shape and np.allclose(whole, split, atol=1e-5):
            return rest
    return None


def _output_in(model, layer):
    """``layer``'s output tensor in ``model``'s graph (for a nested model, that of its call
    there, not its own), or None when it has not exactly one."""
    try:
        graph = {id(node) for nodes in model._nodes_by_depth.values() for node in nodes}
        calls = [node for node in layer._inbound_nodes if id(node) in graph]
    except AttributeError:  # a model without a graph (subclassed): no shortcut
        return None
    if len(calls) != 1 or len(calls[0].output_tensors) != 1:
        return None
    return calls[0].output_tensors[0]
