"""Grades from and for a learning management system (Canvas, Moodle, Blackboard Learn).

* SUBMISSIONS may be the ZIP of notebooks the LMS exports. Each member is given to a student
  by the first rule that fits its path inside the ZIP:

  1. ``--name-regexp``: a regular expression in the style of nbgrader's ``zip_collect``
     (``FileNameCollectorPlugin.named_regexp``), matched against the member's path, with a
     ``(?P<student_id>...)`` group (other groups, e.g. ``file_id``, are ignored);
  2. the LMS's own naming, in the file name or in the name of the folder holding it
     (:data:`LMS_NAMING`): Canvas ``doejane_12345_67890_lab.ipynb`` (``doejane_LATE_...``
     when late; 12345 is the Canvas user id), Moodle ``Jane Doe_12345_assignsubmission_file_
     lab.ipynb`` or its folder ``Jane Doe_12345_assignsubmission_file_/lab.ipynb`` (12345:
     the participant number), Blackboard ``Lab 1_jdoe_attempt_2026-10-01-13-45-12_lab.ipynb``
     (jdoe: the username; the ``.txt`` beside it gives the name), Gradescope's export
     ``submission_123/lab.ipynb`` (its ``submission_metadata.yml`` gives the student's school
     id, email and name);
  3. nbgrader's layout ``.../<student_id>/<lab>/<notebook>``;
  4. plain ``<student_id>.ipynb`` (any extension).

  With a roster, the name or the LMS's id (or the whole name of rule 4) may be a roster
  ``student_id`` or ``lms_id``; without one, the name is the id when it is usable, else the
  LMS's id. Two students of one name (two Canvas ``smithjohn``) are told apart by their LMS
  ids. A student with several files is graded on one notebook: the newest in the ZIP. Members
  with ``..``, absolute paths or links are refused (the whole ZIP); a member larger than
  ``MAX_MEMBER_MB`` scores 0 with a note.
* Each submission keeps who it is in the LMS (:class:`Identity`): the LMS, its id there, the
  name it gave, whether it marked the file late, when it was submitted. The LMS is the one
  whose naming the ZIP's files follow, or ``--lms``; the reports write the file it imports
  (grader/lms_files.py).
* ``--roster ROSTER.csv``: column ``student_id`` (required), ``lms_id`` (optional: the name or
  number the LMS writes into file names: Canvas user id, Moodle participant number, Blackboard
  username), and optional ``name``, ``email``, ``section``, ``sis_user_id``, ``sis_login_id``
  for the LMS's file; other columns are ignored. Every roster student gets a row in
  ``grades.csv`` (0 and "no submission" when nothing came in); a submission from an id not in
  the roster is graded and its note says so.
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

from .collect import STUDENT_ID, CollectError, Identity, Submission
from .lms_files import LMS_FILES
from .master import find_labs

MAX_MEMBER_MB = 50  # one notebook with its outputs; larger members are not extracted
MAX_TOTAL_MB = 2000  # the whole extracted ZIP
# How each LMS names a submitted file (or the folder holding it) in the ZIP it exports.
LMS_NAMING = {
    "canvas": re.compile(r"^(?P<name>[^_]+?)(?P<late>_LATE)?_(?P<lms_id>\d+)_\d+_(?P<file>.+)$"),
    "moodle": re.compile(r"^(?P<name>.+?)_(?P<lms_id>\d+)_assignsubmission_[a-z]+_(?P<file>.*)$"),
    "blackboard": re.compile(
        r"^.+_(?P<lms_id>[^_]+)_attempt_(?P<time>\d{4}(?:-\d\d){5})(?:_(?P<file>.+)|\.txt)?$"
    ),
    # Gradescope's "Export Submissions": a folder per submission, submission_metadata.yml.
    "gradescope": re.compile(r"^submission_(?P<lms_id>\d+)$"),
}
GRADESCOPE_METADATA = "submission_metadata.yml"
# Names close to an LMS's, with an id where the name is not usable (Canvas-like, one number).
OTHER_NAMING = re.compile(r"^(?P<name>.+?)(?:_LATE)?_(?P<lms_id>\d+)_(?P<file>.*)$")
BLACKBOARD_NAME = re.compile(r"^Name:\s*(?P<name>.*?)\s*\((?P<lms_id>[^()]+)\)\s*$", re.MULTILINE)


class LmsError(CollectError):
    """A ZIP or roster that cannot be used; the message says why."""


@dataclass
class Roster:
    """Roster students in file order, LMS ids (names or numbers) that map to them, and each
    student's other columns (``name``, ``email``, ``section``, ``sis_user_id``...)."""

    students: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    people: dict[str, dict[str, str]] = field(default_factory=dict)

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
        roster.people[student] = row
        if alias in roster.aliases:
            raise LmsError(
                f"roster line {number}: lms_id {alias} is also {roster.aliases[alias]}'s: one "
                "LMS id per student (their grades would reach the LMS under one name)"
            )
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
    identity = identity_of(member)
    if identity.lms_id:
        return _pick(roster, identity.name, identity.lms_id)
    if len(path.parts) >= 3 and path.parent.name in labs:
        return _pick(roster, path.parent.parent.name)
    return _pick(roster, path.stem)


def identity_of(member: str) -> Identity:
    """Who the LMS's naming of ``member`` (its file name, else its folder's) says it is."""
    path = PurePosixPath(member)
    for lms, naming in [*LMS_NAMING.items(), ("", OTHER_NAMING)]:
        for name in (path.name, path.parent.name):
            match = naming.match(name)
            if match:
                found = match.groupdict()
                time = found.get("time") or ""
                return Identity(
                    lms,
                    found["lms_id"],
                    found.get("name") or "",
                    "_LATE_" in name,
                    f"{time[:10]}T{time[11:].replace('-', ':')}" if time else "",
                )
    return Identity()


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
    lms: str | None = None,
) -> list[Submission]:
    """Extract ``archive`` into ``into`` (emptied first) and return one submission per
    student, each with its :class:`Identity` (its LMS: ``lms``, else the ZIP's naming)."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = zipped.infolist()
            for info in members:
                _check_member(info)
            members = [info for info in members if not _ignored(info.filename)]
            if sum(info.file_size for info in members) > MAX_TOTAL_MB * 2**20:
                raise LmsError(f"refusing the ZIP: it holds more than {MAX_TOTAL_MB} MB")
            names = _blackboard_names(zipped, members)
            submitters = _gradescope_submitters(zipped, members)
            members = [
                info
                for info in members
                if not _blackboard_details(info.filename) and info.filename != GRADESCOPE_METADATA
            ]
            if not members:
                raise LmsError(f"the ZIP {archive} holds no submissions")
            found = {info.filename: identity_of(info.filename) for info in members}
            kinds = sorted({identity.lms for identity in found.values()} - {""})
            if lms is None and len(kinds) > 1:
                log(
                    f"the ZIP's file names follow {' and '.join(kinds)}: no LMS file is "
                    f"written; say which LMS the grades go to with --lms ({', '.join(LMS_FILES)})"
                )
            for info in members:
                identity = found[info.filename]
                identity.lms = lms or (identity.lms if len(kinds) == 1 else "")
                identity.name = identity.name or names.get(identity.lms_id, "")
                identity.submitted = identity.submitted or _iso(info.date_time)
            by_student: dict[str, list[zipfile.ZipInfo]] = {}
            for info in members:
                student = student_of(info.filename, roster, name_regexp, labs)
                submitter = submitters.get(found[info.filename].lms_id)
                if submitter and not name_regexp:  # Gradescope: the school id, else the email
                    found[info.filename].name = str(submitter.get(":name") or "")
                    found[info.filename].submitted = submitter[":created_at"]
                    student = _pick(roster, *[str(submitter.get(k) or "") for k in KEYS], student)
                by_student.setdefault(student, []).append(info)
            by_student = _told_apart(by_student, found, roster)
            if into.exists():
                shutil.rmtree(into)
            submissions = [
                _extract(zipped, student, files, into, log, found)
                for student, files in sorted(by_student.items())
            ]
    except (zipfile.BadZipFile, OSError) as error:
        raise LmsError(f"cannot read the ZIP {archive}: {error}") from error
    return submissions


def _blackboard_details(member: str) -> bool:
    """Blackboard's ``<assignment>_<username>_attempt_<time>.txt``: details, not work."""
    match = LMS_NAMING["blackboard"].match(PurePosixPath(member).name)
    return bool(match) and member.endswith(".txt") and not match["file"]


def _blackboard_names(zipped: zipfile.ZipFile, members: list[zipfile.ZipInfo]) -> dict[str, str]:
    """Blackboard username -> name, from the ``Name: Jane Doe (jdoe)`` line of its details."""
    names = {}
    for info in members:
        if _blackboard_details(info.filename) and info.file_size < 2**20:
            text = zipped.read(info).decode("utf-8", errors="replace")
            match = BLACKBOARD_NAME.search(text)
            if match:
                names[match["lms_id"]] = match["name"]
    return names


KEYS = (":sid", ":email")  # how Gradescope's metadata names a submitter


def _gradescope_submitters(zipped: zipfile.ZipFile, members: list[zipfile.ZipInfo]) -> dict:
    """Gradescope submission id -> its first submitter (``:name``, ``:sid``, ``:email``),
    from the export's ``submission_metadata.yml`` (empty when there is none)."""
    info = next((i for i in members if i.filename == GRADESCOPE_METADATA), None)
    if info is None or info.file_size > 50 * 2**20:
        return {}
    import yaml

    try:
        metadata = yaml.safe_load(zipped.read(info)) or {}
    except yaml.YAMLError as error:
        raise LmsError(f"the ZIP's {GRADESCOPE_METADATA} cannot be read: {error}") from error
    found = {}
    for folder, details in metadata.items() if isinstance(metadata, dict) else []:
        match = LMS_NAMING["gradescope"].match(str(folder))
        people = (details or {}).get(":submitters") if isinstance(details, dict) else None
        if match and people and isinstance(people[0], dict):
            created = details.get(":created_at")
            when = created.isoformat() if hasattr(created, "isoformat") else str(created or "")
            found[match["lms_id"]] = {**people[0], ":created_at": when}
    return found


def _told_apart(
    by_student: dict[str, list[zipfile.ZipInfo]],
    found: dict[str, Identity],
    roster: Roster | None,
) -> dict[str, list[zipfile.ZipInfo]]:
    """Students the LMS tells apart by id but who share a name (two Canvas ``smithjohn``)
    become ``<name>_<lms id>``; roster students are left as the roster names them."""
    apart: dict[str, list[zipfile.ZipInfo]] = {}
    for student, files in by_student.items():
        ids = {found[info.filename].lms_id for info in files} - {""}
        if len(ids) < 2 or (roster and student in roster.students):
            apart.setdefault(student, []).extend(files)
            continue
        for info in files:
            lms_id = found[info.filename].lms_id
            apart.setdefault(f"{student}_{lms_id}" if lms_id else student, []).append(info)
    return apart


def _iso(date_time: tuple[int, ...]) -> str:
    """A ZIP member's time (the LMS's local time), ISO 8601."""
    return "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}".format(*date_time)


def _extract(
    zipped: zipfile.ZipFile,
    student: str,
    files: list[zipfile.ZipInfo],
    into: Path,
    log,
    found: dict[str, Identity],
) -> Submission:
    # Notebooks first, then the newest; the rest are listed, not graded.
    files = sorted(
        files, key=lambda i: (not i.filename.endswith(".ipynb"), _negated(i.date_time), i.filename)
    )
    chosen = files[0]
    identity = found[chosen.filename]
    if len(files) > 1:
        log(f"{student}: {len(files)} files in the ZIP, grading {chosen.filename}")
    name = PurePosixPath(chosen.filename).name
    if not _usable(student):
        return Submission(
            student,
            Path(name),
            f"{student!r} from {chosen.filename} is not a "
            "usable student id (letters, digits, . _ - @ only)",
            identity=identity,
        )
    if chosen.file_size > MAX_MEMBER_MB * 2**20:
        size = chosen.file_size / 2**20
        return Submission(
            student,
            Path(name),
            f"{name} is too large ({size:.0f} MB, limit {MAX_MEMBER_MB} MB)",
            identity=identity,
        )
    target = into / student / name
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipped.open(chosen) as source, open(target, "wb") as sink:
        shutil.copyfileobj(source, sink)
    return Submission(student, target, identity=identity)


def _negated(date_time: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(-value for value in date_time)
