"""The grade file each LMS imports unchanged, written from the rows of grades.csv.

* Canvas (Grades > Import): ``Student,ID,SIS User ID,SIS Login ID,Section,<assignment>``, a
  ``Points Possible`` row, then one row per student; Canvas matches a row by ``ID``, its user
  id, and the column by ``Title (id)`` (an existing assignment) or by title (else new).
* Moodle (the assignment's "Upload grading worksheet"): its offline grading worksheet, one row
  per ``Identifier`` ("Participant N"), with ``Grade``, ``Last modified (grade)`` and
  ``Feedback comments``.
* Blackboard Learn (Grade Center > Work Offline > Upload): ``Username`` and the column,
  ``Title |id`` for an existing column (else a new one).

A row needs the LMS's id of its student (from the ZIP's file names or the roster's
``lms_id``); students without one, or without a valid grade, are left out and counted.
"""

from __future__ import annotations

import datetime

LMS_FILES = {"canvas": "canvas_grades.csv", "moodle": "moodle_grades.csv"}
LMS_FILES["blackboard"] = "blackboard_grades.csv"
MOODLE_PARTICIPANT = "Participant "  # Moodle's prefix of a participant number


def lms_table(
    lms: str, rows: list[dict], column: str, maximum: str, parts: dict[str, tuple[str, float]]
) -> tuple[list[str], list[dict]]:
    """``(header, rows)`` of ``lms``'s file for the graded ``rows`` of grades.csv (each with
    ``lms_id``, ``name``, ``total``... and the roster's columns), the assignment's column
    named ``column``, out of ``maximum``; ``parts``: each part's column -> (title, points)."""
    rows = [row for row in rows if row["lms_id"] and row["total"] != ""]
    if lms == "canvas":
        header = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column]
        points = {"Student": "Points Possible", column: maximum}
        return header, [points] + [_canvas(row, column) for row in rows]
    if lms == "moodle":
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        header = [
            "Identifier",
            "Full name",
            "Email address",
            "Grade",
            "Maximum Grade",
            "Grade can be changed",
            "Last modified (submission)",
            "Last modified (grade)",
            "Feedback comments",
        ]
        return header, [_moodle(row, maximum, parts, now) for row in rows]
    if lms == "blackboard":
        return ["Username", column], [{"Username": r["lms_id"], column: r["total"]} for r in rows]
    raise ValueError(f"no LMS {lms!r}: {', '.join(LMS_FILES)}")


def _canvas(row: dict, column: str) -> dict:
    return {
        "Student": row["name"] or row["student_id"],
        "ID": row["lms_id"],
        "SIS User ID": row.get("sis_user_id", ""),
        "SIS Login ID": row.get("sis_login_id", ""),
        "Section": row.get("section", ""),
        column: row["total"],
    }


def _moodle(row: dict, maximum: str, parts: dict[str, tuple[str, float]], now: str) -> dict:
    scores = ", ".join(f"{title} {row[part]}/{points:g}" for part, (title, points) in parts.items())
    comments = f"{scores}: {row['total']}/{maximum}" + (f". {row['note']}" if row["note"] else "")
    return {
        "Identifier": f"{MOODLE_PARTICIPANT}{row['lms_id']}",
        "Full name": row["name"],
        "Email address": row.get("email", ""),
        "Grade": row["total"],
        "Maximum Grade": maximum,
        "Grade can be changed": "Yes",
        "Last modified (submission)": row["submitted"],
        "Last modified (grade)": now,
        "Feedback comments": comments,
    }
