"""The grader's pure logic on notebooks built in memory: no kernel, no TensorFlow, seconds.

Collecting nbgrader's layout (grader/collect.py), repairing a tampered submission
(grader/grading.py), the clean kernel's verdicts (grader/checker.py), the feedback's
preprocessors (grader/preprocessors.py), the hidden lines (grader/master.py) and one LMS
naming guard (grader/lms.py; the rest is in tests/test_lms.py).
"""

from __future__ import annotations

import copy
import shutil

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from nbgrader.preprocessors import ClearHiddenTests
from nbgrader.utils import determine_grade

from grader import lms
from grader.checker import NotReady, _add_verdict, _score, _text
from grader.collect import collect
from grader.config import REPO
from grader.grading import repair_notebook
from grader.master import SOURCE, find_labs, hidden_test_lines, lab_of, load_master
from grader.preprocessors import ClearHiddenTestsInTestCells, HideTestCode, NameParts

ASSIGNMENT = "cats_vs_dogs"
LAB = REPO / "labs" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
HIDDEN = "assert hidden_accuracy(model) >= 0.95"


def nbgrader_cell(source: str, grade_id: str, points: float = 0, **kind: bool):
    """A code cell with nbgrader's metadata (``grade``, ``solution``, ``locked`` as given)."""
    meta = {"grade": False, "solution": False, "locked": False, "task": False}
    meta |= {"grade_id": grade_id, "points": points, "schema_version": 3, **kind}
    return new_code_cell(source, metadata={"nbgrader": meta})


def grade_cell(grade_id: str = "part_a_tests", points: float = 2, outputs=()):
    cell = nbgrader_cell("check(model)", grade_id, points, grade=True, locked=True)
    cell.outputs = [copy.deepcopy(out) for out in outputs]
    return cell


def master_notebook():
    return new_notebook(
        cells=[
            new_markdown_cell("# Lab"),
            nbgrader_cell("answer = 1", "part_a_answer", solution=True),
            grade_cell("part_a_tests", 1),
            nbgrader_cell("answer = 2", "part_b_answer", solution=True),
            grade_cell("part_b_tests", 2),
        ]
    )


def grade_ids(nb) -> list[str | None]:
    return [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]


# --- collecting: nbgrader's course folder ---------------------------------------------------


def test_an_nbgrader_course_folder_gives_only_its_submitted_students(tmp_path):
    course = tmp_path / "course"
    (course / "submitted" / "alice" / ASSIGNMENT).mkdir(parents=True)
    shutil.copyfile(LAB, course / "submitted" / "alice" / ASSIGNMENT / LAB.name)
    (course / "submitted" / "bob" / ASSIGNMENT).mkdir(parents=True)  # handed in nothing
    (course / "gradebook.db").write_bytes(b"SQLite format 3\0")
    (course / "nbgrader_config.py").write_text("c = get_config()\n")
    (course / "submitted" / "stray.ipynb").write_text("{}")
    subs = {s.student_id: s for s in collect(course, tmp_path / "zip")}
    assert sorted(subs) == ["alice", "bob"]
    assert subs["alice"].problem == ""
    assert subs["bob"].problem == "no .ipynb file in the submission folder"


def test_a_plain_folder_still_gives_every_file_a_line(tmp_path):
    shutil.copyfile(LAB, tmp_path / "carol.ipynb")
    (tmp_path / "essay.docx").write_bytes(b"PK")
    (tmp_path / ".DS_Store").write_bytes(b"")
    subs = {s.student_id: s for s in collect(tmp_path, tmp_path / "zip")}
    assert sorted(subs) == ["carol", "essay"]
    assert subs["carol"].problem == ""
    assert subs["essay"].problem == "essay.docx is not a notebook (.ipynb)"


# --- labs: a folder each, told apart by their cells ------------------------------------------

TEST_ASSIGNMENTS = REPO / "tests" / "assignments"  # an nbgrader course's source/ folder


def test_each_notebook_is_told_its_lab_by_its_graded_cells():
    labs = find_labs(TEST_ASSIGNMENTS)
    assert {"cats_vs_dogs", "numpy_basics"} <= set(labs)
    assert lab_of(nbformat.read(LAB, as_version=4), labs) == "cats_vs_dogs"
    numpy = nbformat.read(labs["numpy_basics"] / "numpy_basics.ipynb", as_version=4)
    assert lab_of(numpy, labs) == "numpy_basics"
    assert lab_of(numpy, find_labs()) is None  # not among grader/source's labs
    assert lab_of(new_notebook(cells=[new_markdown_cell("# Notes")]), labs) is None
    # Both course labs use the grade ids part_a_answer ... part_e_tests: the title decides,
    # even when a lab 2 notebook lost most of its cells.
    lab2 = nbformat.read(REPO / "labs" / "fine_tuning" / "fine_tuning.ipynb", as_version=4)
    lab2.cells = [lab2.cells[0], *[c for c in lab2.cells if "part_a" in str(c.metadata)]]
    assert lab_of(lab2, labs) == "fine_tuning"
    lab2.cells = lab2.cells[1:]  # no title left: the ids it shares decide
    assert lab_of(lab2, labs) == "fine_tuning"


def test_an_assignment_without_a_spec_is_graded_on_nbgrader_metadata_alone():
    numpy = load_master(TEST_ASSIGNMENTS / "numpy_basics")
    assert numpy.parts == {"q1": 1.0, "q2": 2.0, "q3": 1.0}
    assert not numpy.spec.clean_kernel and not numpy.spec.given and not numpy.spec.holdout
    lab1 = load_master(SOURCE / "cats_vs_dogs")
    assert lab1.spec.clean_kernel and lab1.spec.measured == {"part_e_tests"}
    assert lab1.spec.given and lab1.spec.prepare and lab1.spec.warm
    assert "part_f" not in lab1.parts  # fine-tuning is lab 2's


def test_a_course_folder_gives_one_submission_per_student_and_lab(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(TEST_ASSIGNMENTS, course / "source")
    numpy = TEST_ASSIGNMENTS / "numpy_basics" / "numpy_basics.ipynb"
    for lab, notebook in (("cats_vs_dogs", LAB), ("numpy_basics", numpy)):
        (course / "submitted" / "alice" / lab).mkdir(parents=True)
        shutil.copyfile(notebook, course / "submitted" / "alice" / lab / notebook.name)
    labs = find_labs(course / "source")
    subs = collect(course, tmp_path / "zip", labs=labs)
    assert sorted((s.student_id, s.lab, s.problem) for s in subs) == [
        ("alice", "cats_vs_dogs", ""),
        ("alice", "numpy_basics", ""),
    ]
    said = collect(course, tmp_path / "zip", labs=labs, lab="numpy_basics")
    assert [(s.lab, s.problem) for s in said] == [("numpy_basics", "")]  # that lab's folders
    (tmp_path / "flat").mkdir()
    shutil.copyfile(LAB, tmp_path / "flat" / "bob.ipynb")
    (bob,) = collect(tmp_path / "flat", tmp_path / "zip", labs=labs, lab="numpy_basics")
    assert (bob.lab, bob.problem) == (
        "numpy_basics",
        "this notebook is the cats_vs_dogs lab, not numpy_basics",
    )


def test_a_lab_spec_sets_the_sandbox_limits_and_the_command_line_replaces_them():
    from grader.run import spec_limits
    from grader.sandbox import GiB

    lab1 = load_master(SOURCE / "cats_vs_dogs")
    assert spec_limits(lab1).memory == 8 * GiB
    assert spec_limits(lab1, {"cell_timeout": 30}).cell_timeout == 30
    assert spec_limits(lab1, {"cell_timeout": 30}).memory == 8 * GiB


# --- repairing a submission -----------------------------------------------------------------


def test_an_untouched_submission_is_left_as_it_is():
    master = master_notebook()
    nb = copy.deepcopy(master)
    assert repair_notebook(nb, master) == []
    assert nb == master


def test_a_deleted_test_cell_is_put_back_after_the_cell_it_follows():
    master = master_notebook()
    nb = copy.deepcopy(master)
    del nb.cells[2]  # part_a_tests
    nb.cells.insert(2, new_code_cell("print('my own cell')"))
    notes = repair_notebook(nb, master)
    assert notes == ["test cell part_a_tests was missing: put back and run"]
    assert grade_ids(nb) == [None, "part_a_answer", "part_a_tests", None, "part_b_answer"] + [
        "part_b_tests"
    ]
    assert nb.cells[2].metadata.nbgrader == master.cells[2].metadata.nbgrader
    assert nb.cells[2].source == ""  # nbgrader restores the locked source
    nbformat.validate(nb)


def test_a_test_cell_without_any_lab_cell_before_it_goes_first():
    master = master_notebook()
    nb = new_notebook(cells=[new_code_cell("x = 1")])
    notes = repair_notebook(nb, master)
    assert grade_ids(nb) == ["part_a_tests", "part_b_tests", None]
    assert len(notes) == 2


def test_duplicated_and_unknown_graded_cells_run_as_plain_cells():
    master = master_notebook()
    nb = copy.deepcopy(master)
    copied = copy.deepcopy(nb.cells[4])  # part_b_tests again, same cell id too
    nb.cells.append(copied)
    nb.cells.append(grade_cell("part_z_tests", 100))
    notes = repair_notebook(nb, master)
    assert notes == [
        "cell 'part_b_tests' appears twice: it ran as a plain cell",
        "cell 'part_z_tests' is not a cell of the lab: it ran as a plain cell",
    ]
    assert "nbgrader" in nb.cells[4].metadata  # the first copy still counts
    assert "nbgrader" not in nb.cells[5].metadata and "nbgrader" not in nb.cells[6].metadata
    ids = [c.id for c in nb.cells]
    assert len(set(ids)) == len(ids)  # made unique, as nbformat 4.5 requires
    nbformat.validate(nb)


def test_an_edited_grade_id_is_a_plain_cell_and_the_test_comes_back():
    master = master_notebook()
    nb = copy.deepcopy(master)
    nb.cells[4].metadata.nbgrader["grade_id"] = "part_b_tests_mine"
    notes = repair_notebook(nb, master)
    assert notes == [
        "cell 'part_b_tests_mine' is not a cell of the lab: it ran as a plain cell",
        "test cell part_b_tests was missing: put back and run",
    ]
    assert grade_ids(nb)[3:] == ["part_b_answer", "part_b_tests", None]  # after its answer


# --- the clean kernel's verdict, as nbgrader then reads it ---------------------------------


PRINTED = new_output("stream", name="stdout", text="accuracy 0.97\n")
ERROR = new_output("error", ename="AssertionError", evalue="too low", traceback=["..."])


def result(text: str):
    return new_output("execute_result", data={"text/plain": text}, execution_count=1)


def test_a_zero_from_the_clean_kernel_comes_first_as_an_error():
    cell = grade_cell(points=2, outputs=[PRINTED, result("2")])
    _add_verdict(cell, 2, 0, "the model was not handed in")
    assert cell.outputs[0].output_type == "error"
    assert "0 points" in cell.outputs[0].ename
    assert cell.outputs[0].evalue == "the model was not handed in"
    assert determine_grade(cell)[0] == 0


def test_partial_credit_from_the_clean_kernel_is_what_nbgrader_scores():
    cell = grade_cell(points=2, outputs=[PRINTED, result("2")])
    _add_verdict(cell, 2, 1, "accuracy 0.91")
    assert cell.outputs[0].output_type == "execute_result"
    assert determine_grade(cell)[0] == 1
    assert "1 points]\naccuracy 0.91" in cell.outputs[-1].text


def test_a_clean_score_as_high_is_only_shown():
    cell = grade_cell(points=2, outputs=[PRINTED])
    _add_verdict(cell, 2, 2, "passed")
    assert [o.output_type for o in cell.outputs] == ["stream", "stream"]
    assert determine_grade(cell)[0] == 2
    assert cell.outputs[-1].text.strip().endswith("passed")


def test_the_clean_run_is_scored_as_nbgrader_would():
    assert _score(grade_cell(outputs=[PRINTED]), 2) == 2
    assert _score(grade_cell(outputs=[PRINTED, ERROR]), 2) == 0
    assert _score(grade_cell(outputs=[result("1.5")]), 2) == 1.5
    assert _score(grade_cell(outputs=[result("7")]), 2) == 2
    assert _score(grade_cell(outputs=[result("-1")]), 2) == 0
    assert _score(grade_cell(outputs=[result("'a model'")]), 2) == 2


def test_the_clean_runs_message_is_its_printout_and_errors_not_stderr():
    noise = new_output("stream", name="stderr", text="oneDNN custom operations are on\n")
    cell = grade_cell(outputs=[PRINTED, noise, ERROR])
    assert _text(cell) == "accuracy 0.97\nAssertionError: too low"
    assert _text(grade_cell(outputs=[noise])) == ""


# --- feedback preprocessors -----------------------------------------------------------------


def hide(cell):
    cell, _ = HideTestCode(hidden_lines=[HIDDEN]).preprocess_cell(cell, {}, 0)
    return cell


def test_a_test_cells_traceback_is_cut_to_its_last_line():
    error = new_output(
        "error",
        ename="AssertionError",
        evalue="accuracy 0.80 is below 0.95",
        traceback=["Traceback (most recent call last)", f"----> 3 {HIDDEN}", "AssertionError"],
    )
    cell = hide(grade_cell(outputs=[error]))
    assert cell.outputs[0].traceback == ["AssertionError: accuracy 0.80 is below 0.95"]


def test_hidden_lines_are_removed_from_every_output_kind_of_every_cell():
    printed = new_output("stream", name="stdout", text=f"mine\n{HIDDEN}\nmine too\n")
    shown = result(f"x\n    {HIDDEN}  # quoted\n")
    shown.data["text/html"] = f"<pre>{HIDDEN}</pre>"
    shown.data["application/json"] = {"kept": True}
    error = new_output("error", ename="ValueError", evalue=HIDDEN, traceback=["a", HIDDEN, "b"])
    cell = hide(new_code_cell("print(captured)", outputs=[printed, shown, error]))
    assert cell.outputs[0].text == "mine\nmine too\n"
    assert cell.outputs[1].data == {
        "text/plain": "x\n",
        "text/html": "",
        "application/json": {"kept": True},
    }
    assert cell.outputs[2].evalue == "" and cell.outputs[2].traceback == ["a", "", "b"]
    markdown = new_markdown_cell(HIDDEN)
    assert hide(markdown).source == HIDDEN  # the instructions are not outputs


def test_hidden_tests_are_cleared_from_test_cells_and_a_student_cell_is_left_alone():
    tests = grade_cell()
    tests.source = f"check(model)\n### BEGIN HIDDEN TESTS\n{HIDDEN}\n### END HIDDEN TESTS\n"
    mine = new_code_cell("print(open('x').read().find('### BEGIN HIDDEN TESTS'))")
    nb = new_notebook(cells=[mine, tests])
    with pytest.raises(RuntimeError, match="hidden tests"):  # what nbgrader alone does
        ClearHiddenTests().preprocess(copy.deepcopy(nb), {})
    nb, _ = ClearHiddenTestsInTestCells().preprocess(nb, {})
    assert HIDDEN not in nb.cells[1].source and "check(model)" in nb.cells[1].source
    assert nb.cells[0] == mine


def name(cell, titles=None):
    cell, _ = NameParts(titles=titles or {}).preprocess_cell(cell, {}, 0)
    return cell.metadata.get("nbgrader", {})


def test_each_test_cell_gets_its_part_title_and_one_reason_line():
    titles = {"part_a_tests": "Part A: Look at the data"}
    lost = grade_cell(outputs=[PRINTED, ERROR])
    lost.metadata.nbgrader["score"] = 0
    assert name(lost, titles)["part_title"] == "Part A: Look at the data"
    assert name(lost, titles)["reason"] == "too low"
    printed = grade_cell("part_b_tests", outputs=[PRINTED])
    printed.metadata.nbgrader["score"] = 1
    assert name(printed)["part_title"] == "part_b_tests"  # no title known: its grade id
    assert name(printed)["reason"] == "accuracy 0.97"
    bare = grade_cell(outputs=[new_output("error", ename="KeyError", evalue="", traceback=[])])
    bare.metadata.nbgrader["score"] = 0
    assert name(bare)["reason"] == "KeyError"
    full = grade_cell(outputs=[PRINTED])
    full.metadata.nbgrader["score"] = 2
    assert name(full)["reason"] == ""
    answer = nbgrader_cell("x = 1", "part_a_answer", solution=True)
    assert "reason" not in name(answer)


# --- the master's hidden lines, and an LMS name ---------------------------------------------


def test_hidden_test_lines_are_the_long_lines_between_the_markers():
    source = (
        "visible_but_long_line = 1\n"
        "### BEGIN HIDDEN TESTS\n"
        f"    {HIDDEN}\n"
        "else:\n"
        "### END HIDDEN TESTS\n"
        "### BEGIN HIDDEN TESTS\n"
        "assert second_block_is_read\n"
        "### END HIDDEN TESTS\n"
    )
    assert hidden_test_lines([source, "no markers here at all"]) == [
        HIDDEN,
        "assert second_block_is_read",
    ]


def test_a_name_made_of_dots_is_never_a_student_id():
    assert lms.student_of(".._12345_678_cats_vs_dogs.ipynb") == "12345"


class FakeCleanKernel:
    """Stands in for grader.checker.CheckingKernel: each kernel's run follows ``plan``
    ("stops": raises as a dead kernel does, "not ready", "passes": every test passes)."""

    def __init__(self, plan: list[str], started: list):
        self.plan, self.started, self.stopped = plan, started, False
        started.append(self)

    def run(self, nb) -> None:
        what = self.plan.pop(0)
        if what == "not ready":
            raise NotReady("the clean kernel lacks what the grader gives it: no photos")
        if what == "stops":
            raise RuntimeError("Kernel died")
        for cell in nb.cells[1:]:
            cell.outputs = [new_output("stream", name="stdout", text="ok\n")]

    def fresh(self):
        return FakeCleanKernel(self.plan, self.started)

    def stop(self) -> None:
        self.stopped = True


@pytest.mark.parametrize(
    "plan, outcome",
    [
        (["passes"], "scored"),
        (["stops", "passes"], "scored"),  # a second try, in a fresh kernel
        (["stops", "stops"], "stopped"),  # the student's: their hand-in stops the checker
        (["not ready"], "problem"),  # the grader's
        (["stops", "not ready"], "problem"),
    ],
)
def test_a_clean_kernel_that_stops_gets_one_more_try_and_is_always_stopped(tmp_path, plan, outcome):
    from grader.checker import CleanKernelCheck

    (tmp_path / "model.json").write_text("1")
    started: list[FakeCleanKernel] = []
    master = load_master(SOURCE / ASSIGNMENT)
    check = CleanKernelCheck(FakeCleanKernel(list(plan), started), tmp_path, master)
    result = check.run_check()
    tests = [test.grade_id for test in master.tests]
    assert len(started) == min(len(plan), 2)
    assert all(kernel.stopped for kernel in started[1:])  # the grader stops the first
    if outcome == "scored":
        assert result.scores == {test.grade_id: test.points for test in master.tests}
        assert not result.problem and not result.stopped
    elif outcome == "stopped":
        assert result.scores == dict.fromkeys(tests, 0.0) and not result.problem
        assert "stopped while checking the hand-in, twice" in result.stopped
    else:
        assert result.problem.startswith("the clean kernel lacks") and not result.stopped


def test_the_graders_modules_name_no_lab_dataset_model_or_part():
    """What is lab-specific lives with the lab (grader/source/<lab>/) or in labchecks/."""
    words = [*find_labs(), "cats", "dogs", "mobilenet", "part_a", "part_e", "holdout_dir()"]
    for path in sorted((REPO / "grader").glob("*.py")):
        text = path.read_text().lower()
        named = [word for word in words if word.lower() in text]
        assert not named, f"{path.name} names {named}"
