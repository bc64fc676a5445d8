"""MobileNetV2 with its ImageNet weights, as the lectures and labs build it, and the
comparison of a model's layers with those weights (the labs' checks)."""

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

from .data import IMAGE_SIZE
from .downloads import cache_dir, mobilenet_v2_weights

_BUILDING = threading.RLock()  # built once, even from two threads


def imagenet_base() -> keras.Model:
    """A frozen MobileNetV2 (224 px, no top) with the course's ImageNet weights."""
    base = keras.applications.MobileNetV2(
        input_shape=(*IMAGE_SIZE, 3), include_top=False, weights=str(mobilenet_v2_weights())
    )
    base.trainable = False
    return base


def feature_extractor() -> keras.Model:
    """Lab 1's extractor (its Part D): rescaling to [-1, 1], the frozen base, average
    pooling; built once per process."""
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


def bottom_extractor(cut: str) -> keras.Model:
    """Lab 2's frozen prefix: rescaling to [-1, 1], the ImageNet base up to layer ``cut``;
    built once per process."""
    with _BUILDING:
        return _bottom_extractor(cut)


@functools.cache
def _bottom_extractor(cut: str) -> keras.Model:
    base = imagenet_base()
    bottom = keras.Model(base.input, base.get_layer(cut).output, name="bottom")
    inputs = keras.Input(shape=(*IMAGE_SIZE, 3))
    return keras.Model(inputs, bottom(keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)))


@functools.cache
def _imagenet_layer_order() -> tuple[str, ...]:
    with _BUILDING:
        return tuple(layer.name for layer in imagenet_base().layers)


def split_at(cut: str) -> tuple[list[str], list[str]]:
    """The ImageNet base's weighted layer names up to and including layer ``cut`` (the
    bottom), and after it (the top), in order."""
    order = _imagenet_layer_order()
    below = set(order[: order.index(cut) + 1])
    weighted = list(imagenet_digests())
    return [n for n in weighted if n in below], [n for n in weighted if n not in below]
