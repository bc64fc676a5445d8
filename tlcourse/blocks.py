"""Building blocks of modern CNNs written by hand, and the arithmetic of their cost.

The blocks are Keras functional-API functions: each takes a tensor and returns a tensor,
so they can be stacked like layers. The cost functions count multiply-adds (one multiply
followed by one add, often called MACs); a FLOP counter reports about twice as many.
To count the multiply-adds of a built model layer by layer, use
``tlcourse.architectures.multiply_adds``.
"""

from __future__ import annotations

from keras import layers

# --------------------------------------------------------------------------- cost arithmetic


def conv_params(k: int, c_in: int, c_out: int, bias: bool = True) -> int:
    """Weights of a standard ``k x k`` convolution from ``c_in`` to ``c_out`` channels."""
    return k * k * c_in * c_out + (c_out if bias else 0)


def conv_cost(h: int, w: int, c_in: int, c_out: int, k: int) -> int:
    """Multiply-adds of a standard ``k x k`` convolution with an ``h x w`` output.

    Every one of the ``h * w * c_out`` output numbers is a dot product of length
    ``k * k * c_in``.
    """
    return h * w * c_out * k * k * c_in


def depthwise_separable_cost(h: int, w: int, c_in: int, c_out: int, k: int) -> int:
    """Multiply-adds of a depthwise ``k x k`` convolution followed by a 1x1 convolution.

    The depthwise step filters each input channel on its own (``h * w * c_in * k * k``);
    the pointwise step mixes channels (``h * w * c_in * c_out``).
    """
    return h * w * c_in * k * k + h * w * c_in * c_out


def separable_ratio(c_out: int, k: int) -> float:
    """Cost of a depthwise separable convolution divided by a standard one: 1/N + 1/k^2."""
    return 1 / c_out + 1 / k**2


def inception_cost(
    h: int,
    w: int,
    c_in: int,
    f1: int,
    f3_reduce: int,
    f3: int,
    f5_reduce: int,
    f5: int,
    pool_proj: int,
    reduce: bool = True,
) -> dict[str, int]:
    """Multiply-adds of each branch of an inception module with an ``h x w`` output.

    With ``reduce=False`` the 3x3 and 5x5 convolutions read all ``c_in`` channels and the
    pooling branch has no 1x1 projection (the "naive" module); pooling itself is not counted.
    """
    if not reduce:
        return {
            "1x1": conv_cost(h, w, c_in, f1, 1),
            "3x3": conv_cost(h, w, c_in, f3, 3),
            "5x5": conv_cost(h, w, c_in, f5, 5),
            "pool": 0,
        }
    return {
        "1x1": conv_cost(h, w, c_in, f1, 1),
        "3x3": conv_cost(h, w, c_in, f3_reduce, 1) + conv_cost(h, w, f3_reduce, f3, 3),
        "5x5": conv_cost(h, w, c_in, f5_reduce, 1) + conv_cost(h, w, f5_reduce, f5, 5),
        "pool": conv_cost(h, w, c_in, pool_proj, 1),
    }


# --------------------------------------------------------------------------- blocks


def residual_block(x, filters: int, stride: int = 1, name: str = "res"):
    """A basic residual block (ResNet-18/34 style): output = ReLU(F(x) + shortcut(x)).

    F is conv 3x3 -> batch norm -> ReLU -> conv 3x3 -> batch norm. The shortcut is the
    input itself, or a 1x1 convolution when the stride or the channel count changes.
    """
    shortcut = x
    y = layers.Conv2D(
        filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1"
    )(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def bottleneck_block(x, filters: int, stride: int = 1, name: str = "bottleneck"):
    """A bottleneck residual block as in ResNet50: 1x1 -> 3x3 -> 1x1 (4 x filters) + skip.

    Matches the layer sizes of ``keras.applications.ResNet50`` (convolutions with bias,
    batch norm after each), so the parameter counts can be compared block by block.
    """
    out_channels = 4 * filters
    shortcut = x
    if stride != 1 or x.shape[-1] != out_channels:
        shortcut = layers.Conv2D(out_channels, 1, strides=stride, name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(epsilon=1.001e-5, name=f"{name}_proj_bn")(shortcut)
    y = layers.Conv2D(filters, 1, strides=stride, name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(epsilon=1.001e-5, name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(epsilon=1.001e-5, name=f"{name}_bn2")(y)
    y = layers.ReLU(name=f"{name}_relu2")(y)
    y = layers.Conv2D(out_channels, 1, name=f"{name}_conv3")(y)
    y = layers.BatchNormalization(epsilon=1.001e-5, name=f"{name}_bn3")(y)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def inception_module(
    x,
    f1: int,
    f3_reduce: int,
    f3: int,
    f5_reduce: int,
    f5: int,
    pool_proj: int,
    name: str = "inception",
):
    """A GoogLeNet inception module: four parallel branches joined along the channels.

    Branches: 1x1 conv; 1x1 reduce -> 3x3 conv; 1x1 reduce -> 5x5 conv; 3x3 max pool ->
    1x1 projection. Every convolution has a ReLU; the output has
    ``f1 + f3 + f5 + pool_proj`` channels.
    """

    def conv(inputs, filters: int, k: int, label: str):
        return layers.Conv2D(filters, k, padding="same", activation="relu", name=f"{name}_{label}")(
            inputs
        )

    branch1 = conv(x, f1, 1, "1x1")
    branch3 = conv(conv(x, f3_reduce, 1, "3x3_reduce"), f3, 3, "3x3")
    branch5 = conv(conv(x, f5_reduce, 1, "5x5_reduce"), f5, 5, "5x5")
    pooled = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch_pool = conv(pooled, pool_proj, 1, "pool_proj")
    return layers.Concatenate(name=f"{name}_concat")([branch1, branch3, branch5, branch_pool])


def inverted_residual_block(
    x, expansion: int, filters: int, stride: int = 1, name: str = "inverted"
):
    """A MobileNetV2 inverted residual block with a linear bottleneck.

    Expand: 1x1 conv to ``expansion * c_in`` channels, batch norm, ReLU6 (left out when
    ``expansion == 1``). Depthwise: 3x3 depthwise conv, batch norm, ReLU6. Project: 1x1 conv
    to ``filters`` channels and batch norm with NO activation (the linear bottleneck).
    The input is added back when stride is 1 and the channel counts match.
    """
    c_in = x.shape[-1]
    y = x
    if expansion != 1:
        y = layers.Conv2D(expansion * c_in, 1, use_bias=False, name=f"{name}_expand")(y)
        y = layers.BatchNormalization(epsilon=1e-3, momentum=0.999, name=f"{name}_expand_bn")(y)
        y = layers.ReLU(6.0, name=f"{name}_expand_relu6")(y)
    y = layers.DepthwiseConv2D(
        3, strides=stride, padding="same", use_bias=False, name=f"{name}_depthwise"
    )(y)
    y = layers.BatchNormalization(epsilon=1e-3, momentum=0.999, name=f"{name}_depthwise_bn")(y)
    y = layers.ReLU(6.0, name=f"{name}_depthwise_relu6")(y)
    y = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_project")(y)
    y = layers.BatchNormalization(epsilon=1e-3, momentum=0.999, name=f"{name}_project_bn")(y)
    if stride == 1 and c_in == filters:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y
