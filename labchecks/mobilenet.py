"""The ImageNet MobileNetV2 as the labs' hidden tests check against it.

:func:`imagenet_digests` is a SHA-256 of every weight of every layer of the ImageNet base,
computed once from the weights file and kept next to the feature cache; the frozen prefixes
(:func:`pooled_extractor`, lab 1; :func:`bottom_extractor`, lab 2) are what the labs cache
the output of, built once per kernel.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path

import keras
import numpy as np

from tlcourse.data import IMAGE_SIZE
from tlcourse.downloads import cache_dir, mobilenet_v2_weights
from tlcourse.pretrained import feature_extractor, imagenet_base

_BUILDING = threading.RLock()  # each prefix is built once, even from two threads


def pooled_extractor() -> keras.Model:
    """Lab 1's frozen prefix: rescaling to [-1, 1], the ImageNet base, average pooling."""
    return feature_extractor()


def bottom_extractor(cut: str) -> keras.Model:
    """Lab 2's frozen prefix: rescaling to [-1, 1], the ImageNet base up to layer ``cut``."""
    with _BUILDING:
        return _bottom_extractor(cut)


@functools.cache
def _bottom_extractor(cut: str) -> keras.Model:
    base = imagenet_base()
    bottom = keras.Model(base.input, base.get_layer(cut).output, name="bottom")
    inputs = keras.Input(shape=(*IMAGE_SIZE, 3))
    return keras.Model(inputs, bottom(keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)))


@functools.cache
def imagenet_layer_order() -> tuple[str, ...]:
    """Every layer name of the ImageNet base, in its order."""
    return tuple(layer.name for layer in imagenet_base().layers)


def imagenet_layer_names() -> list[str]:
    """Every weighted layer name of the ImageNet base, in order."""
    return list(imagenet_digests())


def layers_up_to(cut: str) -> list[str]:
    """The base's layer names up to and including ``cut`` (all layers, in order)."""
    order = imagenet_layer_order()
    return list(order[: order.index(cut) + 1])


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
    """``{layer name: digests}`` of every layer of the ImageNet base that has weights, in
    order; kept in ``cache`` (default: the course cache), keyed by the weights file."""
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


def changed_layers(layers: Iterable, names: Iterable[str] | None = None) -> list[str]:
    """Names of the ImageNet base's weighted layers (only ``names``, if given) that
    ``layers`` lack or hold other weights in."""
    reference = imagenet_digests()
    wanted = reference if names is None else [n for n in names if n in reference]
    given = {layer.name: layer for layer in layers if layer.weights}
    return [
        name
        for name in wanted
        if name not in given or layer_digests(given[name]) != reference[name]
    ]


def all_layers(model) -> Iterable:
    """Every layer of ``model``, nested models' layers included."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)


def last_dense_kernel(model) -> np.ndarray | None:
    """A copy of the kernel of ``model``'s last Dense layer (None when it has none)."""
    dense = [layer for layer in all_layers(model) if isinstance(layer, keras.layers.Dense)]
    return np.array(dense[-1].kernel, dtype="float64") if dense else None


def sample_accuracy(model, inputs: np.ndarray, labels: np.ndarray) -> float:
    """The share of ``inputs`` that ``model`` calls right (a dog, label 1, at 0.5 or more)."""
    outputs = np.asarray(model.predict(inputs, verbose=0), dtype="float64").reshape(-1)
    return float(np.mean((outputs >= 0.5) == (np.asarray(labels) == 1)))


def head_state(model, inputs: np.ndarray, labels: np.ndarray) -> dict | None:
    """What a later check compares a model with, kept before it changes: its last Dense
    kernel (``head``) and its accuracy on ``inputs``; None when ``model`` cannot give them."""
    try:
        return {
            "head": last_dense_kernel(model),
            "accuracy": sample_accuracy(model, inputs, labels),
        }
    except Exception:  # noqa: BLE001 - not a model of those inputs: its own test says why
        return None
