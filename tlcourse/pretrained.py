"""MobileNetV2 with its ImageNet weights, as the lectures and labs build it."""

from __future__ import annotations

import functools
import threading

import keras

from .data import IMAGE_SIZE
from .downloads import mobilenet_v2_weights

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
