"""The ImageNet MobileNetV2 as the labs' hidden tests check against it.

The comparison with ImageNet's weights (:func:`changed_layers`) and the frozen prefixes
(:func:`pooled_extractor`, lab 1; :func:`bottom_extractor`, lab 2), whose output the labs
cache, are the helper package's (``tlcourse.pretrained``: the self-checks use them too);
each prefix is built once per kernel.
"""

from __future__ import annotations

import keras

from tlcourse.pretrained import (  # noqa: F401 - the grader's checks use them from here
    _BUILDING,
    all_layers,
    bottom_extractor,
    changed_layers,
    feature_extractor,
    imagenet_digests,
)


def pooled_extractor() -> keras.Model:
    """Lab 1's frozen prefix: rescaling to [-1, 1], the ImageNet base, average pooling."""
    return feature_extractor()
