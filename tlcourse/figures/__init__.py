"""Diagrams for the lectures, drawn with matplotlib into ``assets/``.

Every module in this package defines ``FIGURES``: a dict from a file name in ``assets/``
to a function returning a ``matplotlib.figure.Figure``. Rebuild them all with::

    python -m tlcourse.figures            # writes assets/*.png
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path

from matplotlib.figure import Figure

ASSETS = Path(__file__).resolve().parents[2] / "assets"


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


def build_all(folder: Path = ASSETS) -> list[Path]:
    """Draw every figure into ``folder``; return the written paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in sorted(registry().items()):
        path = folder / name
        draw().savefig(path, dpi=110, metadata={"Software": None})
        written.append(path)
    return written
