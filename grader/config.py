"""The nbgrader configuration of the course, shared by every command."""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

import nbgrader
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import (
    CheckCellMetadata,
    ClearHiddenTests,
    ClearMarkScheme,
    ClearOutput,
    DeduplicateIds,
    GetGrades,
    IncludeHeaderFooter,
    LockCells,
    OverwriteCells,
    OverwriteKernelspec,
)
from traitlets.config import Config

from .master import REPO, SPEC_FILE, Master

TEMPLATES = Path(__file__).resolve().parent / "templates"
NBGRADER_TEMPLATES = (
    Path(nbgrader.__file__).resolve().parent / "server_extensions" / "formgrader" / "templates"
)
from .preprocessors import (
    ClearHiddenTestsInTestCells,
    HideTestCode,
    NameParts,
    RefuseNbgraderAutograde,
)

__all__ = ["REPO", "course_config", "repository_config"]
COURSE_ID = "transfer-learning"

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


def import_tensorflow_quietly() -> None:
    """Import TensorFlow in this grader process with its file descriptor 2 sent to /dev/null:
    since TensorFlow 2.21 its C++ start-up lines (absl, oneDNN) ignore TF_CPP_MIN_LOG_LEVEL,
    and the grader's own output is for the instructor. An import error still raises."""
    if "tensorflow" in sys.modules:
        return
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def commands_on_path() -> None:
    """Put this Python environment's commands first on PATH, for this process.

    nbgrader runs some of its tools by name (its gradebook calls ``alembic``): without this,
    ``.venv/bin/python -m grader ...`` fails unless the environment is activated.
    """
    scripts = sysconfig.get_path("scripts")
    if scripts and scripts not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join(filter(None, [scripts, os.environ.get("PATH")]))


def course_config(root: Path, master: Master | None = None, db_path: Path | None = None) -> Config:
    """nbgrader settings with course root ``root`` (holding source/, submitted/, ...); with
    ``master``, its feedback names the lab's parts and hides its hidden tests' lines."""
    commands_on_path()  # every use of nbgrader starts here
    c = Config()
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.root = str(root)
    c.CourseDirectory.db_url = f"sqlite:///{db_path or Path(root) / 'gradebook.db'}"
    # A lab's spec beside its master is the grader's: never released to students.
    c.CourseDirectory.ignore = [*CourseDirectory().ignore, SPEC_FILE]
    c.Execute.timeout = CELL_TIMEOUT
    c.Execute.startup_timeout = 120
    # After a cell that printed without end is stopped, its queued output takes a while to
    # drain: wait for it, then go on rather than fail the whole notebook.
    c.Execute.iopub_timeout = 30
    c.Execute.raise_on_iopub_timeout = False
    c.Execute.extra_arguments = [
        "--HistoryManager.hist_file=:memory:",
        "--IPKernelApp.log_level=ERROR",
        "--InteractiveShell.xmode=Plain",  # plain tracebacks: half the time of colored ones
    ]
    # Everything a notebook hands in has been taken after its test cell: the kernel can be
    # stopped at once (a graceful exit of a kernel with TensorFlow loaded takes 1-2 s).
    c.Execute.shutdown_kernel = "immediate"
    c.IgnorePattern.enabled = True
    c.IgnorePattern.pattern = STDERR_NOISE
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    # Feedback shows scores and messages; hidden test code is cut from sources and outputs.
    c.GenerateFeedback.preprocessors = [
        GetGrades,
        ClearHiddenTestsInTestCells,
        HideTestCode,
        NameParts,
        CSSHTMLHeaderPreprocessor,
    ]
    if master is not None:
        c.HideTestCode.hidden_lines = list(master.hidden_lines)
        c.NameParts.titles = {
            t.grade_id: master.part_titles.get(t.part, t.part) for t in master.tests
        }
    # nbgrader's feedback page, with a summary naming each part (grader/templates/).
    c.HTMLExporter.template_name = "lab_feedback"
    c.HTMLExporter.template_file = "summary.html.j2"
    c.HTMLExporter.extra_template_basedirs = [str(TEMPLATES), str(NBGRADER_TEMPLATES)]
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
    """Settings for this repository: master in grader/source, output to labs/, solutions/.

    nbgrader's own autograde (``nbgrader autograde``, the formgrader's button) is refused
    with a message pointing to ``python -m grader grade``, which grades this lab.
    """
    c = course_config(REPO, db_path=db_path)
    # The grader writes each autograded notebook beside the gradebook (grader/gradebook.py).
    c.CourseDirectory.autograded_directory = str(Path(db_path).parent / "autograded")
    c.CourseDirectory.source_directory = "grader/source"
    c.CourseDirectory.release_directory = "labs"
    c.CourseDirectory.solution_directory = "solutions"
    c.Autograde.sanitize_preprocessors = [
        RefuseNbgraderAutograde,
        ClearOutput,
        DeduplicateIds,
        OverwriteKernelspec,
        OverwriteCells,
        CheckCellMetadata,
    ]
    return c
