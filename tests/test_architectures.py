"""Computed parameter counts agree with the published figures; the hand-built nets work."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tlcourse import count_params
from tlcourse.architectures import (
    PUBLISHED_MACS,
    PUBLISHED_PARAMS,
    alexnet,
    layer_multiply_adds,
    lenet5,
    matches_published,
    multiply_adds,
)

APPLICATIONS = {"VGG16": 224, "ResNet50": 224, "InceptionV3": 299, "MobileNetV2": 224}


def test_lenet5_layers_match_the_paper():
    paper = PUBLISHED_PARAMS["LeNet-5"]["layers"]
    assert sum(paper.values()) == PUBLISHED_PARAMS["LeNet-5"]["params"]
    # C3's partial table (Table I): 6 maps see 3 S2 maps, 9 see 4, 1 sees all 6.
    assert sum(n * (k * 25 + 1) for n, k in [(6, 3), (9, 4), (1, 6)]) == paper["C3"]
    model = lenet5()
    ours = {layer.name: layer.count_params() for layer in model.layers}
    for name in ("C1", "C5", "F6"):
        assert ours[name] == paper[name]
    # Full C3, parameter-free pooling and a 10-way softmax output explain the rest.
    assert ours["C3"] == 16 * (6 * 25 + 1)
    total = PUBLISHED_PARAMS["LeNet-5"]["params"]
    expected = total + ours["C3"] - paper["C3"] - paper["S2"] - paper["S4"] + 84 * 10 + 10
    assert count_params(model)["total"] == expected == 61_706


def test_alexnet_matches_the_paper_only_with_the_two_gpu_split():
    two_gpu = count_params(alexnet())["total"]
    one_tower = count_params(alexnet(groups=1))["total"]
    assert two_gpu == 60_965_224 and matches_published("AlexNet", two_gpu)
    assert one_tower == 62_378_344 and not matches_published("AlexNet", one_tower)


@pytest.mark.parametrize("name", sorted(APPLICATIONS))
def test_keras_applications_match_the_documentation(name):
    size = APPLICATIONS[name]
    model = getattr(keras.applications, name)(
        weights=None, include_top=True, classes=1000, input_shape=(size, size, 3)
    )
    assert matches_published(name, count_params(model)["total"])
    if name in PUBLISHED_MACS:
        published = PUBLISHED_MACS[name]["macs"]
        assert abs(multiply_adds(model) - published) / published < 0.15


def test_lenet5_output_shape_for_mnist_and_32px():
    for shape in [(28, 28, 1), (32, 32, 1)]:
        model = lenet5(shape)
        probabilities = model(np.zeros((3, *shape), "float32")).numpy()
        assert probabilities.shape == (3, 10)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError):
        lenet5((64, 64, 1))


def test_alexnet_output_shape_and_feature_sizes():
    model = alexnet(num_classes=5)
    assert model(np.zeros((1, 227, 227, 3), "float32")).shape == (1, 5)
    assert model.get_layer("conv1").output.shape[1:] == (55, 55, 96)
    assert model.get_layer("pool5").output.shape[1:] == (6, 6, 256)


def test_multiply_adds_by_hand_for_lenet5():
    counts = layer_multiply_adds(lenet5())
    assert counts["C1"] == 28 * 28 * 6 * 25
    assert counts["C3"] == 10 * 10 * 16 * 25 * 6
    assert counts["output"] == 84 * 10
    assert multiply_adds(lenet5()) == sum(counts.values())
