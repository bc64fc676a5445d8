"""The master notebook, read once: its parts, points, test cells, settings and hidden lines."""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "cats_vs_dogs"
MASTER = REPO / "grader" / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.DOTALL)
PART_HEADING = re.compile(r"## (Part [A-Z])\b.*?\*\*(.+?)\.?\*\*", re.DOTALL)
SHORTEST_HIDDEN_LINE = 12  # shorter lines (``else:``, ``import os``) are too common to hide


@dataclass(frozen=True)
class TestCell:
    grade_id: str
    points: float
    source: str

    @property
    def part(self) -> str:
        """``part_a_tests`` -> ``part_a``."""
        return "_".join(self.grade_id.split("_")[:2])


@dataclass(frozen=True)
class Master:
    """What the grader needs to know of the master notebook (treat ``notebook`` as read-only)."""

    path: Path
    digest: str  # SHA-256 of the file: a record graded against another master is stale
    notebook: nbformat.NotebookNode
    tests: tuple[TestCell, ...]
    settings: str  # the source of the ``*_setting`` cells the tests read (FINE_TUNE_FROM)
    hidden_lines: tuple[str, ...]  # code lines of the hidden tests, to keep out of feedback
    part_titles: dict[str, str]  # part_c -> "Part C: Build the full model" (its heading)

    @property
    def title(self) -> str:
        return self.notebook.cells[0].source.splitlines()[0]

    @property
    def grade_ids(self) -> list[str]:
        """Every cell id nbgrader tracks (answers, self-checks, tests), in notebook order."""
        return [
            c.metadata["nbgrader"]["grade_id"]
            for c in self.notebook.cells
            if "nbgrader" in c.metadata
        ]

    @property
    def parts(self) -> dict[str, float]:
        """``{part: points}`` in notebook order."""
        points: dict[str, float] = {}
        for test in self.tests:
            points[test.part] = points.get(test.part, 0.0) + test.points
        return points

    @property
    def max_score(self) -> float:
        return sum(self.parts.values())


def hidden_test_lines(sources: list[str]) -> list[str]:
    """The code lines between the hidden-test markers of ``sources`` (long enough to match)."""
    lines = []
    for source in sources:
        for block in HIDDEN.findall(source):
            lines += [
                s.strip() for s in block.splitlines() if len(s.strip()) >= SHORTEST_HIDDEN_LINE
            ]
    return lines


@functools.cache
def load_master(path: Path = MASTER) -> Master:
    """Read the master notebook at ``path`` (once per process)."""
    data = Path(path).read_bytes()
    nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    tests, settings, titles = [], [], {}
    for cell in nb.cells:
        heading = PART_HEADING.match(cell.source) if cell.cell_type == "markdown" else None
        if heading:  # "## Part C (2 points)" and its first bold sentence
            titles[heading[1].lower().replace(" ", "_")] = f"{heading[1]}: {heading[2]}"
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            tests.append(TestCell(meta["grade_id"], float(meta["points"]), cell.source))
        elif meta.get("grade_id", "").endswith("_setting"):
            settings.append(cell.source)
    return Master(
        path=Path(path),
        digest=hashlib.sha256(data).hexdigest(),
        notebook=nb,
        tests=tuple(tests),
        settings="\n".join(settings),
        hidden_lines=tuple(hidden_test_lines([cell.source for cell in nb.cells])),
        part_titles=titles,
    )
