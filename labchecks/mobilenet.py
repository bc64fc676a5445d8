"""The ImageNet MobileNetV2 as the labs' hidden tests check against it.

The comparison with ImageNet's weights (:func:`imagenet_digests`, :func:`changed_layers`)
is the helper package's (``tlcourse.pretrained``: the self-checks use it too); the frozen
prefixes (:func:`pooled_extractor`, lab 1; :func:`bottom_extractor`, lab 2) are what the labs
cache the output of, built once per kernel.
"""

from __future__ import annotations

import functools
import threading

import keras
import numpy as np

from tlcourse.data import IMAGE_SIZE
from tlcourse.pretrained import (  # noqa: F401 - the hidden tests use them from here
    all_layers,
    changed_layers,
    feature_extractor,
    imagenet_base,
    imagenet_digests,
)

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
