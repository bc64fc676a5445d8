"""nbgrader's gradebook of the course, kept up to date from the records, as grades.csv is.

After each student is graded, their per-cell scores (as the clean kernel lowered them) go
into the lab's assignment in the gradebook, and their autograded notebook beside it
(``autograded/<student>/<lab>/``, nbgrader's layout), so that the formgrader of ``make lab``
shows them, comments and manual scores can be added there, and ``nbgrader export`` gives the
totals of grades.csv. A student whose file could not be graded has no submission there (0 in
the export, as in grades.csv); a grader's problem is left out until it is graded.

The gradebook of the course's labs is ``$COURSE_GRADEBOOK``, else ``grader/gradebook.db``
(nbgrader_config.py reads the same); that of another nbgrader course's assignment (``--source``,
or SUBMISSIONS being its course folder) is that course's own ``gradebook.db``. A gradebook that
cannot be written costs nothing already graded: the run says so once, and OUT holds every
grade.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .config import COURSE_ID, REPO, commands_on_path, course_config
from .master import SOURCE, Master
from .records import GRADER_PROBLEM, Record


def gradebook_path(master: Master) -> Path:
    """The gradebook of ``master``'s lab (see above)."""
    if master.path.parent.parent.resolve() != SOURCE.resolve():  # <course>/source/<lab>/
        return master.path.parent.parent.parent / "gradebook.db"
    return Path(os.environ.get("COURSE_GRADEBOOK") or REPO / "grader" / "gradebook.db")


def autograded_path(gradebook: Path, student_id: str, master: Master) -> Path:
    """Where the formgrader finds ``student_id``'s autograded notebook."""
    return gradebook.parent / "autograded" / student_id / master.lab / master.path.name


def update_gradebook(out: Path, records: Iterable[Record], master: Master) -> str:
    """Write ``records`` (of ``master``'s lab, graded into ``out``) into the gradebook;
    return "" or why it could not be written."""
    from nbgrader.api import Gradebook, MissingEntry

    commands_on_path()  # nbgrader creates a gradebook with its `alembic` script

    gradebook = gradebook_path(master)
    try:
        gradebook.parent.mkdir(parents=True, exist_ok=True)
        with Gradebook(f"sqlite:///{gradebook}", COURSE_ID) as gb:
            try:
                known = {c.name for c in gb.find_notebook(master.path.stem, master.lab).grade_cells}
            except MissingEntry:
                known = set()
        if not {test.grade_id for test in master.tests} <= known:  # nbgrader's grade cells
            _add_assignment(gradebook, master)
        with Gradebook(f"sqlite:///{gradebook}", COURSE_ID) as gb:
            for record in records:
                if record.status != GRADER_PROBLEM:
                    _write(gb, gradebook, Path(out), record, master)
    except Exception as error:  # noqa: BLE001 - a database, a disk: said, never fatal
        return f"{type(error).__name__}: {str(error)[:200]}"
    return ""


def _add_assignment(gradebook: Path, master: Master) -> None:
    """The lab's assignment, notebooks and cells, as nbgrader's generate_assignment writes
    them into a gradebook (the release it writes is thrown away)."""
    from nbgrader.apps import NbGraderAPI

    with tempfile.TemporaryDirectory() as scratch:
        config = course_config(Path(scratch), master, db_path=gradebook)
        config.CourseDirectory.source_directory = str(master.path.parent.parent)
        config.CourseDirectory.release_directory = str(Path(scratch) / "release")
        result = NbGraderAPI(config=config).generate_assignment(master.lab)
        if not result["success"]:
            raise RuntimeError(f"nbgrader generate_assignment failed: {result.get('error')}")


def _write(gb, gradebook: Path, out: Path, record: Record, master: Master) -> None:
    """One student's submission: their scores per test cell and autograded notebook, or
    none when their file could not be graded."""
    from nbgrader.api import MissingEntry

    student, lab = record.student_id, master.lab
    gb.update_or_create_student(student)
    notebook = out / "autograded" / f"{student}.ipynb"
    if not record.cell_scores or not notebook.exists():
        try:
            gb.remove_submission(lab, student)
        except MissingEntry:
            pass
        shutil.rmtree(autograded_path(gradebook, student, master).parent, ignore_errors=True)
        return
    gb.update_or_create_submission(lab, student)
    for grade_id, score in record.cell_scores.items():
        grade = gb.find_grade(grade_id, master.path.stem, lab, student)
        grade.auto_score = score
        grade.needs_manual_grade = False
    gb.db.commit()
    target = autograded_path(gradebook, student, master)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(notebook, target)
