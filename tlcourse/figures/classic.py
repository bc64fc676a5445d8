"""Block diagrams of the classic CNNs: LeNet-5, AlexNet, VGG16, and the 3x3 receptive field."""

from __future__ import annotations

import math

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle

CONV, POOL, DENSE, DATA = "#4c72b0", "#dd8452", "#55a868", "#8c8c8c"


def _block(size: int, channels: int) -> tuple[float, float]:
    """Drawn (width, height) of a feature map: height grows with its side, width with depth."""
    return 0.25 + 0.35 * math.log2(max(channels, 1)) / 3, 0.6 + 2.4 * math.sqrt(size / 227)


def _pipeline(
    title: str,
    stages: list[tuple[str, str, str, float, float]],
    width: float = 13,
    height: float = 4.2,
) -> Figure:
    """Draw stages (label above, text below, colour, box width, box height) left to right."""
    fig = Figure(figsize=(width, height))
    ax = fig.add_subplot()
    x = 0.0
    gap = 0.55
    for index, (label, below, colour, w, h) in enumerate(stages):
        ax.add_patch(Rectangle((x, -h / 2), w, h, facecolor=colour, edgecolor="black", alpha=0.85))
        ax.text(
            x + w / 2, h / 2 + 0.12, label, ha="center", va="bottom", fontsize=9, fontweight="bold"
        )
        ax.text(x + w / 2, -h / 2 - 0.12, below, ha="center", va="top", fontsize=8)
        if index < len(stages) - 1:
            ax.add_patch(
                FancyArrowPatch(
                    (x + w + 0.05, 0),
                    (x + w + gap - 0.05, 0),
                    arrowstyle="-|>",
                    mutation_scale=10,
                    color="black",
                )
            )
        x += w + gap
    ax.set_xlim(-0.2, x - gap + 0.2)
    ax.set_ylim(-2.4, 2.4)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=12)
    handles = [
        Rectangle((0, 0), 1, 1, facecolor=c, edgecolor="black") for c in (DATA, CONV, POOL, DENSE)
    ]
    ax.legend(
        handles,
        ["input", "convolution", "pooling", "dense"],
        loc="lower center",
        ncol=4,
        frameon=False,
        fontsize=8,
        bbox_to_anchor=(0.5, -0.08),
    )
    fig.tight_layout()
    return fig


def lenet5_figure() -> Figure:
    """LeNet-5: two conv + subsampling pairs, then C5, F6 and the 10-way output."""
    stages = [
        ("input", "32x32x1", DATA, *_block(32 * 3, 1)),
        ("C1", "5x5 conv\n28x28x6", CONV, *_block(28 * 3, 6)),
        ("S2", "2x2 avg pool\n14x14x6", POOL, *_block(14 * 3, 6)),
        ("C3", "5x5 conv\n10x10x16", CONV, *_block(10 * 3, 16)),
        ("S4", "2x2 avg pool\n5x5x16", POOL, *_block(5 * 3, 16)),
        ("C5", "5x5 conv\n1x1x120", CONV, *_block(3, 120)),
        ("F6", "dense\n84", DENSE, 0.35, 1.5),
        ("output", "softmax\n10 digits", DENSE, 0.35, 0.9),
    ]
    return _pipeline(
        "LeNet-5 (LeCun et al., 1998): MNIST digit padded to 32x32", stages, width=8.5, height=3.4
    )


def alexnet_figure() -> Figure:
    """AlexNet: five convolutions (three with the two-GPU split), three dense layers."""
    stages = [
        ("input", "227x227x3", DATA, *_block(227, 3)),
        ("conv1", "11x11, stride 4\n55x55x96", CONV, *_block(55, 96)),
        ("pool1", "3x3 max, s2\n27x27x96", POOL, *_block(27, 96)),
        ("conv2", "5x5, 2 groups\n27x27x256", CONV, *_block(27, 256)),
        ("pool2", "3x3 max, s2\n13x13x256", POOL, *_block(13, 256)),
        ("conv3", "3x3\n13x13x384", CONV, *_block(13, 384)),
        ("conv4", "3x3, 2 groups\n13x13x384", CONV, *_block(13, 384)),
        ("conv5", "3x3, 2 groups\n13x13x256", CONV, *_block(13, 256)),
        ("pool5", "3x3 max, s2\n6x6x256", POOL, *_block(6, 256)),
        ("fc6", "4096\n+dropout", DENSE, 0.35, 2.0),
        ("fc7", "4096\n+dropout", DENSE, 0.35, 2.0),
        ("fc8", "softmax\n1000 classes", DENSE, 0.35, 1.2),
    ]
    return _pipeline(
        "AlexNet (Krizhevsky et al., 2012): ReLU everywhere, overlapping "
        "max-pooling, dropout in fc6/fc7",
        stages,
        width=14,
        height=4.2,
    )


def vgg16_figure() -> Figure:
    """VGG16: five blocks of 3x3 convolutions, each closed by 2x2 max-pooling."""
    stages = [("input", "224x224x3", DATA, *_block(224, 3))]
    size = 224
    for block, (convs, channels) in enumerate(
        [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)], start=1
    ):
        stages.append(
            (
                f"block{block}",
                f"{convs} x 3x3 conv\n{size}x{size}x{channels}",
                CONV,
                *_block(size, channels),
            )
        )
        size //= 2
        stages.append(("pool", f"2x2 max\n{size}x{size}", POOL, *_block(size, channels)))
    stages += [
        ("fc1", "4096", DENSE, 0.35, 2.0),
        ("fc2", "4096", DENSE, 0.35, 2.0),
        ("predictions", "softmax\n1000", DENSE, 0.35, 1.2),
    ]
    return _pipeline(
        "VGG16 (Simonyan & Zisserman, 2015): 13 convolutions, all 3x3, then 3 dense layers",
        stages,
        width=15,
        height=4.2,
    )


def receptive_field_figure() -> Figure:
    """Two stacked 3x3 convolutions: one output sees a 5x5 patch of the input."""
    fig = Figure(figsize=(9, 3.6))
    panels = [
        ("input: 5x5 patch", 5, 5),
        ("after 1st 3x3 conv", 3, 3),
        ("after 2nd 3x3 conv", 1, 1),
    ]
    for index, (title, n, lit) in enumerate(panels):
        ax = fig.add_subplot(1, 3, index + 1)
        grid = 7
        offset = (grid - n) // 2
        for row in range(grid):
            for col in range(grid):
                inside = offset <= row < offset + lit and offset <= col < offset + lit
                ax.add_patch(
                    Rectangle(
                        (col, row),
                        1,
                        1,
                        edgecolor="grey",
                        facecolor=CONV if inside else "white",
                        alpha=0.8 if inside else 1,
                    )
                )
        ax.set_xlim(0, grid)
        ax.set_ylim(0, grid)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(title, fontsize=10)
    fig.suptitle(
        "Two 3x3 convolutions in a row: each output value depends on 5x5 inputs", fontsize=11
    )
    fig.tight_layout()
    return fig


FIGURES = {
    "lenet5_architecture": lenet5_figure,
    "alexnet_architecture": alexnet_figure,
    "vgg16_architecture": vgg16_figure,
    "vgg_receptive_field": receptive_field_figure,
}
