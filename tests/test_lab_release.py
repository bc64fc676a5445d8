"""The master notebook, and the student and solution copies generated from it."""

import re

import nbformat
import pytest

from grader import release
from grader.config import MASTER, REPO
from tests.master_text import hidden_test_lines, solution_lines

LAB = REPO / "labs" / "cats_vs_dogs" / "cats_vs_dogs.ipynb"
SOLUTION = REPO / "solutions" / "cats_vs_dogs" / "cats_vs_dogs.ipynb"


def code_of(path) -> str:
    """The source of every code cell of a notebook."""
    cells = nbformat.read(path, as_version=4).cells
    return "\n".join(c.source for c in cells if c.cell_type == "code")


def test_generated_copies_are_up_to_date(tmp_path):
    written = release.generate(tmp_path)
    assert len(written) == 2
    for kind, committed in (("labs", LAB), ("solutions", SOLUTION)):
        fresh = tmp_path / kind / "cats_vs_dogs" / "cats_vs_dogs.ipynb"
        assert fresh.read_text() == committed.read_text(), (
            f"{committed.relative_to(REPO)} is stale: run `python -m grader release`"
        )


@pytest.mark.parametrize("path", [LAB, SOLUTION], ids=["labs", "solutions"])
def test_no_hidden_test_reaches_students(path):
    text = path.read_text() + code_of(path)
    hidden = hidden_test_lines()
    assert hidden, "the master should hold hidden tests"
    assert "HIDDEN TESTS" not in text
    leaked = [line for line in hidden if line in text]
    assert not leaked, f"hidden test code in {path.name}: {leaked[:3]}"


def test_student_notebook_holds_no_solution_code():
    text = code_of(LAB)  # the instructions (markdown) may show a line or two on purpose
    solution = solution_lines()
    assert solution
    leaked = [line for line in solution if line in text]
    assert not leaked, f"solution code in labs/: {leaked[:3]}"
    assert text.count("raise NotImplementedError()") == len(
        [
            c
            for c in nbformat.read(MASTER, 4).cells
            if c.metadata.get("nbgrader", {}).get("solution")
        ]
    )


def test_solution_notebook_holds_the_solutions():
    text = code_of(SOLUTION)
    assert all(line in text for line in solution_lines())


# Part E's answer is followed by a locked cell that shows the misclassified photos; its only
# check is the hidden test's held-out accuracy (README promises a self-check for every part).
WITHOUT_SELF_CHECK = {"E"}


def test_each_part_has_answer_self_check_and_locked_tests_worth_its_points():
    cells = nbformat.read(MASTER, as_version=4).cells
    headings = [
        (i, c)
        for i, c in enumerate(cells)
        if c.cell_type == "markdown" and c.source.startswith("## Part ")
    ]
    assert [c.source[8] for _, c in headings] == list("ABCDEF")
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
        assert has_check == (letter not in WITHOUT_SELF_CHECK), heading.source
        tests = [m for m in meta if m.get("grade")]
        assert tests and all(m["locked"] for m in tests)
        points = int(re.match(r"## Part \w \((\d+) points?\)", heading.source).group(1))
        assert sum(m["points"] for m in tests) == points


def test_master_states_the_model_contract():
    text = "\n".join(c.source for c in nbformat.read(MASTER, as_version=4).cells)
    for phrase in ("model contract", "(224, 224, 3)", "[0, 255]", "probability", "**dog**"):
        assert phrase in text


@pytest.mark.parametrize("path", [MASTER, LAB, SOLUTION], ids=["master", "labs", "solutions"])
def test_committed_lab_notebooks_are_clean_and_normalised(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    assert path.read_text() == nbformat.writes(nb) + "\n"
