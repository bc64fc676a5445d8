"""The labs: each folder ``grader/source/<lab>/`` holds a master notebook (nbgrader's format)
and, optionally, ``lab.toml``, the grader's settings for that lab (:class:`LabSpec`). Each
master is read once: its parts, points, test cells, settings and hidden lines.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "grader" / "source"
SPEC_FILE = "lab.toml"
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
        """What the reports call its part: the grade id without a ``_tests`` or ``_test``
        ending (``q1_tests`` -> ``q1``); the test cells of one part share it."""
        return re.sub(r"_tests?$", "", self.grade_id)


@dataclass(frozen=True)
class LabSpec:
    """What the grader must know of a lab beyond nbgrader's metadata (``lab.toml``; every
    entry optional: an assignment without one is graded on nbgrader's metadata alone).

    Hooks are ``"module:function"`` names, called with the lab's settings (the constants
    of its ``*_setting`` cells) first.
    """

    # Files every kernel is given: {path under its COURSE_OFFLINE_DIR: hook that finds the
    # file or folder here, downloading it once when online}. With any, both kernels also
    # get the course cache (the student's, and the clean kernel's own).
    given: dict[str, str] = field(default_factory=dict)
    prepare: str = ""  # hook(settings, notebook_cache, check_cache, held_out): fill caches
    clean_kernel: bool = False  # hidden tests run again in a clean kernel on hand-ins
    measured: frozenset[str] = frozenset()  # tests scored only there (on held-out data)
    holdout: str = ""  # hook() finding the held-out data (--holdout replaces it); the clean
    # kernel alone is given it
    warm: str = ""  # hook(settings), run in the clean kernel before it serves
    limits: dict[str, float] = field(default_factory=dict)  # grader.sandbox.SandboxLimits

    @classmethod
    def read(cls, path: Path) -> LabSpec:
        """The spec in ``path``; the default spec when there is no such file."""
        if not path.exists():
            return cls()
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        kernels, clean = data.get("kernels", {}), data.get("clean_kernel")
        return cls(
            given=dict(kernels.get("given", {})),
            prepare=kernels.get("prepare", ""),
            clean_kernel=clean is not None,
            measured=frozenset((clean or {}).get("measured", [])),
            holdout=(clean or {}).get("holdout", ""),
            warm=(clean or {}).get("warm", ""),
            limits=dict(data.get("limits", {})),
        )


def hook(name: str):
    """The function a ``"module:function"`` name points to."""
    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)


@dataclass(frozen=True)
class Master:
    """What the grader needs to know of the master notebook (treat ``notebook`` as read-only)."""

    lab: str  # its folder's name: nbgrader's assignment id
    path: Path
    digest: str  # SHA-256 of the notebook and the spec: a record graded against another is stale
    notebook: nbformat.NotebookNode
    tests: tuple[TestCell, ...]
    settings: str  # the source of the ``*_setting`` cells the tests read (lab 2's CUT)
    hidden_lines: tuple[str, ...]  # code lines of the hidden tests, to keep out of feedback
    part_titles: dict[str, str]  # part_c -> "Part C: Build the full model" (its heading)
    spec: LabSpec

    def setting_values(self) -> dict:
        """The constants the ``*_setting`` cells define."""
        values: dict = {}
        exec(self.settings, values)  # noqa: S102 - the master's own cells, trusted
        values.pop("__builtins__", None)
        return values

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


def find_labs(source: Path | None = None) -> dict[str, Path]:
    """``{lab: folder}`` of every lab: each folder of ``grader/source/`` that holds a
    notebook, and of ``source`` (another nbgrader course's ``source/`` folder) if given."""
    labs: dict[str, Path] = {}
    for root in filter(None, [SOURCE, source]):
        for folder in sorted(Path(root).iterdir()):
            if folder.is_dir() and any(folder.glob("*.ipynb")):
                labs.setdefault(folder.name, folder.resolve())
    return labs


@functools.cache
def load_master(folder: Path) -> Master:
    """Read the master notebook (the folder's first) and spec of the lab in ``folder``
    (once per process)."""
    folder = Path(folder)
    lab = folder.name
    path = min(folder.glob("*.ipynb"))
    spec_path = folder / SPEC_FILE
    data = path.read_bytes()
    spec_bytes = spec_path.read_bytes() if spec_path.exists() else b""
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
        lab=lab,
        path=path,
        digest=hashlib.sha256(data + b"\0" + spec_bytes).hexdigest(),
        notebook=nb,
        tests=tuple(tests),
        settings="\n".join(settings),
        hidden_lines=tuple(hidden_test_lines([cell.source for cell in nb.cells])),
        part_titles=titles,
        spec=LabSpec.read(spec_path),
    )


def lab_of(nb: nbformat.NotebookNode, labs: dict[str, Path]) -> str | None:
    """The lab of ``labs`` a notebook belongs to: the one whose title (the master's first
    line, which students do not edit) it holds, when exactly one; else, among those (or all),
    the one that shares most graded cell ids with it; None when none does."""
    masters = {lab: load_master(folder) for lab, folder in labs.items()}
    titled = [lab for lab, m in masters.items() if any(m.title in c.source for c in nb.cells)]
    if len(titled) == 1:
        return titled[0]
    theirs = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.cells}
    shared = {lab: len(set(masters[lab].grade_ids) & theirs) for lab in titled or masters}
    best = max(shared, key=shared.get, default=None)
    return best if best is not None and shared[best] else None
