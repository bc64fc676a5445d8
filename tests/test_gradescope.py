"""Gradescope: the autograder zip's run_autograder, run in a folder laid out as Gradescope
lays out /autograder, grades the worked solution and the untouched lab with this grader and
writes results.json with the fields Gradescope documents."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from grader.checker import CLEAN_VERDICT
from grader.gradescope import STUDENT, build_autograder, results_json
from grader.master import SOURCE, load_master
from grader.records import GRADED, Record, write_record
from tests.conftest import SESSION_DIR, user_environment
from tests.submissions.build import build_one

LAB = "cats_vs_dogs"
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}  # Gradescope's values


@pytest.fixture(scope="module")
def autograder(tmp_path_factory) -> Path:
    """The zip, unpacked as Gradescope unpacks it into /autograder/source."""
    root = tmp_path_factory.mktemp("autograder")
    archive = build_autograder(LAB, root / "autograder.zip")
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
        assert {"setup.sh", "run_autograder"} <= set(names)
        assert not [n for n in names if "tests/" in n or "solutions/" in n or n.endswith(".db")]
        for name in ("setup.sh", "run_autograder"):
            assert stat.S_IMODE(zipped.getinfo(name).external_attr >> 16) & 0o111
        zipped.extractall(root / "source")
    return root


def run_autograder(autograder: Path, tmp_path: Path, notebook: Path) -> tuple[dict, str]:
    """results.json and what run_autograder printed."""
    root = tmp_path / "autograder"  # as /autograder: source/, submission/, results/
    (root / "submission").mkdir(parents=True)
    (root / "source").symlink_to(autograder / "source")
    notebook.rename(root / "submission" / "lab.ipynb")
    env = user_environment(
        GRADESCOPE_ROOT=str(root), COURSE_OFFLINE_DIR=os.environ["COURSE_OFFLINE_DIR"]
    )
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # the image's python3
    run = subprocess.run(
        ["bash", str(root / "source" / "run_autograder")],
        check=False,
        env=env,
        cwd=SESSION_DIR,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    assert isinstance(results["score"], int | float) and results["visibility"] in VISIBILITY
    for test in results["tests"]:
        assert set(test) >= {"name", "score", "max_score", "output", "visibility"}
        assert test["visibility"] in VISIBILITY and 0 <= test["score"] <= test["max_score"]
    return results, run.stdout


@pytest.mark.slow
def test_run_autograder_grades_the_solution_and_the_untouched_lab(autograder, tmp_path, report):
    master = load_master(SOURCE / LAB)
    started = time.perf_counter()
    solution, _ = run_autograder(autograder, tmp_path / "a", build_one("solution", tmp_path))
    report(f"{time.perf_counter() - started:7.1f} s  Gradescope's run_autograder, the solution")
    untouched, log = run_autograder(autograder, tmp_path / "b", build_one("untouched", tmp_path))
    assert solution["score"] == master.max_score
    assert untouched["score"] == 0
    # --no-sandbox (no user namespaces there): plain kernels, and the log says so.
    assert "NOT sandboxed: trusted notebooks only" in log and f"{STUDENT} ... 0 points" in log
    titles = [test["name"] for test in solution["tests"]]
    assert titles == [master.part_titles[part] for part in master.parts]
    measured = {t.part for t in master.tests if t.grade_id in master.spec.measured}
    for part, test in zip(master.parts, solution["tests"]):
        assert test["max_score"] == master.parts[part] == test["score"]
        assert test["visibility"] == ("after_published" if part in measured else "visible")
    held_out = solution["tests"][list(master.parts).index(next(iter(measured)))]
    assert "%" in held_out["output"], held_out  # the held-out accuracy, once published
    assert all(test["output"] for test in untouched["tests"])  # why each part lost its points
    hidden = master.hidden_lines
    for test in solution["tests"] + untouched["tests"]:
        assert not [line for line in hidden if line in test["output"]]


def test_results_json_has_a_test_per_part_with_why_and_the_held_out_part_after_publishing(
    tmp_path,
):
    """From a record and an autograded notebook written here: Gradescope's fields."""
    import nbformat

    master = load_master(SOURCE / LAB)
    nb = nbformat.v4.new_notebook(cells=[])
    for test in master.tests:
        cell = nbformat.v4.new_code_cell(
            test.source, metadata={"nbgrader": {"grade_id": test.grade_id}}
        )
        if test.part in ("part_b", "part_c"):  # failed: a message; one quoting hidden code
            said = "train the head" if test.part == "part_b" else master.hidden_lines[0]
            cell.outputs = [
                nbformat.v4.new_output("error", ename="AssertionError", evalue=said, traceback=[])
            ]
        if test.grade_id in master.spec.measured:
            said = f"handed in\n\n{CLEAN_VERDICT}: 2 points]\nheld-out 98.4 %\n"  # as checked
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=said)]
        nb.cells.append(cell)
    (tmp_path / "autograded").mkdir()
    nbformat.write(nb, tmp_path / "autograded" / f"{STUDENT}.ipynb")
    scores = {**master.parts, "part_b": 0.0}
    write_record(tmp_path, Record(STUDENT, GRADED, "d", scores, "a note"))
    results = results_json(tmp_path, master)
    assert results["score"] == master.max_score - master.parts["part_b"]
    assert results["output"] == "a note"
    by_part = dict(zip(master.parts, results["tests"]))
    assert (
        by_part["part_b"]["score"] == 0 and by_part["part_b"]["max_score"] == master.parts["part_b"]
    )
    assert by_part["part_b"]["output"] == "AssertionError: train the head"
    assert by_part["part_c"]["output"] == ""  # never a line of the hidden tests
    measured = next(t.part for t in master.tests if t.grade_id in master.spec.measured)
    assert by_part[measured]["output"] == "held-out 98.4 %"
    assert by_part[measured]["visibility"] == "after_published"
    assert {t["visibility"] for p, t in by_part.items() if p != measured} == {"visible"}
