"""The reports of a graded class, derived from the records: grades.csv, lms_grades.csv and the
file the class's LMS imports.

* ``grades.csv``, for the instructor: ``student_id``, ``name`` and ``lms_id`` (who the student
  is in the LMS), one column per part, ``total``, ``max``, ``late`` ("yes" when the LMS marked
  the file late), ``submitted`` (when, as the LMS's ZIP gives it), ``note``; one row per record
  and, with a roster, one per roster student (0, "no submission" when nothing came in; ids not
  in the roster are flagged). A student whose grading failed on the grader's side has empty
  scores and a note that says what to fix.
* ``lms_grades.csv``: exactly ``student_id,total,max``, for an LMS's generic import.
* ``canvas_grades.csv``, ``moodle_grades.csv`` or ``blackboard_grades.csv`` when the
  submissions came from that LMS (or ``--lms``): see grader/lms_files.py.

Students without a valid grade (the grader's problem) are left out of the files to import,
so nothing wrong is imported; a late penalty stays the LMS's to apply.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .lms import Roster
from .lms_files import LMS_FILES, lms_table
from .master import Master
from .records import GRADER_PROBLEM, Record

NOT_IN_ROSTER = "not in the roster"
NO_SUBMISSION = "no submission"
LATE = "submitted late (as the LMS marked it)"
ROSTER_COLUMNS = ("email", "section", "sis_user_id", "sis_login_id")


def write_reports(
    out: Path,
    records: dict[str, Record],
    master: Master,
    roster: Roster | None = None,
    assignment: str | None = None,
) -> Path:
    """Rewrite ``out``'s reports (``assignment``: the assignment's column in the LMS, default
    the lab's title); return grades.csv's path."""
    parts, maximum = list(master.parts), f"{master.max_score:g}"
    people = roster.people if roster else {}
    rows = {}
    for student, record in records.items():
        identity = record.identity
        notes = [record.note]
        if identity.get("late"):
            notes.insert(0, LATE)
        if roster and student not in roster.students:
            notes.insert(0, NOT_IN_ROSTER)
        if record.status == GRADER_PROBLEM:
            scores = {part: "" for part in [*parts, "total"]}
        else:
            scores = {part: f"{record.scores.get(part, 0.0):g}" for part in parts}
            scores["total"] = f"{record.total:g}"
        rows[student] = {
            **_who(student, people, identity),
            **scores,
            "max": maximum,
            "late": "yes" if identity.get("late") else "",
            "submitted": identity.get("submitted", ""),
            "note": "; ".join(filter(None, notes)),
        }
    for student in roster.students if roster else []:
        if student not in rows:
            zeros = {part: "0" for part in [*parts, "total"]}
            rows[student] = {
                **_who(student, people, {}),
                **zeros,
                "max": maximum,
                "late": "",
                "submitted": "",
                "note": NO_SUBMISSION,
            }
    header = ["student_id", "name", "lms_id", *parts, "total", "max", "late", "submitted", "note"]
    table = [{"student_id": student, **rows[student]} for student in sorted(rows)]
    grades = Path(out) / "grades.csv"
    _write_csv(grades, header, table)
    valid = [row for row in table if row["total"] != ""]
    _write_csv(grades.with_name("lms_grades.csv"), ["student_id", "total", "max"], valid)
    lms = _lms_of(records)
    if lms in LMS_FILES:  # Gradescope's grades come from its autograder (grader/gradescope.py)
        titles = {p: (master.part_titles.get(p, p).split(":")[0], master.parts[p]) for p in parts}
        column = assignment or master.title.lstrip("# ").strip()
        lms_header, lms_rows = lms_table(lms, table, column, maximum, titles)
        _write_csv(grades.with_name(LMS_FILES[lms]), lms_header, lms_rows)
    return grades


def _who(student: str, people: dict[str, dict[str, str]], identity: dict) -> dict[str, str]:
    """The name and LMS id of ``student`` (the roster's first, then the ZIP's), and the
    roster's other columns the LMS files use."""
    person = people.get(student, {})
    return {
        "name": person.get("name") or str(identity.get("name", "")),
        "lms_id": str(identity.get("lms_id", "")) or person.get("lms_id", ""),
        **{column: person.get(column, "") for column in ROSTER_COLUMNS},
    }


def _lms_of(records: dict[str, Record]) -> str:
    """The LMS the class's submissions came from ("" when none, or when they disagree)."""
    found = {str(record.identity.get("lms", "")) for record in records.values()} - {""}
    return found.pop() if len(found) == 1 else ""


def _write_csv(path: Path, header: list[str], rows: list[dict]) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", newline="") as handle:
        writer = csv.DictWriter(handle, header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    partial.replace(path)
