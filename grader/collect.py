"""Collect submissions: a folder of notebooks, nbgrader's layout, or an LMS's ZIP.

Every file becomes a :class:`Submission` of the lab its cells belong to (``lab``); one that
cannot be graded (not a notebook, empty, of no known lab, an unusable student id) carries the
reason in ``problem`` and scores 0 without a kernel being started.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .master import find_labs, lab_of

STUDENT_ID = re.compile(r"^[A-Za-z0-9_.@-]+$")


GIVE = (
    "give a folder of <student_id>.ipynb notebooks, nbgrader's submitted/ folder "
    "(submitted/<student_id>/<lab>/*.ipynb), or an LMS's ZIP of notebooks"
)


class CollectError(Exception):
    """The submissions cannot be collected at all; the message says why and what to give."""


@dataclass
class Identity:
    """Who a submission is in the LMS, as the LMS's ZIP (or ``--lms`` and the roster) says."""

    lms: str = ""  # "canvas", "moodle", "blackboard", "gradescope"; "" when unknown
    lms_id: str = ""  # its id there: Canvas user, Moodle participant, Blackboard username...
    name: str = ""  # the name the LMS gave (Canvas: doejane; Moodle, Blackboard: Jane Doe)
    late: bool = False  # the LMS marked it late (Canvas: _LATE_ in the file name)
    submitted: str = ""  # when it was submitted, ISO 8601, as the ZIP gives it ("" unknown)


@dataclass
class Submission:
    student_id: str
    path: Path
    problem: str = ""  # why it cannot be graded; empty when it can
    lab: str | None = None  # the lab it is a notebook of; None when none
    identity: Identity = field(default_factory=Identity)  # who it is in the LMS


def collect(
    submissions: Path,
    into: Path,
    roster=None,
    name_regexp: str | None = None,
    log=print,
    labs: dict[str, Path] | None = None,
    lab: str | None = None,
    lms: str | None = None,
) -> list[Submission]:
    """The submissions in ``submissions`` (a folder or a ZIP, extracted into ``into``),
    with student ids mapped through ``roster`` (a :class:`grader.lms.Roster`), each told
    its lab among ``labs`` (default: grader/source/'s) by its cells, or ``lab`` for all,
    and its LMS (``lms``, else the ZIP's naming)."""
    labs = labs or find_labs()
    from . import lms as zips

    submissions = Path(submissions)
    if submissions.suffix.lower() == ".zip":
        if not submissions.is_file():
            raise CollectError(f"{submissions} is not a file: {GIVE}")
        found = zips.collect_zip(submissions, into, roster, name_regexp, log, labs, lms)
    else:
        found = find_submissions(submissions, {lab: labs[lab]} if lab else labs)
        for sub in found:
            sub.student_id = roster and roster.resolve(sub.student_id) or sub.student_id
            sub.identity.lms = lms or ""
    if not found:
        raise CollectError(f"no submissions found in {submissions}: {GIVE}")
    for sub in found:
        if not sub.problem:
            sub.problem, its_lab = check_notebook(sub, labs)
            sub.lab = sub.lab or its_lab
        if lab is not None:  # said on the command line: every notebook is graded as it
            sub.problem = sub.problem or check_lab(sub, lab)
            sub.lab = lab
        elif not sub.problem and sub.lab is None:
            sub.problem = f"this notebook is of no lab ({', '.join(labs)}): none of its cells is"
    return found


def find_submissions(folder: Path, labs: dict[str, Path]) -> list[Submission]:
    """Student notebooks in ``folder``: ``<id>.ipynb`` files (any other file there gets 0 and
    the reason), or, in nbgrader's course folder, ``submitted/<id>/<lab>/`` for each lab of
    ``labs`` only (a student may have one of each)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CollectError(f"{folder} is not a folder: {GIVE}")
    found: dict[tuple[str, str], Submission] = {}
    nested = folder / "submitted" if (folder / "submitted").is_dir() else folder
    for student_dir in sorted(p for p in nested.iterdir() if p.is_dir()):
        for lab in labs:
            notebooks = sorted((student_dir / lab).glob("*.ipynb"))
            if notebooks:  # the folder says which lab it is
                found[student_dir.name, lab] = Submission(student_dir.name, notebooks[0], lab=lab)
            elif (student_dir / lab).is_dir():
                found[student_dir.name, lab] = Submission(
                    student_dir.name,
                    student_dir / lab,
                    "no .ipynb file in the submission folder",
                    lab,
                )
    # In nbgrader's course folder only submitted/<id>/<lab>/ counts: the files beside
    # submitted/ (gradebook.db, nbgrader_config.py) are the course's, not students'.
    loose = [] if nested != folder else sorted(folder.iterdir())
    for path in loose:
        if path.is_file() and not path.name.startswith("."):
            found[path.stem, ""] = Submission(path.stem, path)  # essay.docx -> student "essay"
    return sorted(found.values(), key=lambda s: s.student_id)


def check_notebook(sub: Submission, labs: dict[str, Path]) -> tuple[str, str | None]:
    """Why ``sub`` cannot be graded as a notebook ("" when it can), and the lab of ``labs``
    it is of (None: none)."""
    if not STUDENT_ID.match(sub.student_id):
        return "the file name is not a usable student id (letters, digits, . _ - @ only)", None
    if sub.path.suffix != ".ipynb":
        return f"{sub.path.name} is not a notebook (.ipynb)", None
    try:
        text = sub.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return f"the file cannot be read as text ({error})", None
    if not text.strip():
        return "the notebook file is empty", None
    try:
        nb = nbformat.reads(text, as_version=4)
    except (
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        nbformat.ValidationError,
    ) as error:  # not JSON, or not a notebook (e.g. "{}")
        why = f"the file is not a valid notebook (not JSON in notebook format: {str(error)[:120]})"
        return why, None
    return "", lab_of(nb, labs)


def check_lab(sub: Submission, lab: str) -> str:
    """Why ``sub`` cannot be graded as ``lab`` ("" when it is of that lab)."""
    if sub.lab == lab:
        return ""
    if sub.lab is None:
        return f"this notebook is not the {lab} lab (none of its cells belongs to it)"
    return f"this notebook is the {sub.lab} lab, not {lab}"
