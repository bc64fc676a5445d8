"""Diagrams for the lectures, drawn with matplotlib.

Every module in this package defines ``FIGURES``: a dict from a figure's name
(``lenet5_architecture``) to a function returning a ``matplotlib.figure.Figure``. The
lectures carry each diagram inside the notebook (a markdown image whose address is the PNG
itself), so it shows wherever a notebook is opened alone: Colab, a downloaded copy,
nbconvert's output, offline. Redraw them all into the notebooks with ``make figures``
(``python -m course_tools.notebooks figures``); ``python -m tlcourse.figures DIR`` writes
them as PNG files.
"""

from __future__ import annotations

import importlib
import io
import pkgutil
from collections.abc import Callable
from pathlib import Path

from matplotlib.figure import Figure

DPI = 110


def registry() -> dict[str, Callable[[], Figure]]:
    """Every figure of every module in this package, by file name."""
    figures: dict[str, Callable[[], Figure]] = {}
    for module in pkgutil.iter_modules(__path__):
        if module.name == "__main__":
            continue
        found = getattr(importlib.import_module(f"{__name__}.{module.name}"), "FIGURES", {})
        clash = set(found) & set(figures)
        if clash:
            raise ValueError(f"figure names defined twice: {sorted(clash)}")
        figures.update(found)
    return figures


def png(name: str) -> bytes:
    """The figure called ``name``, drawn as PNG bytes (the same bytes each time)."""
    buffer = io.BytesIO()
    registry()[name]().savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def build_all(folder: Path) -> list[Path]:
    """Draw every figure into ``folder`` as ``NAME.png``; return the written paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in sorted(registry()):
        path = folder / f"{name}.png"
        path.write_bytes(png(name))
        written.append(path)
    return written
