"""The master notebook, and the student and solution copies generated from it."""

import re

import nbformat
import pytest

from grader import release
from grader.config import REPO
from grader.master import SOURCE, find_labs
from tests.master_text import hidden_test_lines, solution_lines

LABS = sorted(find_labs())  # every lab of grader/source/
each_lab = pytest.mark.parametrize("lab", LABS)


def master(lab: str):
    return SOURCE / lab / f"{lab}.ipynb"


def student(lab: str):
    return REPO / "labs" / lab / f"{lab}.ipynb"


def solution(lab: str):
    return REPO / "solutions" / lab / f"{lab}.ipynb"


def code_of(path) -> str:
    """The source of every code cell of a notebook."""
    cells = nbformat.read(path, as_version=4).cells
    return "\n".join(c.source for c in cells if c.cell_type == "code")


def test_generated_copies_are_up_to_date(tmp_path):
    written = release.generate(tmp_path)
    assert len(written) == 2 * len(LABS) and len(LABS) >= 2
    for root in (tmp_path, REPO):  # a lab's spec is the grader's: never released
        assert not [*(root / "labs").rglob("lab.toml"), *(root / "solutions").rglob("lab.toml")]
    for lab in LABS:
        for kind, committed in (("labs", student(lab)), ("solutions", solution(lab))):
            fresh = tmp_path / kind / lab / f"{lab}.ipynb"
            assert fresh.read_text() == committed.read_text(), (
                f"{committed.relative_to(REPO)} is stale: run `python -m grader release`"
            )


@each_lab
@pytest.mark.parametrize("kind", [student, solution], ids=["labs", "solutions"])
def test_no_hidden_test_reaches_students(lab, kind):
    path = kind(lab)
    text = path.read_text() + code_of(path)
    hidden = hidden_test_lines()
    assert hidden, "the master should hold hidden tests"
    assert "HIDDEN TESTS" not in text
    leaked = [line for line in hidden if line in text]
    assert not leaked, f"hidden test code in {path.name}: {leaked[:3]}"


@each_lab
def test_student_notebook_holds_no_solution_code(lab):
    text = code_of(student(lab))  # the instructions (markdown) may show a line or two
    solutions = solution_lines([master(lab)])
    assert solutions
    leaked = [line for line in solutions if line in text]
    assert not leaked, f"solution code in labs/: {leaked[:3]}"
    assert text.count("raise NotImplementedError()") == len(
        [
            c
            for c in nbformat.read(master(lab), 4).cells
            if c.metadata.get("nbgrader", {}).get("solution")
        ]
    )


@each_lab
def test_solution_notebook_holds_the_solutions(lab):
    text = code_of(solution(lab))
    assert all(line in text for line in solution_lines([master(lab)]))


# Lab 1's Part E answer is followed by a locked cell that shows the misclassified photos; its
# only check is the hidden test's held-out accuracy (README promises a self-check elsewhere).
WITHOUT_SELF_CHECK = {"cats_vs_dogs": {"E"}}


@each_lab
def test_each_part_has_answer_self_check_and_locked_tests_worth_its_points(lab):
    cells = nbformat.read(master(lab), as_version=4).cells
    headings = [
        (i, c)
        for i, c in enumerate(cells)
        if c.cell_type == "markdown" and c.source.startswith("## Part ")
    ]
    assert [c.source[8] for _, c in headings] == list("ABCDEFGH"[: len(headings)])
    for number, (index, heading) in enumerate(headings):
        end = headings[number + 1][0] if number + 1 < len(headings) else len(cells)
        part = cells[index:end]
        meta = [c.metadata.get("nbgrader", {}) for c in part]
        kinds = [
            "answer"
            if m.get("solution")
            else "test"
            if m.get("grade")
            else "locked"
            if m.get("locked")
            else ""
            for m in meta
        ]
        after = kinds.index("answer") + 1  # the answer is followed by a locked cell ...
        assert kinds[after] == "locked", heading.source
        letter = heading.source[8]  # ... its self-check, except where the master has none
        has_check = part[after].source.startswith("# Self-check")
        assert has_check == (letter not in WITHOUT_SELF_CHECK.get(lab, ())), heading.source
        tests = [m for m in meta if m.get("grade")]
        assert tests and all(m["locked"] for m in tests)
        points = int(re.match(r"## Part \w \((\d+) points?\)", heading.source).group(1))
        assert sum(m["points"] for m in tests) == points


@each_lab
def test_master_states_the_model_contract(lab):
    text = "\n".join(c.source for c in nbformat.read(master(lab), as_version=4).cells)
    for phrase in ("model contract", "(224, 224, 3)", "[0, 255]", "probability", "**dog**"):
        assert phrase in text


@each_lab
@pytest.mark.parametrize("kind", [master, student, solution], ids=["master", "labs", "solutions"])
def test_committed_lab_notebooks_are_clean_and_normalised(lab, kind):
    path = kind(lab)
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    assert path.read_text() == nbformat.writes(nb) + "\n"
