"""Each LMS's grade importer, as its source or documentation states its rules, reduced to
what decides whether a file is taken and which student and column each grade reaches.

* Canvas, ``app/models/gradebook_importer.rb`` (instructure/canvas-lms): the header's first
  cell contains "Student", its second "ID"; "SIS Login ID" (third) or "SIS User ID" then
  "SIS Login ID" (third and fourth) may follow; the last student column contains "Section".
  A column "Title (id)" is that assignment, another title a new one. A row whose first cell
  contains "Points Possible" gives each column's points. A student row is matched by its
  ``ID`` (the Canvas user id), else by the SIS ids, else by the name.
* Moodle, ``mod/assign/feedback/offline/importgradesform``'s importer: the columns
  "Identifier", "Grade" and "Last modified (grade)" must be there (else the file is refused);
  an identifier is "Participant " and the participant number; "Last modified (grade)" is read
  by PHP's ``strtotime``; "Feedback comments" fills the comments.
* Blackboard Learn, Grade Center upload: a "Username" column is required; a column "Title
  |id" is that column, any other column that is not a user column a new one.
"""

from __future__ import annotations

import csv
import datetime
import re
from pathlib import Path

CANVAS_USER_COLUMNS = 5  # Student, ID, SIS User ID, SIS Login ID, Section
BLACKBOARD_USER_COLUMNS = {"Last Name", "First Name", "Username", "Student ID", "Last Access"}


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def canvas_import(path: Path) -> tuple[dict[str, float], dict[str, dict[str, str]]]:
    """``(points possible per column, {user id: {column: grade}})`` as Canvas reads the file."""
    header, *rows = _rows(path)
    assert len(header) > 3 and "Student" in header[0] and "ID" in header[1], header
    student_columns = 3
    if re.search(r"SIS\s+Login\s+ID", header[2]):
        student_columns = 4
    elif re.search(r"SIS\s+User\s+ID", header[2]) and re.search(r"SIS\s+Login\s+ID", header[3]):
        student_columns = 5
    assert "Section" in header[student_columns - 1], f"Canvas: invalid header row {header}"
    columns = header[student_columns:]
    points: dict[str, float] = {}
    grades: dict[str, dict[str, str]] = {}
    for row in rows:
        if "Points Possible" in row[0]:
            points = {c: float(v) for c, v in zip(columns, row[student_columns:]) if v}
            continue
        assert row[1].isdigit(), f"Canvas matches a row by its user id: {row[1]!r}"
        assert row[1] not in grades, f"user {row[1]} twice"
        grades[row[1]] = dict(zip(columns, row[student_columns:]))
    return points, grades


def canvas_column(title: str) -> tuple[str, str]:
    """Canvas's ``Assignment.title_and_id``: "Lab 1 (4567)" -> ("Lab 1", "4567")."""
    match = re.match(r"^(.*) \((\d+)\)$", title)
    return (match[1], match[2]) if match else (title, "")


def moodle_import(path: Path) -> dict[str, dict[str, str]]:
    """``{participant number: {"grade", "modified", "feedback"}}`` as Moodle reads the file."""
    header, *rows = _rows(path)
    for needed in ("Identifier", "Grade", "Last modified (grade)"):
        assert needed in header, f"Moodle refuses the worksheet: no {needed!r} column"
    at = {name: header.index(name) for name in header}
    found = {}
    for row in rows:
        identifier = row[at["Identifier"]]
        assert identifier.startswith("Participant "), identifier
        number = identifier.removeprefix("Participant ")
        assert number.isdigit(), identifier
        modified = datetime.datetime.fromisoformat(row[at["Last modified (grade)"]])
        assert modified.tzinfo is not None, "a time strtotime reads the same everywhere"
        feedback = row[at["Feedback comments"]] if "Feedback comments" in at else ""
        found[number] = {"grade": row[at["Grade"]], "modified": modified, "feedback": feedback}
    return found


def blackboard_import(path: Path) -> dict[str, dict[str, str]]:
    """``{username: {column: grade}}`` as Blackboard Learn reads the file."""
    header, *rows = _rows(path)
    assert "Username" in header, "Blackboard refuses a file without a Username column"
    columns = [c for c in header if c not in BLACKBOARD_USER_COLUMNS]
    user = header.index("Username")
    found = {}
    for row in rows:
        assert row[user] and row[user] not in found, row
        found[row[user]] = {c: row[header.index(c)] for c in columns}
    return found
