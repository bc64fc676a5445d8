"""LMS ZIPs in, roster-complete grades.csv and lms_grades.csv out (grader/lms.py)."""

from __future__ import annotations

import csv
import os
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader import lms
from grader.__main__ import main
from grader.config import REPO
from tests.conftest import run_as_user

LAB = REPO / "labs" / "cats_vs_dogs" / "cats_vs_dogs.ipynb"
ANOTHER_LAB = nbformat.writes(
    nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Another lab")])
)
ROSTER = (
    "student_id,name,email,lms_id\n"
    "jane,Jane Doe,jane@example.org,doejane\n"
    "bob,Bob Ray,bob@example.org,102\n"
    "carol,Carol Sun,carol@example.org,\n"
    "dave,Dave Oak,dave@example.org,\n"
    "erin,Erin Fox,erin@example.org,\n"
)
# member name -> (student, words expected in the note)
CLASS_ZIP = {
    "doejane_LATE_101_9001_cats_vs_dogs.ipynb": ("jane", "not a valid notebook"),
    "Bob Ray_102_assignsubmission_file_/cats_vs_dogs.ipynb": ("bob", "not a valid notebook"),
    "dave.ipynb": ("dave", "empty"),
    "erin_7_8_essay.docx": ("erin", "essay.docx is not a notebook"),
    "zed.ipynb": ("zed", "not in the roster; this notebook is not the cats_vs_dogs lab"),
}
CONTENT = {"dave.ipynb": "", "zed.ipynb": ANOTHER_LAB}


def make_zip(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zipped:
        for name, data in members.items():
            zipped.writestr(name, data)
    return path


def read_csv(path: Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        rows = {row["student_id"]: row for row in reader}
        return list(reader.fieldnames or []), rows


def run_main(*args: object) -> int:
    """The real command in this process; the grader's environment changes are undone after."""
    with pytest.MonkeyPatch.context() as patch:
        for name in (
            "TF_CPP_MIN_LOG_LEVEL",
            "COURSE_HOLDOUT_DIR",
            "COURSE_CACHE_DIR",
            "KERAS_HOME",
            "MPLBACKEND",
        ):
            # Recorded, so restored afterwards; an unset one stays unset (an empty KERAS_HOME
            # would make Keras write into the current folder).
            original = os.environ.get(name)
            patch.setenv(name, original or "")
            if original is None:
                patch.delenv(name)
        return main([str(arg) for arg in args])


# --- naming rules and extraction: no grading, no TensorFlow --------------------------------


@pytest.mark.parametrize(
    "member, expected",
    [
        ("doejane_12345_67890_cats_vs_dogs.ipynb", "doejane"),  # Canvas
        ("doejane_LATE_12345_67890_cats_vs_dogs.ipynb", "doejane"),  # Canvas, late
        ("Jane Doe_12345_assignsubmission_file_cats_vs_dogs.ipynb", "12345"),  # Moodle
        ("Jane Doe_12345_assignsubmission_file_/cats_vs_dogs.ipynb", "12345"),  # Moodle folders
        ("export/submitted/s7/cats_vs_dogs/cats_vs_dogs.ipynb", "s7"),  # nbgrader layout
        ("student_1.ipynb", "student_1"),  # plain
        ("class/jane.doe@example.org.ipynb", "jane.doe@example.org"),
    ],
)
def test_member_names_give_student_ids(member, expected):
    assert lms.student_of(member) == expected


def test_roster_maps_lms_names_and_numbers():
    roster = lms.Roster(["jane", "u42"], {"Jane Doe": "jane", "777": "jane"})
    assert lms.student_of("Jane Doe_12345_assignsubmission_file_lab.ipynb", roster) == "jane"
    assert lms.student_of("x_777_1_lab.ipynb", roster) == "jane"
    assert lms.student_of("someone_u42_lab.ipynb", roster) == "someone_u42_lab"
    assert lms.student_of("someone_42_1_lab.ipynb", roster) == "someone"
    assert lms.student_of("u42.ipynb", roster) == "u42"


def test_nbgrader_style_name_regexp():
    regexp = r".*_(?P<student_id>\w+)_attempt_(?P<timestamp>[0-9\-]+)_(?P<file_id>\w+)"
    member = "ps1_bitdiddle_attempt_2016-01-30-15-00-00_problem1.ipynb"
    assert lms.student_of(member, name_regexp=regexp) == "bitdiddle"


@pytest.mark.parametrize(
    "member",
    ["../evil.ipynb", "a/../../evil.ipynb", "/etc/evil.ipynb", "C:/evil.ipynb", "..\\evil.ipynb"],
)
def test_path_traversal_refuses_the_whole_zip(tmp_path, member):
    archive = make_zip(tmp_path / "class.zip", {"ok.ipynb": "{}", member: "{}"})
    with pytest.raises(lms.LmsError, match="points outside"):
        lms.collect_zip(archive, tmp_path / "into")
    assert not (tmp_path / "evil.ipynb").exists() and not (tmp_path / "into").exists()


def test_symlink_member_is_refused(tmp_path):
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        link = zipfile.ZipInfo("jane.ipynb")
        link.external_attr = 0o120777 << 16
        zipped.writestr(link, "/etc/passwd")
    with pytest.raises(lms.LmsError, match="symbolic link"):
        lms.collect_zip(archive, tmp_path / "into")


def test_oversized_member_scores_zero_without_being_extracted(tmp_path, monkeypatch):
    monkeypatch.setattr(lms, "MAX_MEMBER_MB", 0.01)
    archive = make_zip(tmp_path / "class.zip", {"big.ipynb": "x" * 20_000, "small.ipynb": "{}"})
    subs = {s.student_id: s for s in lms.collect_zip(archive, tmp_path / "into")}
    assert "too large" in subs["big"].problem and "limit 0.01 MB" in subs["big"].problem
    assert not (tmp_path / "into" / "big").exists()
    assert "too large" not in subs["small"].problem


def test_one_notebook_per_student_and_clutter_ignored(tmp_path):
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, date in [
            ("jane_1_2_notes.pdf", (2024, 5, 3, 0, 0, 0)),
            ("jane_1_3_old.ipynb", (2024, 5, 1, 0, 0, 0)),
            ("jane_1_4_new.ipynb", (2024, 5, 2, 0, 0, 0)),
            ("__MACOSX/._jane.ipynb", (2024, 5, 2, 0, 0, 0)),
            (".DS_Store", (2024, 5, 2, 0, 0, 0)),
        ]:
            zipped.writestr(zipfile.ZipInfo(name, date), "{}")
    lines = []
    subs = lms.collect_zip(archive, tmp_path / "into", log=lines.append)
    assert [(s.student_id, s.path.name) for s in subs] == [("jane", "jane_1_4_new.ipynb")]
    assert lines == ["jane: 3 files in the ZIP, grading jane_1_4_new.ipynb"]


def test_not_a_zip_and_bad_rosters_are_explained(tmp_path):
    (tmp_path / "class.zip").write_text("not a zip")
    with pytest.raises(lms.LmsError, match="cannot read the ZIP"):
        lms.collect_zip(tmp_path / "class.zip", tmp_path / "into")
    for text, message in [
        ("id,name\n1,a\n", "no student_id column"),
        ("student_id\nja ne\n", "line 2: 'ja ne' is not a usable"),
        ("student_id\na\na\n", "line 3: a appears twice"),
        ("student_id,lms_id\na,7\nb,7\n", "line 3: lms_id 7 is also a's"),
        ("student_id\n", "lists no students"),
    ]:
        (tmp_path / "roster.csv").write_text(text)
        with pytest.raises(lms.LmsError, match=message):
            lms.read_roster(tmp_path / "roster.csv")


def test_cli_refuses_an_unsafe_zip_with_one_line(tmp_path, capsys):
    archive = make_zip(tmp_path / "class.zip", {"../evil.ipynb": "{}"})
    assert run_main("grade", archive, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert err == "grader: refusing the ZIP: member '../evil.ipynb' points outside the folder"


# --- the real command on cheap submissions (rejected before any kernel starts) -------------


@pytest.fixture(scope="module")
def graded_zip(tmp_path_factory, offline_mirror):
    folder = tmp_path_factory.mktemp("lms")
    archive = make_zip(
        folder / "class.zip", {name: CONTENT.get(name, "{ not json") for name in CLASS_ZIP}
    )
    (folder / "roster.csv").write_text(ROSTER)
    out = folder / "out"
    roster = folder / "roster.csv"
    assert (
        run_main("grade", archive, "--out", out, "--roster", roster, "--lab", "cats_vs_dogs") == 0
    )
    return out / "cats_vs_dogs"


def test_zip_students_are_found_and_every_roster_student_has_a_row(graded_zip):
    header, rows = read_csv(graded_zip / "grades.csv")
    assert header[:3] == ["student_id", "name", "lms_id"]
    assert header[-5:] == ["total", "max", "late", "submitted", "note"]
    assert set(rows) == {"jane", "bob", "carol", "dave", "erin", "zed"}
    for student, words in CLASS_ZIP.values():
        assert words in rows[student]["note"], rows[student]
        assert rows[student]["total"] == "0" and rows[student]["max"] == "9"
    assert rows["carol"]["note"] == "no submission" and rows["carol"]["total"] == "0"
    assert all(rows[s]["note"].count("roster") == 0 for s in ("jane", "bob", "carol"))
    assert rows["jane"]["late"] == "yes" and rows["bob"]["late"] == ""  # doejane_LATE_...
    assert (rows["jane"]["name"], rows["jane"]["lms_id"]) == ("Jane Doe", "101")


def test_lms_grades_csv_is_exactly_id_total_max(graded_zip):
    lines = (graded_zip / "lms_grades.csv").read_text().splitlines()
    assert lines[0] == "student_id,total,max"
    assert sorted(lines[1:]) == sorted(
        f"{s},0,9" for s in ("jane", "bob", "carol", "dave", "erin", "zed")
    )


def test_folder_with_roster_maps_lms_ids(tmp_path, offline_mirror):
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "doejane.ipynb").write_text("")
    (tmp_path / "roster.csv").write_text(ROSTER)
    out = tmp_path / "out"
    assert (
        run_main(
            "grade",
            tmp_path / "subs",
            "--out",
            out,
            "--roster",
            tmp_path / "roster.csv",
            "--lab",
            "cats_vs_dogs",
        )
        == 0
    )
    _, rows = read_csv(out / "cats_vs_dogs" / "grades.csv")
    assert "empty" in rows["jane"]["note"] and "doejane" not in rows
    assert (out / "cats_vs_dogs" / "lms_grades.csv").read_text().count("\n") == 6


@pytest.mark.slow
def test_untouched_lab_inside_a_zip_is_graded_not_rejected(tmp_path, offline_mirror):
    archive = make_zip(
        tmp_path / "class.zip", {"doejane_12345_67890_cats_vs_dogs.ipynb": LAB.read_bytes()}
    )
    run = run_as_user(["-m", "grader", "grade", archive, "--out", tmp_path / "out"])
    assert run.returncode == 0, run.stdout + run.stderr
    _, rows = read_csv(tmp_path / "out" / "cats_vs_dogs" / "grades.csv")
    assert rows["doejane"]["total"] == "0" and rows["doejane"]["note"] == ""
    assert (tmp_path / "out" / "cats_vs_dogs" / "feedback" / "doejane.html").exists()
    assert (
        tmp_path / "out" / "cats_vs_dogs" / "lms_grades.csv"
    ).read_text() == "student_id,total,max\ndoejane,0,9\n"
