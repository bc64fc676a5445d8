"""Classic CNNs written out by hand, a multiply-add counter, and published reference figures.

``lenet5`` and ``alexnet`` are built layer by layer so the lectures can explain every layer;
the larger models come from ``keras.applications``. ``PUBLISHED_PARAMS`` and
``PUBLISHED_MACS`` hold the figures the lectures compare their computed counts with, each
with its source.
"""

from __future__ import annotations

import keras
from keras import layers

# Parameter counts as published. ``tolerance`` is how far a computed count may be from
# ``params`` and still match the figure as printed (half a unit of its last digit).
PUBLISHED_PARAMS: dict[str, dict] = {
    "LeNet-5": {
        "params": 60_000,
        "tolerance": 0,
        "source": "LeCun, Bottou, Bengio & Haffner (1998), Gradient-based learning applied "
        "to document recognition, Sec. II.B: 60,000 trainable parameters",
        # Per layer, as listed in Sec. II.B (C3 uses the partial connection table, Table I).
        "layers": {"C1": 156, "S2": 12, "C3": 1_516, "S4": 32, "C5": 48_120, "F6": 10_164},
    },
    "AlexNet": {
        "params": 60_000_000,
        "tolerance": 1_000_000,
        "source": "Krizhevsky, Sutskever & Hinton (2012), ImageNet classification with deep "
        "convolutional neural networks, abstract: '60 million parameters' "
        "(two-GPU network; a round figure, hence the 1 M tolerance)",
    },
    "VGG16": {
        "params": 138_400_000,
        "tolerance": 50_000,
        "source": "Keras Applications documentation (keras.io/api/applications), table "
        "'Available models': 138.4M; Simonyan & Zisserman (2015), Table 2: 138 M",
    },
    "ResNet50": {
        "params": 25_600_000,
        "tolerance": 50_000,
        "source": "Keras Applications documentation (keras.io/api/applications), table "
        "'Available models': 25.6M",
    },
    "InceptionV3": {
        "params": 23_900_000,
        "tolerance": 50_000,
        "source": "Keras Applications documentation (keras.io/api/applications), table "
        "'Available models': 23.9M",
    },
    "MobileNetV2": {
        "params": 3_500_000,
        "tolerance": 50_000,
        "source": "Keras Applications documentation (keras.io/api/applications), table "
        "'Available models': 3.5M",
    },
}

# Multiply-adds per image as published (the papers call them FLOPs or mult-adds).
PUBLISHED_MACS: dict[str, dict] = {
    "ResNet50": {
        "macs": 3.8e9,
        "source": "He et al. (2016), Deep residual learning, Table 1: "
        "3.8 x 10^9 FLOPs (counted as multiply-adds)",
    },
    "InceptionV3": {
        "macs": 5e9,
        "source": "Szegedy et al. (2016), Rethinking the Inception "
        "architecture, abstract: 5 billion multiply-adds",
    },
    "MobileNetV2": {
        "macs": 300e6,
        "source": "Sandler et al. (2018), MobileNetV2, Table 4: 300M MAdds (1.0, 224 px)",
    },
}


def matches_published(name: str, params: int) -> bool:
    """True when ``params`` agrees with the published figure for ``name`` as printed."""
    figure = PUBLISHED_PARAMS[name]
    return abs(params - figure["params"]) <= figure["tolerance"]


def lenet5(
    input_shape: tuple[int, int, int] = (32, 32, 1), num_classes: int = 10, activation: str = "tanh"
) -> keras.Model:
    """LeNet-5 (LeCun et al., 1998) with today's simplifications.

    Takes 32x32 images, or 28x28 ones (MNIST) which are zero-padded to 32x32 first, as the
    paper did. Differences from the paper: C3 is connected to all six S2 maps (the paper
    used a partial table), S2/S4 are plain average pooling without trainable coefficients,
    and the output is a softmax Dense layer instead of the paper's RBF units.
    """
    height, width = input_shape[:2]
    if height != width or height not in (28, 32):
        raise ValueError(f"lenet5 expects 28x28 or 32x32 images, got {input_shape}")
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    if height == 28:
        x = layers.ZeroPadding2D(2, name="pad_to_32")(x)
    x = layers.Conv2D(6, 5, activation=activation, name="C1")(x)  # 28x28x6
    x = layers.AveragePooling2D(2, name="S2")(x)  # 14x14x6
    x = layers.Conv2D(16, 5, activation=activation, name="C3")(x)  # 10x10x16
    x = layers.AveragePooling2D(2, name="S4")(x)  # 5x5x16
    x = layers.Conv2D(120, 5, activation=activation, name="C5")(x)  # 1x1x120
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(84, activation=activation, name="F6")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name="lenet5")


def alexnet(
    input_shape: tuple[int, int, int] = (227, 227, 3), num_classes: int = 1000, groups: int = 2
) -> keras.Model:
    """AlexNet (Krizhevsky et al., 2012) on one device.

    ``groups=2`` keeps the paper's two-GPU connectivity: conv2, conv4 and conv5 see only
    the half of the previous maps that lived on "their" GPU (a grouped convolution), which
    gives the paper's ~60 M parameters; ``groups=1`` connects everything (~62.4 M).
    Local response normalisation is left out (it has no parameters). Input 227x227 makes
    the sizes work out (the paper says 224).
    """
    inputs = keras.Input(input_shape, name="image")
    x = layers.Conv2D(96, 11, strides=4, activation="relu", name="conv1")(inputs)  # 55x55
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)  # 27x27
    x = layers.Conv2D(256, 5, padding="same", groups=groups, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)  # 13x13
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Conv2D(384, 3, padding="same", groups=groups, activation="relu", name="conv4")(x)
    x = layers.Conv2D(256, 3, padding="same", groups=groups, activation="relu", name="conv5")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool5")(x)  # 6x6
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(4096, activation="relu", name="fc6")(x)
    x = layers.Dropout(0.5, name="drop6")(x)
    x = layers.Dense(4096, activation="relu", name="fc7")(x)
    x = layers.Dropout(0.5, name="drop7")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="fc8")(x)
    return keras.Model(inputs, outputs, name="alexnet")


def layer_multiply_adds(model: keras.Model) -> dict[str, int]:
    """Multiply-adds per image of each Conv2D, DepthwiseConv2D and Dense layer.

    Convolution: output height x width x output channels x (kernel h x w x input channels
    / groups); depthwise: output h x w x channels x kernel h x w; dense: inputs x units.
    Biases, batch norm, activations and pooling are not counted (they are comparatively tiny).
    """
    counts = {}
    for layer in model.layers:
        if isinstance(layer, layers.DepthwiseConv2D):
            height, width, channels = layer.output.shape[1:]
            kh, kw = layer.kernel_size
            counts[layer.name] = height * width * channels * kh * kw
        elif isinstance(layer, layers.Conv2D):
            height, width, channels = layer.output.shape[1:]
            kh, kw = layer.kernel_size
            inputs = layer.input.shape[-1] // layer.groups
            counts[layer.name] = height * width * channels * kh * kw * inputs
        elif isinstance(layer, layers.Dense):
            counts[layer.name] = layer.input.shape[-1] * layer.units
    return counts


def multiply_adds(model: keras.Model) -> int:
    """Total multiply-adds (MACs) for one image; FLOPs are about twice this."""
    return sum(layer_multiply_adds(model).values())
