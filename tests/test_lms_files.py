"""Grades where instructors keep them: the file each LMS imports (grader/lms_files.py), read
back by each importer's rules (tests/lms_importers.py), from records built in memory and from
realistic ZIPs of each LMS graded by the real command."""

from __future__ import annotations

import csv
import zipfile

import pytest

from grader import lms
from grader.config import REPO
from grader.master import load_master
from grader.records import GRADED, GRADER_PROBLEM, Record
from grader.report import LATE, write_reports
from tests.lms_importers import blackboard_import, canvas_column, canvas_import, moodle_import
from tests.test_lms import run_main

LAB = "cats_vs_dogs"
MASTER = load_master(REPO / "grader" / "source" / LAB)
FULL = dict(MASTER.parts)


def record(student: str, identity: dict, scores: dict | None = None, status=GRADED) -> Record:
    scores = FULL if scores is None else scores
    note = "grading raised OSError" if status == GRADER_PROBLEM else ""
    return Record(student, status, "d", scores, note, identity=identity)


def rows_of(path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


def test_canvas_file_is_taken_by_canvas_and_reaches_each_student_by_user_id(tmp_path):
    canvas = {"lms": "canvas", "submitted": "2026-11-30T23:59:00"}
    records = {
        "doejane": record("doejane", {**canvas, "lms_id": "101", "name": "doejane"}),
        "smithjohn_102": record(
            "smithjohn_102",
            {**canvas, "lms_id": "102", "name": "smithjohn", "late": True},
            {**FULL, "part_e": 0.0},
        ),
        "smithjohn_103": record(
            "smithjohn_103", {**canvas, "lms_id": "103"}, status=GRADER_PROBLEM
        ),
    }
    roster = lms.Roster(
        ["doejane", "smithjohn_102", "smithjohn_103", "absent"],
        people={
            "doejane": {"name": "Jane Doe", "section": "A", "sis_user_id": "s1"},
            "absent": {"name": "Al Sent", "lms_id": "104", "sis_login_id": "asent"},
        },
    )
    write_reports(tmp_path, records, MASTER, roster)
    points, grades = canvas_import(tmp_path / "canvas_grades.csv")
    column = MASTER.title.lstrip("# ")
    assert canvas_column(column) == (column, "")  # no id: Canvas makes it a new assignment
    assert points == {column: MASTER.max_score}
    total = f"{MASTER.max_score:g}"
    assert grades == {
        "101": {column: total},
        "102": {column: f"{MASTER.max_score - FULL['part_e']:g}"},
        "104": {column: "0"},  # in the roster, nothing handed in
    }  # 103: the grader's problem, not imported
    with open(tmp_path / "canvas_grades.csv", newline="") as handle:
        lines = list(csv.DictReader(handle))
    jane = next(line for line in lines if line["ID"] == "101")
    assert (jane["Student"], jane["Section"], jane["SIS User ID"]) == ("Jane Doe", "A", "s1")
    report = rows_of(tmp_path / "grades.csv")
    assert report["smithjohn_102"]["late"] == "yes" and LATE in report["smithjohn_102"]["note"]
    assert report["doejane"]["late"] == "" and report["doejane"]["lms_id"] == "101"
    assert report["smithjohn_102"]["submitted"] == "2026-11-30T23:59:00"


def test_an_existing_canvas_assignment_is_named_as_canvas_exports_it(tmp_path):
    records = {"doejane": record("doejane", {"lms": "canvas", "lms_id": "101"})}
    write_reports(tmp_path, records, MASTER, assignment="Lab 1 (4567)")
    points, grades = canvas_import(tmp_path / "canvas_grades.csv")
    assert canvas_column(next(iter(points))) == ("Lab 1", "4567")
    assert grades["101"] == {"Lab 1 (4567)": f"{MASTER.max_score:g}"}


def test_moodle_worksheet_is_taken_by_moodle_with_grades_and_comments(tmp_path):
    moodle = {"lms": "moodle"}
    records = {
        "412": record("412", {**moodle, "lms_id": "412", "name": "Jane Doe"}),
        "413": record("413", {**moodle, "lms_id": "413", "name": "Bo Li"}, {**FULL, "part_a": 0}),
    }
    write_reports(tmp_path, records, MASTER)
    found = moodle_import(tmp_path / "moodle_grades.csv")
    assert set(found) == {"412", "413"}
    assert found["412"]["grade"] == f"{MASTER.max_score:g}"
    assert found["413"]["grade"] == f"{MASTER.max_score - FULL['part_a']:g}"
    assert f"Part A 0/{FULL['part_a']:g}" in found["413"]["feedback"]
    assert not (tmp_path / "canvas_grades.csv").exists()


def test_blackboard_file_is_taken_by_username_into_the_named_column(tmp_path):
    column = "Lab 1 [Total Pts: 9 Score] |123456"
    records = {"jdoe": record("jdoe", {"lms": "blackboard", "lms_id": "jdoe"})}
    write_reports(tmp_path, records, MASTER, assignment=column)
    assert blackboard_import(tmp_path / "blackboard_grades.csv") == {
        "jdoe": {column: f"{MASTER.max_score:g}"}
    }


def test_submissions_of_two_lms_write_no_lms_file(tmp_path):
    records = {
        "a": record("a", {"lms": "canvas", "lms_id": "1"}),
        "b": record("b", {"lms": "moodle", "lms_id": "2"}),
    }
    write_reports(tmp_path, records, MASTER)
    assert sorted(p.name for p in tmp_path.glob("*.csv")) == ["grades.csv", "lms_grades.csv"]


# --- realistic ZIPs of each LMS, graded by the real command --------------------------------
# Cheap submissions (not notebooks of the lab): every student gets 0 before any kernel starts.

ZIPS = {
    "canvas": {
        "doejane_101_9001_cats_vs_dogs.ipynb": "",
        "smithjohn_LATE_102_9002_cats_vs_dogs.ipynb": "",
        "smithjohn_103_9003_cats_vs_dogs-1.ipynb": "",  # another John Smith, resubmitted
    },
    "moodle": {
        "Jane Doe_412_assignsubmission_file_cats_vs_dogs.ipynb": "",
        "Bo Li_413_assignsubmission_file_/cats_vs_dogs.ipynb": "",  # one folder per student
    },
    "blackboard": {
        "Lab 1_jdoe_attempt_2026-11-30-23-59-59_cats_vs_dogs.ipynb": "",
        "Lab 1_jdoe_attempt_2026-11-30-23-59-59.txt": (
            "Name: Jane Doe (jdoe)\nAssignment: Lab 1\n"
            "Date Submitted: Monday, November 30, 2026 11:59:59 PM UTC\n"
        ),
        "Lab 1_bli_attempt_2026-12-01-08-00-00_cats_vs_dogs.ipynb": "",
    },
}
EXPECTED_IDS = {
    "canvas": {"101": "doejane", "102": "smithjohn_102", "103": "smithjohn_103"},
    "moodle": {"412": "412", "413": "413"},
    "blackboard": {"jdoe": "jdoe", "bli": "bli"},
}


@pytest.mark.parametrize("platform", list(ZIPS))
def test_an_lms_zip_gives_the_file_that_lms_imports(tmp_path, platform):
    archive = tmp_path / f"{platform}.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, text in ZIPS[platform].items():
            zipped.writestr(name, text)
    out = tmp_path / "out"
    assert run_main("grade", archive, "--out", out, "--lab", LAB) == 0
    report = rows_of(out / LAB / "grades.csv")
    assert {row["lms_id"]: student for student, row in report.items()} == EXPECTED_IDS[platform]
    assert all(row["total"] == "0" for row in report.values())
    read = {"canvas": canvas_import, "moodle": moodle_import, "blackboard": blackboard_import}
    found = read[platform](out / LAB / f"{platform}_grades.csv")
    grades = found[1] if platform == "canvas" else found
    assert set(grades) == set(EXPECTED_IDS[platform])
    if platform == "canvas":
        assert report["smithjohn_102"]["late"] == "yes" and report["doejane"]["late"] == ""
    if platform == "blackboard":
        assert report["jdoe"]["name"] == "Jane Doe"
        assert report["jdoe"]["submitted"] == "2026-11-30T23:59:59"


def test_lms_option_says_where_a_folder_of_notebooks_goes(tmp_path):
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "jane.ipynb").write_text("")
    (tmp_path / "roster.csv").write_text("student_id,lms_id,name\njane,412,Jane Doe\n")
    out = tmp_path / "out"
    roster = tmp_path / "roster.csv"
    command = ("grade", tmp_path / "subs", "--out", out, "--lab", LAB, "--roster", roster)
    assert run_main(*command, "--lms", "moodle") == 0
    assert set(moodle_import(out / LAB / "moodle_grades.csv")) == {"412"}


GRADESCOPE_METADATA = """\
submission_111:
  :submitters:
  - :name: Jane Doe
    :sid: s1001
    :email: jane@example.org
  :created_at: 2026-11-30 23:59:00.000000000 -05:00
submission_112:
  :submitters:
  - :name: Bo Li
    :sid:
    :email: bo@example.org
  :created_at: 2026-12-01 08:00:00.000000000 -05:00
"""


def test_gradescopes_export_is_graded_under_school_ids(tmp_path):
    archive = tmp_path / "gradescope.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("submission_metadata.yml", GRADESCOPE_METADATA)
        zipped.writestr("submission_111/cats_vs_dogs.ipynb", "")
        zipped.writestr("submission_112/lab 1 final.ipynb", "")
    out = tmp_path / "out"
    assert run_main("grade", archive, "--out", out, "--lab", LAB) == 0
    report = rows_of(out / LAB / "grades.csv")
    assert {s: (r["name"], r["lms_id"]) for s, r in report.items()} == {
        "s1001": ("Jane Doe", "111"),
        "bo@example.org": ("Bo Li", "112"),
    }
    assert report["s1001"]["submitted"].startswith("2026-11-30")
    assert sorted(p.name for p in (out / LAB).glob("*.csv")) == ["grades.csv", "lms_grades.csv"]
