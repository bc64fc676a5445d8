"""The grader as instructors run it: ``python -m grader grade``, default settings, offline.

One real grading of the worked solution (full marks) and the untouched lab (zero) by the
real command, from a folder outside the repository, in an environment with neither
``KERAS_HOME`` nor ``COURSE_CACHE_DIR`` and the virtual environment not activated; then
what instructors get from it, and the errors they can make. The whole fixture class, the
online setting and the interrupted runs are in tests/test_grading_class.py (make test-all).
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import time
from pathlib import Path

import nbformat
import pytest

from tests.conftest import run_as_user
from tests.master_text import hidden_test_lines
from tests.submissions.build import build_all, manifest

PARTS = {"part_a": 1, "part_b": 2, "part_c": 2, "part_d": 2, "part_e": 2}
LAB = "cats_vs_dogs"  # OUT/<lab>/ holds each lab's reports


def grade(submissions: Path, out: Path, *extra, env=None):
    """``python -m grader grade SUBMISSIONS --out OUT [extra]`` as an instructor types it."""
    return run_as_user(["-m", "grader", "grade", submissions, "--out", out, *extra], env=env)


def read_grades(out: Path) -> dict[str, dict[str, str]]:
    with open(out / LAB / "grades.csv", newline="") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


def read_records(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (out / LAB / "records").glob("*.json")}


def feedback_text(out: Path, student: str) -> str:
    page = (out / LAB / "feedback" / f"{student}.html").read_text()
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def self_checks(out: Path, name: str, lab: str = LAB) -> tuple[str, float | None]:
    """In ``name``'s autograded notebook: the part whose self-check failed first ("" when
    none did) and the estimate ``lab.score()`` printed (None when it printed none)."""
    nb = nbformat.read(out / lab / "autograded" / f"{name}.ipynb", as_version=4)
    first, estimate = "", None
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        outputs = cell.get("outputs", [])
        failed = any(output.get("output_type") == "error" for output in outputs)
        if grade_id.endswith("_check") and failed and not first:
            first = grade_id.removesuffix("_check")
        if grade_id == "self_score":
            printed = "".join(output.get("text", "") for output in outputs)
            said = re.search(r"Estimated score: ([\d.]+) of", printed)
            estimate = float(said[1]) if said else None
    return first, estimate


def assert_self_checks_agree_with_the_grader(out: Path, names: list[str], lab: str = LAB) -> None:
    """Every case of ``names`` with a ``self_check`` in ``lab``'s manifest: the self-check of
    the part where the mistake is fails first, and the self-score is the grader's total."""
    cases = manifest(lab)["cases"]
    with open(out / lab / "grades.csv", newline="") as handle:
        grades = {row["student_id"]: row for row in csv.DictReader(handle)}
    checked = [name for name in names if "self_check" in cases[name]]
    assert checked
    for name in checked:
        first, estimate = self_checks(out, name, lab)
        assert first == cases[name]["self_check"], (
            f"{name}: the first failing self-check is {first!r}"
        )
        assert estimate == float(grades[name]["total"]), f"{name}: self-score {estimate}"


def assert_full_marks_and_zero(out: Path) -> None:
    grades = read_grades(out)
    assert {p: float(grades["solution"][p]) for p in PARTS} == PARTS, grades["solution"]
    assert grades["solution"]["total"] == grades["solution"]["max"] == "9"
    assert grades["solution"]["note"] == ""
    assert grades["untouched"]["total"] == "0" and grades["untouched"]["note"] == ""


@pytest.fixture(scope="module")
def graded(tmp_path_factory, offline_mirror, report):
    """The worked solution and the untouched lab, graded once by the real command."""
    folder = tmp_path_factory.mktemp("subs")
    build_all(folder, ["solution", "untouched"])
    out = tmp_path_factory.mktemp("graded")
    started = time.perf_counter()
    run = grade(folder, out)
    report(
        f"{time.perf_counter() - started:7.1f} s  the solution and the untouched lab graded offline"
    )
    for line in run.stdout.splitlines():
        if " points (" in line:
            report(f"           {line}")
    assert run.returncode == 0, run.stdout + run.stderr
    return out, run


def test_worked_solution_gets_full_marks_and_untouched_lab_zero(graded):
    out, run = graded
    assert_full_marks_and_zero(out)
    assert_self_checks_agree_with_the_grader(out, ["solution", "untouched"])
    assert "sandboxed kernels" in run.stdout
    assert run.stderr == "", "the grader's output holds other programs' lines (TensorFlow's?)"


@pytest.mark.parametrize("sandboxed", [False, True], ids=["unsandboxed", "sandboxed"])
def test_a_short_student_cell_limit_does_not_cut_the_clean_kernel(tmp_path, sandboxed):
    """--cell-timeout limits student cells; the clean kernel's full pass over the held-out
    photos (slower while other students are graded) keeps its own, longer limit."""
    from grader.grading import CHECK_CELL_TIMEOUT, GradingContext, _kernels
    from grader.kernel_data import KernelData
    from grader.master import SOURCE, load_master
    from grader.sandbox import SandboxLimits, SandboxUnavailable, bubblewrap

    if sandboxed:
        try:
            bubblewrap()
        except SandboxUnavailable as error:
            pytest.skip(str(error))
    data = KernelData(tmp_path, (), (), tmp_path / "n", tmp_path / "c", tmp_path / "h")
    limits = SandboxLimits(cell_timeout=30)
    master = load_master(SOURCE / LAB)
    context = GradingContext(tmp_path, tmp_path, tmp_path, master, data, limits, sandboxed)
    student, checking, sandbox, _ = _kernels(context, tmp_path, tmp_path / "w", tmp_path, tmp_path)
    assert student.Execute.timeout == 30
    assert checking.config.NotebookClient.timeout == CHECK_CELL_TIMEOUT > 30
    if sandboxed:  # the clean kernel waits for the student's notebook: its own time limit
        lives = json.loads((checking.sandbox.folder / "sandbox.json").read_text())
        theirs = json.loads((sandbox.folder / "sandbox.json").read_text())
        assert lives["limits"]["notebook_timeout"] > theirs["limits"]["notebook_timeout"]


def test_each_student_has_one_record_with_both_runs(graded):
    out, _ = graded
    records = read_records(out)
    solution = records["solution"]
    assert solution["status"] == "graded"
    assert solution["scores"] == solution["notebook_scores"] == solution["clean_scores"] == PARTS
    assert set(solution["phases"]) >= {"kernel start", "notebook", "clean check", "feedback"}
    assert (out / LAB / solution["feedback"]).is_file()
    untouched = records["untouched"]
    assert untouched["scores"] == dict.fromkeys(PARTS, 0.0)
    assert untouched["clean_scores"] == {}  # nothing handed in: nothing to check again


def test_the_gradebook_holds_each_students_cells_and_notebook(graded):
    """nbgrader's gradebook (``COURSE_GRADEBOOK``, here the session's) after grading: what
    the formgrader shows and ``nbgrader export`` reads."""
    from nbgrader.api import Gradebook

    out, _ = graded
    gradebook = Path(os.environ["COURSE_GRADEBOOK"])
    records = read_records(out)
    with Gradebook(f"sqlite:///{gradebook}") as gb:
        for student in ("solution", "untouched"):
            submission = gb.find_submission(LAB, student)
            assert submission.score == sum(records[student]["scores"].values())
            cells = {g.name: g.auto_score for g in submission.notebooks[0].grades}
            assert {k: cells[k] for k in records[student]["cell_scores"]} == (
                records[student]["cell_scores"]
            )
    assert records["solution"]["cell_scores"] and sum(
        records["solution"]["cell_scores"].values()
    ) == sum(PARTS.values())
    notebook = gradebook.parent / "autograded" / "solution" / LAB / f"{LAB}.ipynb"
    assert notebook.read_bytes() == (out / LAB / "autograded" / "solution.ipynb").read_bytes()


def test_lms_grades_csv_has_everyone(graded):
    out, _ = graded
    lines = (out / LAB / "lms_grades.csv").read_text().splitlines()
    assert lines == ["student_id,total,max", "solution,9,9", "untouched,0,9"]


def test_held_out_accuracy_is_measured_in_the_clean_kernel_on_reused_features(graded):
    out, _ = graded
    text = feedback_text(out, "solution")
    found = re.search(r"held-out accuracy: ([\d.]+)% on 1000 photos \(([^)]*)\)", text)
    assert found, "the clean kernel's Part E message should be in the feedback"
    assert float(found.group(1)) >= 95
    assert "cached output was reused" in found.group(2)


def test_feedback_shows_no_hidden_test_code(graded):
    out, _ = graded
    hidden = hidden_test_lines()
    for student in ("solution", "untouched"):
        text = feedback_text(out, student)
        assert "Grade cell: part_e_tests" in text
        leaked = [line for line in hidden if line in text]
        assert not leaked, f"{student}: hidden test code in feedback: {leaked[:2]}"


def test_feedback_names_each_part_and_why_it_lost_points(graded, offline_mirror):
    out, _ = graded
    solution, untouched = feedback_text(out, "solution"), feedback_text(out, "untouched")
    assert "cats_vs_dogs: 9 of 9 points" in solution
    assert "Part A: Look at the data: 1 / 1\n" in solution
    assert "Part E: Evaluate: 2 / 2\n" in solution
    assert "cats_vs_dogs: 0 of 9 points" in untouched
    summary = untouched[untouched.index("0 of 9 points") :][:2000]
    for title in ("Part A: Look at the data", "Part C: Build the full model", "Part E: Evaluate"):
        line = next(line for line in summary.splitlines() if line.strip().startswith(title))
        assert " / " in line and " — " in line and len(line.split(" — ")[1]) > 10, line
    # Nothing of the grading machine: the setup line names the mirror's variable, not its path.
    for text in (solution, untouched):
        assert str(offline_mirror) not in text and "Test cell (Score" not in text
    assert solution.count("tensorflow: ") == 1


def test_missing_submissions_folder_and_bad_holdout_are_explained(tmp_path, offline_mirror):
    run = grade(tmp_path / "nowhere", tmp_path / "out")
    assert run.returncode == 2, run.stderr
    assert (
        run.stderr == f"grader: SUBMISSIONS {tmp_path / 'nowhere'} does not exist: check the path\n"
    )
    (tmp_path / "empty").mkdir()
    run = grade(tmp_path / "empty", tmp_path / "out")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.startswith(f"grader: no submissions found in {tmp_path / 'empty'}: give a")
    assert "<student_id>.ipynb" in run.stderr and "ZIP" in run.stderr
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "a.ipynb").write_text("{}")
    (tmp_path / "holdout").mkdir()
    run = grade(
        tmp_path / "subs", tmp_path / "out", "--lab", LAB, "--holdout", tmp_path / "holdout"
    )
    assert run.returncode == 2 and "missing: cats, dogs" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_wrong_path_is_reported_before_tensorflow_is_imported(tmp_path):
    """The answer comes at once, without TensorFlow's start-up lines."""
    check = (
        "import sys\nfrom grader.__main__ import main\n"
        f"code = main(['grade', {str(tmp_path / 'nowhere')!r}, '--out', {str(tmp_path / 'o')!r}])\n"
        "print(code, 'tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    run = run_as_user(["-c", check])
    assert run.stdout.split() == ["2", "False", "False"], run.stdout + run.stderr
    assert run.stderr.count("\n") == 1  # the message alone


def test_nbgrader_layout_is_accepted(tmp_path, offline_mirror):
    nested = tmp_path / "submitted" / "s1" / "cats_vs_dogs"
    nested.mkdir(parents=True)
    (nested / "cats_vs_dogs.ipynb").write_text("not a notebook")
    run = grade(tmp_path, tmp_path / "out")
    assert run.returncode == 0, run.stderr
    record = read_records(tmp_path / "out")["s1"]
    assert record["status"] == "not graded" and "not a valid notebook" in record["note"]
    assert read_grades(tmp_path / "out")["s1"]["total"] == "0"


def test_a_submission_for_another_lab_scores_zero_without_a_kernel(tmp_path, offline_mirror):
    folder = tmp_path / "subs"
    folder.mkdir()
    other = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Another lab")])
    nbformat.write(other, folder / "other_lab.ipynb")
    run = grade(folder, tmp_path / "out")  # no lab to report it in: the instructor says which
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "none of the 1 submission(s) is a notebook of a known lab (" in run.stderr
    assert "cats_vs_dogs" in run.stderr and "--lab" in run.stderr
    run = grade(folder, tmp_path / "out", "--lab", LAB)
    assert run.returncode == 0, run.stderr
    assert "not the cats_vs_dogs lab" in read_grades(tmp_path / "out")["other_lab"]["note"]
    assert "Preparing what the kernels" not in run.stdout  # nothing had to be prepared for it


# --- any nbgrader assignment: tests/assignments/numpy_basics, no lab.toml, no data ----------


def test_any_nbgrader_assignment_is_graded_by_the_same_command(tmp_path):
    """An nbgrader course folder (source/ and submitted/) of an assignment that is no lab of
    the course: graded sandboxed, on nbgrader's metadata alone, with nbgrader's scores and
    feedback without hidden tests."""
    from nbgrader.preprocessors import ClearSolutions

    from grader.config import REPO

    master = REPO / "tests" / "assignments" / "numpy_basics" / "numpy_basics.ipynb"
    course = tmp_path / "course"
    (course / "source" / "numpy_basics").mkdir(parents=True)
    (course / "source" / "numpy_basics" / master.name).write_bytes(master.read_bytes())
    solved = nbformat.read(master, as_version=4)
    released, _ = ClearSolutions().preprocess(nbformat.read(master, as_version=4), {})
    unstable = nbformat.read(master, as_version=4)  # softmax overflows on large values
    for cell in unstable.cells:
        cell.source = cell.source.replace("z - z.max(axis=-1, keepdims=True)", "z")
    for student, nb in (("ann", solved), ("ben", released), ("cy", unstable)):
        folder = course / "submitted" / student / "numpy_basics"
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / master.name)
    run = grade(course, tmp_path / "out")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "of numpy_basics into" in run.stdout and "sandboxed kernels" in run.stdout
    out = tmp_path / "out" / "numpy_basics"
    with open(out / "grades.csv", newline="") as handle:
        grades = {row["student_id"]: row for row in csv.DictReader(handle)}
    scores = {s: [grades[s][q] for q in ("q1", "q2", "q3", "total", "max")] for s in grades}
    assert scores == {
        "ann": ["1", "2", "1", "4", "4"],
        "ben": ["0", "0", "0", "0", "4"],
        "cy": ["1", "0", "1", "2", "4"],
    }
    records = {p.stem: json.loads(p.read_text()) for p in (out / "records").glob("*.json")}
    assert records["ann"]["clean_scores"] == {}  # no clean kernel: nothing is handed in
    hidden = hidden_test_lines([master])
    assert hidden
    for student in grades:
        text = html.unescape(
            re.sub(r"<[^>]+>", "", (out / "feedback" / f"{student}.html").read_text())
        )
        assert not [line for line in hidden if line in text], student
    assert "numpy_basics: 2 of 4 points" in html.unescape(
        re.sub(r"<[^>]+>", "", (out / "feedback" / "cy.html").read_text())
    )
    # The course's own gradebook holds them too, as nbgrader's export gives them.
    export = run_as_user(["-m", "nbgrader", "export", "--to", "export.csv"], cwd=course)
    assert export.returncode == 0, export.stdout + export.stderr
    with open(course / "export.csv", newline="") as handle:
        exported = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert {s: float(exported[s]["raw_score"]) for s in exported} == {
        s: float(grades[s]["total"]) for s in grades
    }
    assert (course / "autograded" / "cy" / "numpy_basics" / master.name).is_file()


def test_a_stop_that_a_library_swallows_while_the_reports_are_written_still_stops(
    tmp_path, monkeypatch
):
    """SIGTERM (or Ctrl-C) while the coordinator writes a student's reports, inside a
    library that catches every exception (nbgrader's apps do): the run stops after that
    student, although workers elsewhere would go on grading. (Workers faked here: each task
    is a finished record.)"""
    import signal

    from grader import run
    from grader.config import REPO
    from grader.grading import Graded
    from grader.records import GRADED, Record

    master = REPO / "tests" / "assignments" / "numpy_basics" / "numpy_basics.ipynb"
    course = tmp_path / "course"
    (course / "source" / "numpy_basics").mkdir(parents=True)
    (course / "source" / "numpy_basics" / master.name).write_bytes(master.read_bytes())
    for student in ("ann", "ben", "cy"):
        folder = course / "submitted" / student / "numpy_basics"
        folder.mkdir(parents=True)
        (folder / master.name).write_bytes(master.read_bytes())

    def finished(tasks, jobs, scheduler):  # as workers in other processes hand results in
        for task in tasks:
            yield task, Graded(Record(task.key, GRADED, "", {"q1": 1.0}, ""))

    def swallowing(*args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # the grader's handler raises here
            time.sleep(5)
        except KeyboardInterrupt:  # caught, as nbgrader's capture_log catches everything
            pass
        return ""

    monkeypatch.setattr(run, "run_tasks", finished)
    monkeypatch.setattr(run, "update_gradebook", swallowing)
    with pytest.raises(KeyboardInterrupt):
        run.grade(course, tmp_path / "out", log=lambda *a, **k: None)
    records = list((tmp_path / "out" / "numpy_basics" / "records").glob("*.json"))
    assert len(records) == 1, "the run went on after the stop"
