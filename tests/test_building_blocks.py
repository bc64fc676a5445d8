"""The hand-built blocks and cost formulas of tlcourse.blocks, checked against real layers.

Multiply-add counts are checked against TensorFlow's own FLOP profiler (which counts a
multiply-add as two FLOPs) and against Keras's reference architectures.
"""

from __future__ import annotations

import keras
import pytest
import tensorflow as tf
from keras import layers
from tensorflow.python.framework.convert_to_constants import (
    convert_variables_to_constants_v2,
)

from tlcourse import blocks
from tlcourse.architectures import multiply_adds

# GoogLeNet inception (3a): Szegedy et al. 2015, "Going deeper with convolutions", Table 1.
INCEPTION_3A = {"f1": 64, "f3_reduce": 96, "f3": 128, "f5_reduce": 16, "f5": 32, "pool_proj": 32}


def profiled_multiply_adds(model: keras.Model) -> int:
    """Multiply-adds of one forward pass (batch 1) according to TensorFlow's profiler."""
    spec = tf.TensorSpec((1, *model.input_shape[1:]), tf.float32)
    graph = convert_variables_to_constants_v2(
        tf.function(lambda x: model(x)).get_concrete_function(spec)
    ).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    flops = tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops
    return flops // 2


def single_layer_model(shape: tuple[int, ...], *stack: layers.Layer) -> keras.Model:
    inputs = keras.Input(shape)
    x = inputs
    for layer in stack:
        x = layer(x)
    return keras.Model(inputs, x)


def block_params(model: keras.Model, prefix: str) -> int:
    return sum(layer.count_params() for layer in model.layers if layer.name.startswith(prefix))


def hand_built_params(shape: tuple[int, ...], build) -> int:
    inputs = keras.Input(shape)
    return keras.Model(inputs, build(inputs)).count_params()


@pytest.fixture(scope="module")
def mobilenet_v2() -> keras.Model:
    return keras.applications.MobileNetV2(weights=None)


@pytest.fixture(scope="module")
def resnet50() -> keras.Model:
    return keras.applications.ResNet50(weights=None)


def test_conv_cost_matches_profiler():
    model = single_layer_model((20, 20, 16), layers.Conv2D(24, 3, padding="same", use_bias=False))
    expected = blocks.conv_cost(20, 20, 16, 24, 3)
    assert expected == 20 * 20 * 24 * 9 * 16
    assert profiled_multiply_adds(model) == expected
    assert multiply_adds(model) == expected


def test_conv_params():
    layer = layers.Conv2D(24, 5)
    single_layer_model((9, 9, 16), layer)
    assert blocks.conv_params(5, 16, 24) == layer.count_params()
    assert blocks.conv_params(5, 16, 24, bias=False) == layer.kernel.numpy().size


@pytest.mark.parametrize("stack", ["separable", "depthwise+pointwise"])
def test_depthwise_separable_cost_matches_real_layers(stack):
    expected = blocks.depthwise_separable_cost(16, 16, 32, 64, 3)
    if stack == "separable":
        model = single_layer_model(
            (16, 16, 32), layers.SeparableConv2D(64, 3, padding="same", use_bias=False)
        )
    else:
        model = single_layer_model(
            (16, 16, 32),
            layers.DepthwiseConv2D(3, padding="same", use_bias=False),
            layers.Conv2D(64, 1, use_bias=False),
        )
        assert multiply_adds(model) == expected
    assert profiled_multiply_adds(model) == expected


def test_separable_ratio_is_one_over_n_plus_one_over_k_squared():
    h, w, m, n, k = 14, 14, 96, 160, 3
    ratio = blocks.depthwise_separable_cost(h, w, m, n, k) / blocks.conv_cost(h, w, m, n, k)
    assert ratio == pytest.approx(blocks.separable_ratio(n, k))
    assert blocks.separable_ratio(n, k) == pytest.approx(1 / 160 + 1 / 9)


def test_inception_3a_cost_and_saving():
    reduced = blocks.inception_cost(28, 28, 192, **INCEPTION_3A)
    naive = blocks.inception_cost(28, 28, 192, **INCEPTION_3A, reduce=False)
    # Table 1 of the GoogLeNet paper lists 128M operations for inception (3a).
    assert round(sum(reduced.values()) / 1e6) == 128
    assert sum(naive.values()) == 28 * 28 * 192 * (64 + 9 * 128 + 25 * 32)

    inputs = keras.Input((28, 28, 192))
    module = keras.Model(inputs, blocks.inception_module(inputs, **INCEPTION_3A))
    assert module.output_shape == (None, 28, 28, 256)
    assert multiply_adds(module) == sum(reduced.values())
    assert profiled_multiply_adds(module) >= sum(reduced.values())  # + biases, ReLU, pool

    naive_model = keras.Model(
        inputs,
        layers.Concatenate()(
            [
                layers.Conv2D(64, 1, padding="same")(inputs),
                layers.Conv2D(128, 3, padding="same")(inputs),
                layers.Conv2D(32, 5, padding="same")(inputs),
                layers.MaxPooling2D(3, strides=1, padding="same")(inputs),
            ]
        ),
    )
    saving = multiply_adds(naive_model) - multiply_adds(module)
    assert saving == sum(naive.values()) - sum(reduced.values())
    assert saving > 0


def test_inception_module_params():
    params = hand_built_params((28, 28, 192), lambda x: blocks.inception_module(x, **INCEPTION_3A))
    expected = (
        blocks.conv_params(1, 192, 64)
        + blocks.conv_params(1, 192, 96)
        + blocks.conv_params(3, 96, 128)
        + blocks.conv_params(1, 192, 16)
        + blocks.conv_params(5, 16, 32)
        + blocks.conv_params(1, 192, 32)
    )
    assert params == expected


@pytest.mark.parametrize(
    "prefix, shape, expansion, filters, stride",
    [
        ("expanded_conv_", (112, 112, 32), 1, 16, 1),  # no expansion, no skip
        ("block_2_", (56, 56, 24), 6, 24, 1),  # skip connection
        ("block_3_", (56, 56, 24), 6, 32, 2),  # stride 2, no skip
        ("block_16_", (7, 7, 160), 6, 320, 1),  # last block
    ],
)
def test_inverted_residual_block_matches_keras(
    mobilenet_v2, prefix, shape, expansion, filters, stride
):
    inputs = keras.Input(shape)
    outputs = blocks.inverted_residual_block(inputs, expansion, filters, stride)
    mine = keras.Model(inputs, outputs)
    keras_block = [layer for layer in mobilenet_v2.layers if layer.name.startswith(prefix)]
    assert mine.count_params() == block_params(mobilenet_v2, prefix)
    assert mine.output_shape[1:] == keras_block[-1].output.shape[1:]
    has_add = any(isinstance(layer, layers.Add) for layer in mine.layers)
    assert has_add == any(isinstance(layer, layers.Add) for layer in keras_block)


@pytest.mark.parametrize(
    "prefix, shape, filters, stride",
    [
        ("conv2_block1_", (56, 56, 64), 64, 1),  # projection shortcut
        ("conv2_block2_", (56, 56, 256), 64, 1),  # identity shortcut
        ("conv3_block1_", (56, 56, 256), 128, 2),  # downsampling
    ],
)
def test_bottleneck_block_matches_resnet50(resnet50, prefix, shape, filters, stride):
    inputs = keras.Input(shape)
    mine = keras.Model(inputs, blocks.bottleneck_block(inputs, filters, stride))
    assert mine.count_params() == block_params(resnet50, prefix)
    last = [layer for layer in resnet50.layers if layer.name.startswith(prefix)][-1]
    assert mine.output_shape[1:] == last.output.shape[1:]


def test_residual_block_shapes_and_params():
    same = hand_built_params((8, 8, 16), lambda x: blocks.residual_block(x, 16))
    bn = 4 * 16  # gamma, beta, moving mean, moving variance
    assert same == 2 * (blocks.conv_params(3, 16, 16, bias=False) + bn)
    inputs = keras.Input((8, 8, 16))
    down = keras.Model(inputs, blocks.residual_block(inputs, 32, stride=2))
    assert down.output_shape == (None, 4, 4, 32)
    assert any(layer.name.endswith("_proj") for layer in down.layers)
