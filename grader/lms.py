"""Grades from and for a learning management system (Moodle, Canvas, ...).

* SUBMISSIONS may be the ZIP of notebooks the LMS exports. Each member is given to a student
  by the first rule that fits its path inside the ZIP:

  1. ``--name-regexp``: a regular expression in the style of nbgrader's ``zip_collect``
     (``FileNameCollectorPlugin.named_regexp``), matched against the member's path, with a
     ``(?P<student_id>...)`` group (other groups, e.g. ``file_id``, are ignored);
  2. LMS style ``<student>_<number>_<original name>``, in the file name or in the name of the
     folder holding it: Canvas ``doejane_12345_67890_lab.ipynb`` (also ``doejane_LATE_...``),
     Moodle ``Jane Doe_12345_assignsubmission_file_lab.ipynb`` and its one-folder-per-student
     download ``Jane Doe_12345_assignsubmission_file_/lab.ipynb``;
  3. nbgrader's layout ``.../<student_id>/<lab>/<notebook>``;
  4. plain ``<student_id>.ipynb`` (any extension).

  With a roster, ``<student>`` or ``<number>`` (or the whole name of rule 4) may be a roster
  ``student_id`` or ``lms_id``; without one, ``<student>`` is the id when it is usable, else
  ``<number>``. A student with several files is graded on one notebook: the newest in the ZIP.
  Members with ``..``, absolute paths or links are refused (the whole ZIP); a member larger
  than ``MAX_MEMBER_MB`` scores 0 with a note.
* ``--roster ROSTER.csv``: column ``student_id`` (required), ``lms_id`` (optional: the name or
  number the LMS writes into file names), any other columns (``name``, ``email``...) ignored.
  Every roster student gets a row in ``grades.csv`` (0 and "no submission" when nothing came
  in); a submission from an id not in the roster is graded and its note says so.
* ``OUT/lms_grades.csv`` (grader/report.py) is always written, with exactly
  ``student_id,total,max``, for import.
"""

from __future__ import annotations

import csv
import re
import shutil
import stat
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .collect import STUDENT_ID, CollectError, Submission
from .master import find_labs

MAX_MEMBER_MB = 50  # one notebook with its outputs; larger members are not extracted
MAX_TOTAL_MB = 2000  # the whole extracted ZIP
LMS_NAME = re.compile(r"^(?P<student_id>.+?)(?:_LATE)?_(?P<number>\d+)_(?P<file_id>.*)$")


class LmsError(CollectError):
    """A ZIP or roster that cannot be used; the message says why."""


@dataclass
class Roster:
    """Roster students in file order, and LMS ids (names or numbers) that map to them."""

    students: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)

    def resolve(self, *candidates: str) -> str | None:
        """The roster id that one of ``candidates`` names, or None."""
        for candidate in candidates:
            if candidate in self.students:
                return candidate
            if candidate in self.aliases:
                return self.aliases[candidate]
        return None


def read_roster(path: Path) -> Roster:
    """Read a roster CSV (``student_id`` column, optional ``lms_id``)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise LmsError(f"cannot read the roster {path}: {error}") from error
    roster = Roster()
    for number, row in enumerate(rows, 2):  # line 1 is the header
        row = {(key or "").strip().lower(): (value or "").strip() for key, value in row.items()}
        if "student_id" not in row:
            raise LmsError(f"the roster {path} has no student_id column")
        student, alias = row["student_id"], row.get("lms_id", "")
        if not STUDENT_ID.match(student):
            raise LmsError(
                f"roster line {number}: {student!r} is not a usable student id "
                "(letters, digits, . _ - @ only)"
            )
        if student in roster.students:
            raise LmsError(f"roster line {number}: {student} appears twice")
        roster.students.append(student)
        if alias:
            roster.aliases[alias] = student
    if not roster.students:
        raise LmsError(f"the roster {path} lists no students")
    return roster


def student_of(
    member: str,
    roster: Roster | None = None,
    name_regexp: str | None = None,
    labs: Iterable[str] | None = None,
) -> str:
    """The student id for ZIP member ``member`` (a relative POSIX path); ``labs``: the
    assignment folders of nbgrader's layout (default: grader/source's labs)."""
    labs = find_labs() if labs is None else labs
    path = PurePosixPath(member)
    if name_regexp:
        match = re.match(name_regexp, member)
        if match and match.groupdict().get("student_id"):
            return _pick(roster, match["student_id"])
    for name in (path.name, path.parent.name):
        match = LMS_NAME.match(name)
        if match:
            return _pick(roster, match["student_id"], match["number"])
    if len(path.parts) >= 3 and path.parent.name in labs:
        return _pick(roster, path.parent.parent.name)
    return _pick(roster, path.stem)


def _pick(roster: Roster | None, *candidates: str) -> str:
    if roster:
        known = roster.resolve(*candidates)
        if known:
            return known
    usable = [c for c in candidates if _usable(c)]
    return usable[0] if usable else candidates[0]


def _usable(student: str) -> bool:
    return bool(STUDENT_ID.match(student)) and student.strip(".") != ""


def _check_member(info: zipfile.ZipInfo) -> None:
    name = info.filename
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
        raise LmsError(f"refusing the ZIP: member {name!r} points outside the folder")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise LmsError(f"refusing the ZIP: member {name!r} is a symbolic link")


def _ignored(name: str) -> bool:
    """Folders and the clutter archivers add (``__MACOSX/``, ``.DS_Store``)."""
    parts = PurePosixPath(name).parts
    return name.endswith("/") or any(p.startswith((".", "__MACOSX")) for p in parts)


def collect_zip(
    archive: Path,
    into: Path,
    roster: Roster | None = None,
    name_regexp: str | None = None,
    log=print,
    labs: Iterable[str] | None = None,
) -> list[Submission]:
    """Extract ``archive`` into ``into`` (emptied first) and return one submission per student."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = zipped.infolist()
            for info in members:
                _check_member(info)
            members = [info for info in members if not _ignored(info.filename)]
            if sum(info.file_size for info in members) > MAX_TOTAL_MB * 2**20:
                raise LmsError(f"refusing the ZIP: it holds more than {MAX_TOTAL_MB} MB")
            if not members:
                raise LmsError(f"the ZIP {archive} holds no submissions")
            by_student: dict[str, list[zipfile.ZipInfo]] = {}
            for info in members:
                student = student_of(info.filename, roster, name_regexp, labs)
                by_student.setdefault(student, []).append(info)
            if into.exists():
                shutil.rmtree(into)
            submissions = [
                _extract(zipped, student, files, into, log)
                for student, files in sorted(by_student.items())
            ]
    except (zipfile.BadZipFile, OSError) as error:
        raise LmsError(f"cannot read the ZIP {archive}: {error}") from error
    return submissions


def _extract(
    zipped: zipfile.ZipFile, student: str, files: list[zipfile.ZipInfo], into: Path, log
) -> Submission:
    # Notebooks first, then the newest; the rest are listed, not graded.
    files = sorted(
        files, key=lambda i: (not i.filename.endswith(".ipynb"), _negated(i.date_time), i.filename)
    )
    chosen = files[0]
    if len(files) > 1:
        log(f"{student}: {len(files)} files in the ZIP, grading {chosen.filename}")
    name = PurePosixPath(chosen.filename).name
    if not _usable(student):
        return Submission(
            student,
            Path(name),
            f"{student!r} from {chosen.filename} is not a "
            "usable student id (letters, digits, . _ - @ only)",
        )
    if chosen.file_size > MAX_MEMBER_MB * 2**20:
        size = chosen.file_size / 2**20
        return Submission(
            student, Path(name), f"{name} is too large ({size:.0f} MB, limit {MAX_MEMBER_MB} MB)"
        )
    target = into / student / name
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipped.open(chosen) as source, open(target, "wb") as sink:
        shutil.copyfileobj(source, sink)
    return Submission(student, target)


def _negated(date_time: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(-value for value in date_time)
