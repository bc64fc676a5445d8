"""Concept diagrams for the lectures on transfer learning (notebooks 01 and 09)."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from .drawing import arrow, canvas

BASE, HEAD, OLD, DATA, NOTE = "#4c72b0", "#55a868", "#c44e52", "#8c8c8c", "#dd8452"


def _box(
    ax,
    x: float,
    y: float,
    w: float,
    h: float,
    text: str,
    colour: str,
    alpha: float = 0.85,
    fontsize: int = 10,
    text_colour: str = "white",
) -> None:
    """A rounded box with centred text; (x, y) is its lower-left corner."""
    ax.add_patch(
        FancyBboxPatch(
            (x, y),
            w,
            h,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=colour,
            edgecolor="black",
            alpha=alpha,
        )
    )
    ax.text(
        x + w / 2,
        y + h / 2,
        text,
        ha="center",
        va="center",
        fontsize=fontsize,
        color=text_colour,
        fontweight="bold",
    )


def transfer_at_a_glance_figure() -> Figure:
    """Pretrained base + old top on ImageNet; the same base, frozen, with a new head."""
    fig, ax = canvas(10, 4.6, (0, 10), (0, 5))
    ax.text(
        0.1,
        4.7,
        "1. Somebody trained a network on ImageNet (many photos, 1000 classes)",
        fontsize=11,
        va="center",
    )
    _box(ax, 0.2, 3.3, 1.6, 0.9, "photo", DATA)
    _box(ax, 2.4, 3.2, 3.6, 1.1, "base: convolutional layers\n(edges, textures, parts)", BASE)
    _box(ax, 6.6, 3.3, 2.6, 0.9, "top: 1000 classes", OLD)
    arrow(ax, (1.85, 3.75), (2.35, 3.75))
    arrow(ax, (6.05, 3.75), (6.55, 3.75))

    ax.text(
        0.1,
        2.35,
        "2. We keep the base, drop the top, and train a small new head",
        fontsize=11,
        va="center",
    )
    _box(ax, 0.2, 0.8, 1.6, 0.9, "cat or dog\nphoto", DATA)
    _box(ax, 2.4, 0.7, 3.6, 1.1, "the same base\n(weights copied, frozen)", BASE)
    _box(ax, 6.6, 0.8, 2.6, 0.9, "new head: dog?", HEAD)
    arrow(ax, (1.85, 1.25), (2.35, 1.25))
    arrow(ax, (6.05, 1.25), (6.55, 1.25))
    arrow(ax, (5.6, 3.15), (5.6, 1.85), "copy the learned weights", color=BASE)
    arrow(ax, (8.6, 3.25), (8.6, 2.0), "thrown away", style="-", color=OLD)
    ax.text(8.6, 1.98, "x", color=OLD, fontsize=16, ha="center", va="center", fontweight="bold")
    ax.text(
        5.0,
        0.25,
        "only the head learns: few weights, so few photos are enough",
        fontsize=10,
        ha="center",
        style="italic",
    )
    return fig


def bottom_and_top_figure() -> Figure:
    """A classification network read from the input (bottom) up to the classes (top)."""
    fig, ax = canvas(7.5, 6.2, (0, 7.5), (0, 6.4))
    layers = [
        ("input photo", DATA, "pixels"),
        ("early conv layers", BASE, "edges, colours"),
        ("middle conv layers", BASE, "textures, simple shapes"),
        ("late conv layers", BASE, "parts: eyes, ears, wheels"),
        ("pooling + dense layers", OLD, "combine parts into classes"),
        ("softmax: class scores", OLD, "'tabby cat', 'beagle', ..."),
    ]
    for index, (name, colour, learns) in enumerate(layers):
        y = 0.3 + index * 1.0
        _box(ax, 0.4, y, 3.0, 0.7, name, colour, fontsize=9)
        ax.text(3.6, y + 0.35, learns, fontsize=9, va="center")
        if index:
            arrow(ax, (1.9, y - 0.28), (1.9, y - 0.02))
    ax.plot([6.0, 6.2, 6.2, 6.0], [1.3, 1.3, 4.0, 4.0], color=BASE, linewidth=2)
    ax.text(
        6.3,
        2.65,
        "BOTTOM\ngeneral\nfeatures\n(reuse)",
        color=BASE,
        fontsize=10,
        va="center",
        fontweight="bold",
    )
    ax.plot([6.0, 6.2, 6.2, 6.0], [4.3, 4.3, 6.0, 6.0], color=OLD, linewidth=2)
    ax.text(
        6.3,
        5.15,
        "TOP\ntask-\nspecific\n(replace)",
        color=OLD,
        fontsize=10,
        va="center",
        fontweight="bold",
    )
    ax.set_title("The bottom and the top of a network", fontsize=12)
    return fig


def include_top_figure() -> Figure:
    """What MobileNetV2 returns with include_top=True and with include_top=False."""
    fig, ax = canvas(10, 4.8, (0, 10), (0, 5.2))
    for x, title, with_top in ((0.3, "include_top=True", True), (5.3, "include_top=False", False)):
        ax.text(
            x + 2.2, 4.95, title, fontsize=12, ha="center", fontweight="bold", family="monospace"
        )
        _box(ax, x, 0.2, 4.4, 0.6, "input  (224, 224, 3)", DATA, fontsize=9)
        _box(ax, x, 1.1, 4.4, 1.0, "convolutional base\noutput (7, 7, 1280)", BASE, fontsize=9)
        arrow(ax, (x + 2.2, 0.82), (x + 2.2, 1.08))
        if with_top:
            _box(ax, x, 2.4, 4.4, 0.6, "global average pooling  (1280,)", OLD, fontsize=9)
            _box(ax, x, 3.3, 4.4, 0.6, "Dense 1000 + softmax  (1000,)", OLD, fontsize=9)
            arrow(ax, (x + 2.2, 2.12), (x + 2.2, 2.38))
            arrow(ax, (x + 2.2, 3.02), (x + 2.2, 3.28))
            ax.text(
                x + 2.2, 4.35, "output: 1000 ImageNet class probabilities", fontsize=9, ha="center"
            )
        else:
            _box(
                ax,
                x,
                2.4,
                4.4,
                1.5,
                "your new head goes here\n(pooling, Dense(1), ...)",
                HEAD,
                alpha=0.35,
                fontsize=9,
                text_colour="black",
            )
            arrow(ax, (x + 2.2, 2.12), (x + 2.2, 2.38))
            ax.text(
                x + 2.2, 4.35, "output: a (7, 7, 1280) grid of features", fontsize=9, ha="center"
            )
    return fig


def which_output_layer_figure() -> Figure:
    """MobileNetV2's feature maps from input to classes, and which one to build on."""
    stages = [
        ("input", "224x224x3", DATA),
        ("block_1", "56x56x24", BASE),
        ("block_3", "28x28x32", BASE),
        ("block_6", "14x14x64", BASE),
        ("block_13", "7x7x160", BASE),
        ("out_relu", "7x7x1280", BASE),
        ("pooled", "1280", NOTE),
        ("top", "1000 classes", OLD),
    ]
    fig, ax = canvas(11, 2.8, (0, 11), (0.2, 3.5))
    for index, (name, shape, colour) in enumerate(stages):
        x = 0.15 + index * 1.35
        _box(ax, x, 1.5, 1.1, 0.8, f"{name}\n{shape}", colour, fontsize=8)
        if index:
            arrow(ax, (x - 0.22, 1.9), (x - 0.02, 1.9))
    notes = [
        (2.0, "earlier: more general,\nlarger (costly) maps", BASE),
        (6.9, "usual choice: last conv\nblock, then pool", HEAD),
        (9.6, "too specific: already\ncommitted to ImageNet", OLD),
    ]
    for x, text, colour in notes:
        ax.text(x, 0.85, text, fontsize=9, ha="center", va="top", color=colour, fontweight="bold")
    ax.text(5.5, 3.2, "Which layer's output should the new head read?", fontsize=12, ha="center")
    return fig


FIGURES = {
    "transfer_learning_at_a_glance": transfer_at_a_glance_figure,
    "network_bottom_and_top": bottom_and_top_figure,
    "include_top_true_false": include_top_figure,
    "which_output_layer": which_output_layer_figure,
}
