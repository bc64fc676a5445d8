"""The reports of a graded class, derived from the records: grades.csv and lms_grades.csv.

* ``grades.csv``: ``student_id``, one column per part, ``total``, ``max``, ``note``; one row
  per record and, with a roster, one per roster student (0, "no submission" when nothing
  came in; ids not in the roster are flagged). A student whose grading failed on the
  grader's side has empty scores and a note that says what to fix.
* ``lms_grades.csv``: exactly ``student_id,total,max``, for import into the LMS; students
  without a valid grade (the grader's problem) are left out, so nothing wrong is imported.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .lms import Roster
from .master import Master
from .records import GRADER_PROBLEM, Record

NOT_IN_ROSTER = "not in the roster"
NO_SUBMISSION = "no submission"


def write_reports(
    out: Path, records: dict[str, Record], master: Master, roster: Roster | None = None
) -> Path:
    """Rewrite ``out/grades.csv`` and ``out/lms_grades.csv``; return grades.csv's path."""
    parts, maximum = list(master.parts), f"{master.max_score:g}"
    rows = {}
    for student, record in records.items():
        notes = [record.note]
        if roster and student not in roster.students:
            notes.insert(0, NOT_IN_ROSTER)
        if record.status == GRADER_PROBLEM:
            scores = {part: "" for part in [*parts, "total"]}
        else:
            scores = {part: f"{record.scores.get(part, 0.0):g}" for part in parts}
            scores["total"] = f"{record.total:g}"
        rows[student] = {**scores, "max": maximum, "note": "; ".join(filter(None, notes))}
    for student in roster.students if roster else []:
        if student not in rows:
            zeros = {part: "0" for part in [*parts, "total"]}
            rows[student] = {**zeros, "max": maximum, "note": NO_SUBMISSION}
    header = ["student_id", *parts, "total", "max", "note"]
    table = [{"student_id": student, **rows[student]} for student in sorted(rows)]
    grades = Path(out) / "grades.csv"
    _write_csv(grades, header, table)
    _write_csv(
        grades.with_name("lms_grades.csv"),
        ["student_id", "total", "max"],
        [row for row in table if row["total"] != ""],
    )
    return grades


def _write_csv(path: Path, header: list[str], rows: list[dict]) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", newline="") as handle:
        writer = csv.DictWriter(handle, header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    partial.replace(path)
