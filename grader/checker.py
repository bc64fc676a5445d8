"""The second run of the hidden tests: in a clean kernel, on what a submission handed in.

Student code runs in the same kernel as the hidden tests, so it can fool them (patch
``Model.evaluate``, numpy or builtins, rewrite later cells, swallow errors). Each hidden test
therefore hands its objects in (``tlcourse.hand_in``), and after the notebook the grader runs
the same tests in a fresh kernel where no student code ran, on those objects loaded back in
Keras' safe mode. Only this kernel sees the held-out photos. A part scores the lower of the
two runs.
"""

from __future__ import annotations

import atexit
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook
from traitlets.config import Config

from .config import MASTER


@dataclass
class CheckResult:
    scores: dict[str, float]  # grade cell id -> points in the clean kernel
    messages: dict[str, str] = field(default_factory=dict)  # grade cell id -> its output
    problem: str = ""  # why the check itself did not finish, or ""


def test_cells(master: Path = MASTER) -> list[tuple[str, float, str]]:
    """``(grade id, points, source)`` of every test cell of the master notebook."""
    cells = []
    for cell in nbformat.read(master, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            cells.append((meta["grade_id"], float(meta["points"]), cell.source))
    return cells


def constants(master: Path = MASTER) -> str:
    """The master's settings cells that the tests read (e.g. ``FINE_TUNE_FROM``)."""
    return "\n".join(
        cell.source
        for cell in nbformat.read(master, as_version=4).cells
        if cell.metadata.get("nbgrader", {}).get("grade_id", "").endswith("_setting")
    )


def check_notebook(handin: Path, master: Path = MASTER):
    """The notebook the clean kernel runs: load the hand-in, then every test cell."""
    setup = "\n".join(
        [
            "import warnings",
            "warnings.filterwarnings('ignore')",
            "from tlcourse.handin import load_handed_in",
            f"globals().update(load_handed_in({str(handin)!r}))",
            constants(master),
        ]
    )
    cells = [new_code_cell(setup)]
    for grade_id, _points, source in test_cells(master):
        cells.append(new_code_cell(source, metadata={"grade_id": grade_id}))
    return new_notebook(cells=cells)


def _text(cell) -> str:
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream" and out.name == "stdout":  # stderr: library noise
            parts.append(out.text)
        elif out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}\n")
    return "".join(parts).strip()


def _score(cell, points: float) -> float:
    if any(out.output_type == "error" for out in cell.outputs):
        return 0.0
    for out in cell.outputs:
        if out.output_type == "execute_result":
            try:
                return min(points, max(0.0, float(out.data.get("text/plain", ""))))
            except ValueError:
                pass
    return points


def run_check(handin: Path, config: Config, workdir: Path, master: Path = MASTER) -> CheckResult:
    """Run the hidden tests on the objects in ``handin``; ``config`` selects the kernel."""
    tests = test_cells(master)
    zeros = {grade_id: 0.0 for grade_id, _, _ in tests}
    if not any(Path(handin).glob("*")):
        return CheckResult(zeros, {g: "nothing was handed in to the grader" for g in zeros})
    nb = check_notebook(handin, master)
    workdir.mkdir(parents=True, exist_ok=True)
    client = NotebookClient(
        nb, config=config, allow_errors=True, resources={"metadata": {"path": str(workdir)}}
    )
    try:
        client.execute()
    except Exception as error:  # noqa: BLE001 - a dead kernel, a time limit: recorded
        return CheckResult(zeros, problem=f"{type(error).__name__}: {str(error)[:200]}")
    finally:
        atexit.unregister(client._cleanup_kernel)
    result = CheckResult({})
    for cell, (grade_id, points, _source) in zip(nb.cells[1:], tests, strict=True):
        result.scores[grade_id] = _score(cell, points)
        result.messages[grade_id] = _text(cell)
    return result
