"""The nbgrader configuration of the course, shared by every command."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearHiddenTests,
    ClearMarkScheme,
    ClearOutput,
    GetGrades,
    IgnorePattern,
    IncludeHeaderFooter,
    LimitOutput,
    LockCells,
    SaveAutoGrades,
)
from traitlets.config import Config

from .preprocessors import (
    CappedExecute,
    ClearHiddenTestsInTestCells,
    HideTestCode,
    hidden_test_lines,
)

REPO = Path(__file__).resolve().parent.parent
MASTER_DIR = REPO / "grader" / "source"
ASSIGNMENT = "cats_vs_dogs"
MASTER = MASTER_DIR / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
COURSE_ID = "transfer-learning"

# Tests whose points are only measured in the grader's clean kernel (the held-out photos are
# there alone); in the student's kernel they only hand the model in.
MEASURED_IN_CLEAN_KERNEL = {"part_e_tests"}

CELL_TIMEOUT = 600  # seconds per cell: feature extraction and training take minutes on a CPU

# TensorFlow and absl write start-up and info lines to stderr; nbgrader scores a test cell
# that wrote anything to stderr as 0. Stream outputs matching this are dropped before
# scoring. A failing test still scores 0: failures are "error" outputs, not stderr.
STDERR_NOISE = (
    r"(?m)^(?:[IWE]\d{4} \d\d:\d\d:\d\d"  # absl / TF C++ log lines
    r"|WARNING: All log messages before absl"
    r"|To enable the following instructions"
    r"|WARNING:tensorflow:|WARNING:absl:"
    r"|.*\b\w*Warning: )"  # Python warnings
)


def course_config(root: Path, db_path: Path | None = None) -> Config:
    """nbgrader settings with course root ``root`` (holding source/, submitted/, ...)."""
    c = Config()
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.db_url = f"sqlite:///{db_path or Path(root) / 'gradebook.db'}"
    c.Execute.timeout = CELL_TIMEOUT
    c.Execute.startup_timeout = 120
    # After a cell that printed without end is stopped, its queued output takes a while to
    # drain: wait for it, then go on rather than fail the whole notebook.
    c.Execute.iopub_timeout = 30
    c.Execute.raise_on_iopub_timeout = False
    c.Execute.extra_arguments = [
        "--HistoryManager.hist_file=:memory:",
        "--IPKernelApp.log_level=ERROR",
    ]
    c.IgnorePattern.enabled = True
    c.IgnorePattern.pattern = STDERR_NOISE
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    # nbgrader's list, with an Execute that keeps at most 1 MiB of output per cell.
    c.Autograde.autograde_preprocessors = [
        CappedExecute,
        IgnorePattern,
        ClearMetadataPreprocessor,
        LimitOutput,
        SaveAutoGrades,
        AssignLatePenalties,
        CheckCellMetadata,
    ]
    # Feedback shows scores and messages; hidden test code is cut from sources and outputs.
    c.GenerateFeedback.preprocessors = [
        GetGrades,
        ClearHiddenTestsInTestCells,
        HideTestCode,
        CSSHTMLHeaderPreprocessor,
    ]
    c.HideTestCode.hidden_lines = hidden_test_lines(
        [cell.source for cell in nbformat.read(MASTER, as_version=4).cells]
    )
    # The published solution: solutions kept, hidden tests removed, nothing executed.
    c.GenerateSolution.preprocessors = [
        IncludeHeaderFooter,
        LockCells,
        ClearOutput,
        ClearMarkScheme,
        ClearHiddenTests,
    ]
    return c


def repository_config(db_path: Path = REPO / "grader" / "gradebook.db") -> Config:
    """Settings for this repository: master in grader/source, output to labs/, solutions/."""
    c = course_config(REPO, db_path)
    c.CourseDirectory.source_directory = "grader/source"
    c.CourseDirectory.release_directory = "labs"
    c.CourseDirectory.solution_directory = "solutions"
    return c
