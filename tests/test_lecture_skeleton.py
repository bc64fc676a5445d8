"""Every lecture notebook follows the course skeleton (fast: reads the files, runs nothing)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
REPOSITORY = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["tlcourse"]["repository"]
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


def markdown(cell) -> bool:
    return cell.cell_type == "markdown"


def headings(source: str, level: int) -> list[str]:
    """Markdown headings of exactly ``level`` outside fenced code blocks."""
    found, fenced = [], False
    for line in source.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(rf"#{{{level}}} \S", line):
            found.append(line[level + 1 :].strip())
    return found


def section(nb, title: str) -> int:
    """Index of the markdown cell that opens with ``## title``; fails if there is none."""
    for index, cell in enumerate(nb.cells):
        if markdown(cell) and cell.source.lstrip().startswith(f"## {title}"):
            return index
    pytest.fail(f"no markdown cell starting with '## {title}'")


def test_notebooks_exist_and_are_numbered_without_gaps():
    assert NOTEBOOKS, "notebooks/ holds no lecture notebook"
    numbers = []
    for path in NOTEBOOKS:
        match = re.fullmatch(r"(\d\d)_[a-z0-9_]+\.ipynb", path.name)
        assert match, f"{path.name}: expected NN_short_name.ipynb"
        numbers.append(int(match.group(1)))
    assert numbers == list(range(1, len(numbers) + 1)), f"numbers with gaps: {numbers}"


@pytest.fixture(params=NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def notebook(request) -> tuple[Path, nbformat.NotebookNode]:
    path = request.param
    return path, nbformat.read(path, as_version=4)


def test_title_and_colab_button(notebook):
    path, nb = notebook
    titles = [
        (index, title)
        for index, cell in enumerate(nb.cells)
        if markdown(cell)
        for title in headings(cell.source, 1)
    ]
    assert len(titles) == 1 and titles[0][0] == 0, f"H1 headings (cell, title): {titles}"
    url = f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/notebooks/{path.name}"
    button = f'<a href="{url}"><img src="{BADGE}" alt="Open In Colab"/></a>'
    assert button in nb.cells[0].source.splitlines(), f"cell 0 lacks the line {button}"


def test_overview_setup_summary_exercises(notebook):
    _, nb = notebook
    overview = nb.cells[section(nb, "Overview")]
    assert "Learning objectives" in overview.source

    setup = section(nb, "Setup")
    assert nb.cells[setup + 1].cell_type == "code", "## Setup must be followed by a code cell"
    calls = [
        cell
        for cell in nb.cells
        if cell.cell_type == "code" and "tlcourse.setup_notebook(" in cell.source
    ]
    assert calls == [nb.cells[setup + 1]], "exactly one setup_notebook() call, right after Setup"

    section(nb, "Summary")
    exercises = nb.cells[section(nb, "Exercises")].source
    solutions = exercises.count("<details><summary>Solution</summary>")
    assert 2 <= solutions <= 4, f"{solutions} solutions in ## Exercises; expected 2 to 4"
    assert exercises.count("</details>") == solutions


def test_no_outputs_and_normalised_json(notebook):
    path, nb = notebook
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"cell {index} has outputs"
            assert cell.execution_count is None, f"cell {index} has an execution count"
    nbformat.validate(nb)
    assert nb.nbformat == 4 and nb.nbformat_minor >= 5
    text = path.read_text(encoding="utf-8")
    assert text == nbformat.writes(nb) + "\n", "write the file with nbformat.write"


def test_the_exercise_runner_takes_the_solution_code_of_the_exercises_only():
    """course_tools.exercises (make exercises) runs the ``python`` blocks of the Exercises
    section, in order, and nothing before it."""
    from course_tools.exercises import exercise_blocks

    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("## Part one\n\n```python\nnot_an_exercise()\n```"),
            nbformat.v4.new_markdown_cell(
                "## Exercises\n\n**1.** Do it.\n\n<details><summary>Solution</summary>\n\n"
                "```python\nfirst = 1\n```\n</details>\n\n**2.** Then this.\n\n"
                "<details><summary>Solution</summary>\n\n```python\nsecond = first + 1\n```\n"
                "About 2.\n</details>"
            ),
        ]
    )
    assert exercise_blocks(nb) == ["first = 1\n", "second = first + 1\n"]
