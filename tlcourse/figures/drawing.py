"""Drawing primitives shared by the diagram modules."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch


def canvas(
    width: float, height: float, xlim: tuple[float, float], ylim: tuple[float, float]
) -> tuple[Figure, Axes]:
    """A figure of ``width`` x ``height`` inches, one frameless axes over the data limits."""
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.axis("off")
    return fig, ax


def arrow(
    ax: Axes,
    start: tuple[float, float],
    end: tuple[float, float],
    text: str = "",
    style: str = "-|>",
    color: str = "#333333",
    rad: float = 0.0,
) -> None:
    """An arrow from ``start`` to ``end`` (curved by ``rad``), optionally labelled mid-way."""
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle=style,
            mutation_scale=14,
            color=color,
            linewidth=1.4,
            connectionstyle=f"arc3,rad={rad}",
        )
    )
    if text:
        middle = ((start[0] + end[0]) / 2 + 0.08, (start[1] + end[1]) / 2)
        ax.text(*middle, text, fontsize=9, ha="left", va="center", color=color)
