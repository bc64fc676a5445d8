"""Diagrams of modern CNN building blocks: residual, inception, depthwise separable,
inverted residual."""

from __future__ import annotations

from itertools import pairwise

from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Rectangle

from .drawing import arrow, canvas

CONV = "#cfe2f3"
NORM = "#fff2cc"
JOIN = "#d9ead3"
POOL = "#f4cccc"
LINEAR = "#ead1dc"


def _box(
    ax,
    x: float,
    y: float,
    text: str,
    color: str = CONV,
    width: float = 2.6,
    height: float = 0.6,
    size: int = 10,
) -> None:
    """A rounded box centred on (x, y)."""
    ax.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - height / 2),
            width,
            height,
            boxstyle="round,pad=0.05",
            facecolor=color,
            edgecolor="#333333",
            linewidth=1.2,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=size)


def residual_block() -> Figure:
    """Basic residual block: two 3x3 convolutions plus an identity shortcut."""
    fig, ax = canvas(6.0, 6.0, (0, 9.2), (0, 9.2))
    ax.text(
        4.6,
        8.85,
        "Residual block: output = ReLU(F(x) + x)",
        ha="center",
        fontsize=12,
        weight="bold",
    )
    steps = [
        (8.0, "input x  (H x W x C)", JOIN),
        (6.9, "3x3 conv, C filters", CONV),
        (5.9, "batch norm + ReLU", NORM),
        (4.9, "3x3 conv, C filters", CONV),
        (3.9, "batch norm", NORM),
    ]
    for y, text, color in steps:
        _box(ax, 3.2, y, text, color, width=3.6)
    for (y0, _, _), (y1, _, _) in pairwise(steps):
        arrow(ax, (3.2, y0 - 0.35), (3.2, y1 + 0.35))
    ax.add_patch(Rectangle((1.2, 3.45), 4.0, 3.85, fill=False, linestyle="--", edgecolor="#777777"))
    ax.text(0.3, 5.4, "F(x)", fontsize=11, color="#555555", va="center")
    ax.add_patch(
        FancyBboxPatch(
            (2.8, 2.45), 0.8, 0.6, boxstyle="circle,pad=0.02", facecolor=JOIN, edgecolor="#333333"
        )
    )
    ax.text(3.2, 2.75, "+", ha="center", va="center", fontsize=16)
    arrow(ax, (3.2, 3.55), (3.2, 3.1))
    ax.plot([5.0, 6.6, 6.6], [8.0, 8.0, 2.75], color="#c0392b", linewidth=2)
    arrow(ax, (6.6, 2.75), (3.65, 2.75), color="#c0392b")
    ax.text(
        6.75,
        5.4,
        "identity\nshortcut\n(1x1 conv if\nshape changes)",
        fontsize=9,
        color="#c0392b",
        va="center",
    )
    _box(ax, 3.2, 1.5, "ReLU", NORM, width=1.6)
    arrow(ax, (3.2, 2.4), (3.2, 1.85))
    _box(ax, 3.2, 0.5, "output  (H x W x C)", JOIN, width=3.6)
    arrow(ax, (3.2, 1.15), (3.2, 0.85))
    return fig


def inception_module() -> Figure:
    """Inception module with 1x1 reductions (GoogLeNet), sizes of inception (3a)."""
    fig, ax = canvas(9.0, 5.2, (0, 16), (0, 9.2))
    ax.text(
        8, 8.8, "Inception module (GoogLeNet (3a) sizes)", ha="center", fontsize=12, weight="bold"
    )
    _box(ax, 8, 7.8, "previous layer  28 x 28 x 192", JOIN, width=5)
    columns = [
        (2.2, [("1x1 conv, 64", CONV)]),
        (6.0, [("1x1 conv, 96\n(reduce)", LINEAR), ("3x3 conv, 128", CONV)]),
        (9.8, [("1x1 conv, 16\n(reduce)", LINEAR), ("5x5 conv, 32", CONV)]),
        (13.6, [("3x3 max pool\nstride 1", POOL), ("1x1 conv, 32\n(projection)", LINEAR)]),
    ]
    for x, boxes in columns:
        arrow(ax, (8, 7.45), (x, 6.25))
        for y, (text, color) in zip([5.8, 3.8], boxes):
            _box(ax, x, y, text, color, width=3.2, height=0.8)
        if len(boxes) == 2:
            arrow(ax, (x, 5.35), (x, 4.25))
            arrow(ax, (x, 3.35), (8, 2.25))
        else:
            ax.plot([x, x], [5.35, 1.9], color="#333333", linewidth=1.4)
            arrow(ax, (x, 1.9), (4.45, 1.9))
    _box(ax, 8, 1.9, "concatenate channels: 64 + 128 + 32 + 32 = 256", JOIN, width=7)
    _box(ax, 8, 0.7, "output  28 x 28 x 256", JOIN, width=4)
    arrow(ax, (8, 1.55), (8, 1.05))
    ax.text(
        15.9,
        6.9,
        "pink: cheap 1x1 convs\nthat cut the channels",
        fontsize=9,
        ha="right",
        color="#7f3f5f",
    )
    return fig


def depthwise_separable() -> Figure:
    """A standard convolution next to its depthwise + pointwise factorisation."""
    fig, ax = canvas(9.5, 4.6, (0, 19), (0, 9.2))
    ax.text(
        9.5,
        8.8,
        "Standard vs depthwise separable convolution",
        ha="center",
        fontsize=12,
        weight="bold",
    )
    ax.text(4.2, 7.8, "standard k x k convolution", ha="center", fontsize=11)
    _box(ax, 4.2, 6.3, "input  H x W x M", JOIN, width=4)
    _box(
        ax,
        4.2,
        4.3,
        "N filters, each k x k x M\n(filter AND mix channels at once)",
        CONV,
        width=5.6,
        height=1.0,
    )
    _box(ax, 4.2, 2.3, "output  H x W x N", JOIN, width=4)
    arrow(ax, (4.2, 5.95), (4.2, 4.85))
    arrow(ax, (4.2, 3.75), (4.2, 2.65))
    ax.text(4.2, 1.0, "cost: H W N k\u00b2 M", ha="center", fontsize=11)
    ax.plot([9.0, 9.0], [0.5, 8.2], color="#999999", linestyle=":")
    ax.text(14.2, 7.8, "depthwise separable", ha="center", fontsize=11)
    _box(ax, 14.2, 6.9, "input  H x W x M", JOIN, width=4)
    _box(
        ax,
        14.2,
        5.4,
        "depthwise: one k x k filter\nper channel (M filters)",
        CONV,
        width=5.6,
        height=1.0,
    )
    _box(
        ax,
        14.2,
        3.7,
        "pointwise: N filters 1 x 1 x M\n(mix channels)",
        LINEAR,
        width=5.6,
        height=1.0,
    )
    _box(ax, 14.2, 2.2, "output  H x W x N", JOIN, width=4)
    arrow(ax, (14.2, 6.55), (14.2, 5.95))
    arrow(ax, (14.2, 4.85), (14.2, 4.25))
    arrow(ax, (14.2, 3.15), (14.2, 2.55))
    ax.text(
        14.2,
        1.0,
        "cost: H W M k\u00b2 + H W M N\nratio to standard = 1/N + 1/k\u00b2",
        ha="center",
        fontsize=11,
    )
    return fig


def inverted_residual() -> Figure:
    """MobileNetV2 inverted residual block with a linear bottleneck."""
    fig, ax = canvas(5.6, 6.4, (0, 9), (0, 10.2))
    ax.text(
        4.5, 9.8, "MobileNetV2 inverted residual block", ha="center", fontsize=12, weight="bold"
    )
    steps = [
        (8.9, "input  H x W x C  (narrow)", JOIN),
        (7.7, "1x1 conv expand to tC\nbatch norm + ReLU6", CONV),
        (6.1, "3x3 depthwise conv, stride s\nbatch norm + ReLU6", CONV),
        (4.5, "1x1 conv project to C'\nbatch norm, NO activation", LINEAR),
    ]

    def half(text: str) -> float:
        return 0.5 if "\n" in text else 0.35

    for y, text, color in steps:
        _box(ax, 3.6, y, text, color, width=4.8, height=0.9 if "\n" in text else 0.6)
    for (y0, t0, _), (y1, t1, _) in pairwise(steps):
        arrow(ax, (3.6, y0 - half(t0)), (3.6, y1 + half(t1)))
    ax.text(0.15, 6.9, "wide\n(t = 6)", fontsize=9, color="#555555")
    ax.add_patch(
        FancyBboxPatch(
            (3.2, 2.75), 0.8, 0.6, boxstyle="circle,pad=0.02", facecolor=JOIN, edgecolor="#333333"
        )
    )
    ax.text(3.6, 3.05, "+", ha="center", va="center", fontsize=16)
    arrow(ax, (3.6, 4.0), (3.6, 3.4))
    ax.plot([6.0, 7.3, 7.3], [8.9, 8.9, 3.05], color="#c0392b", linewidth=2)
    arrow(ax, (7.3, 3.05), (4.05, 3.05), color="#c0392b")
    ax.text(7.4, 6.0, "skip only\nif s = 1\nand C' = C", fontsize=9, color="#c0392b", va="center")
    _box(ax, 3.6, 1.6, "output  H/s x W/s x C'  (narrow)", JOIN, width=4.8)
    arrow(ax, (3.6, 2.7), (3.6, 1.95))
    ax.text(
        4.5,
        0.5,
        "linear bottleneck: no ReLU on the narrow output",
        ha="center",
        fontsize=9,
        color="#7f3f5f",
    )
    return fig


FIGURES = {
    "residual_block": residual_block,
    "inception_module": inception_module,
    "depthwise_separable": depthwise_separable,
    "inverted_residual": inverted_residual,
}
