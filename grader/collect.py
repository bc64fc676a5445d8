"""Collect submissions: a folder of notebooks, nbgrader's layout, or an LMS's ZIP.

Every file becomes a :class:`Submission`; one that cannot be graded as this lab (not a
notebook, empty, another assignment, an unusable student id) carries the reason in
``problem`` and scores 0 without a kernel being started.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .master import ASSIGNMENT, load_master

STUDENT_ID = re.compile(r"^[A-Za-z0-9_.@-]+$")


GIVE = (
    "give a folder of <student_id>.ipynb notebooks, nbgrader's submitted/ folder "
    "(submitted/<student_id>/cats_vs_dogs/*.ipynb), or an LMS's ZIP of notebooks"
)


class CollectError(Exception):
    """The submissions cannot be collected at all; the message says why and what to give."""


@dataclass
class Submission:
    student_id: str
    path: Path
    problem: str = ""  # why it cannot be graded; empty when it can


def collect(
    submissions: Path,
    into: Path,
    roster=None,
    name_regexp: str | None = None,
    log=print,
) -> list[Submission]:
    """The submissions in ``submissions`` (a folder or a ZIP, extracted into ``into``),
    with student ids mapped through ``roster`` (a :class:`grader.lms.Roster`)."""
    from . import lms

    submissions = Path(submissions)
    if submissions.suffix.lower() == ".zip":
        if not submissions.is_file():
            raise CollectError(f"{submissions} is not a file: {GIVE}")
        found = lms.collect_zip(submissions, into, roster, name_regexp, log)
    else:
        found = find_submissions(submissions)
        for sub in found:
            sub.student_id = roster and roster.resolve(sub.student_id) or sub.student_id
    if not found:
        raise CollectError(f"no submissions found in {submissions}: {GIVE}")
    return found


def find_submissions(folder: Path) -> list[Submission]:
    """Student notebooks in ``folder``: ``<id>.ipynb`` files (any other file there gets 0 and
    the reason), or, in nbgrader's course folder, ``submitted/<id>/cats_vs_dogs/`` only."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CollectError(f"{folder} is not a folder: {GIVE}")
    found: dict[str, Submission] = {}
    nested = folder / "submitted" if (folder / "submitted").is_dir() else folder
    for student_dir in sorted(p for p in nested.iterdir() if p.is_dir()):
        notebooks = sorted((student_dir / ASSIGNMENT).glob("*.ipynb"))
        if notebooks:
            found[student_dir.name] = Submission(student_dir.name, notebooks[0])
        elif (student_dir / ASSIGNMENT).is_dir():
            found[student_dir.name] = Submission(
                student_dir.name,
                student_dir / ASSIGNMENT,
                "no .ipynb file in the submission folder",
            )
    # In nbgrader's course folder only submitted/<id>/cats_vs_dogs/ counts: the files beside
    # submitted/ (gradebook.db, nbgrader_config.py) are the course's, not students'.
    loose = [] if nested != folder else sorted(folder.iterdir())
    for path in loose:
        if path.is_file() and not path.name.startswith("."):
            found[path.stem] = Submission(path.stem, path)  # essay.docx -> student "essay"
    for sub in found.values():
        if not sub.problem:
            sub.problem = check_notebook(sub)
    return sorted(found.values(), key=lambda s: s.student_id)


def check_notebook(sub: Submission) -> str:
    """Why ``sub`` cannot be graded as this assignment, or "" when it can."""
    if not STUDENT_ID.match(sub.student_id):
        return "the file name is not a usable student id (letters, digits, . _ - @ only)"
    if sub.path.suffix != ".ipynb":
        return f"{sub.path.name} is not a notebook (.ipynb)"
    try:
        text = sub.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return f"the file cannot be read as text ({error})"
    if not text.strip():
        return "the notebook file is empty"
    try:
        nb = nbformat.reads(text, as_version=4)
    except (
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        nbformat.ValidationError,
    ) as error:  # not JSON, or not a notebook (e.g. "{}")
        return f"the file is not a valid notebook (not JSON in notebook format: {str(error)[:120]})"
    master = load_master()
    theirs = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.cells}
    if not set(master.grade_ids) & theirs and not any(master.title in c.source for c in nb.cells):
        return f"this notebook is not the {ASSIGNMENT} lab (none of its cells belongs to it)"
    return ""
