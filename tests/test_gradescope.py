"""Gradescope: the autograder zip's run_autograder, run in a folder laid out as Gradescope
lays out /autograder and in a home as its setup.sh leaves the image (online, no offline
mirror: the photos and weights in the Keras cache, the held-out photos and features in the
course cache), grades the worked solution and the untouched lab with this grader and writes
results.json with the fields Gradescope documents."""

from __future__ import annotations

import json
import shutil
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
from tests.conftest import HOME, SESSION_DIR, run_as_user, user_environment
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


@pytest.fixture(scope="module")
def image_home(tmp_path_factory, offline_mirror) -> Path:
    """A home as setup.sh leaves Gradescope's image, online: ~/.keras holds the photos' ZIP
    (extracted where Keras extracts it) and the weights, as keras.utils.get_file leaves them
    (here from file:// addresses: no network is needed, and the sandbox has none);
    ~/.cache/tlcourse the held-out photos where the lab exports them and the features (this
    session's, when earlier tests computed them). No offline mirror, no KERAS_HOME."""
    import zipfile as zip_files

    home = tmp_path_factory.mktemp("image-home")
    cache = home / ".cache" / "tlcourse"
    if (HOME / ".cache" / "tlcourse").is_dir():
        shutil.copytree(HOME / ".cache" / "tlcourse", cache)
    shutil.copytree(
        offline_mirror / "holdout", cache / "holdout_oxford_iiit_pet", dirs_exist_ok=True
    )
    archive = home.parent / "cats_and_dogs_filtered.zip"
    with zip_files.ZipFile(archive, "w") as zipped:
        for path in sorted((offline_mirror / "cats_and_dogs_filtered").rglob("*.jpg")):
            zipped.write(path, path.relative_to(offline_mirror).as_posix())
    weights = next((offline_mirror / "keras" / "models").glob("*.h5"))
    warm = (
        "import keras\n"
        f"keras.utils.get_file('cats_and_dogs_filtered.zip', origin={archive.as_uri()!r}, extract=True)\n"
        f"keras.utils.get_file({weights.name!r}, origin={weights.as_uri()!r}, cache_subdir='models')\n"
    )
    made = run_as_user(["-c", warm], user_environment(home))
    assert made.returncode == 0, made.stderr
    return home


def run_autograder(
    autograder: Path, home: Path, tmp_path: Path, notebook: Path
) -> tuple[dict, str]:
    """results.json and what run_autograder printed."""
    root = tmp_path / "autograder"  # as /autograder: source/, submission/, results/
    (root / "submission").mkdir(parents=True)
    (root / "source").symlink_to(autograder / "source")
    notebook.rename(root / "submission" / "lab.ipynb")
    env = user_environment(home, GRADESCOPE_ROOT=str(root))
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
def test_run_autograder_grades_the_solution_and_the_untouched_lab(
    autograder, image_home, tmp_path, report
):
    master = load_master(SOURCE / LAB)
    started = time.perf_counter()
    solution, _ = run_autograder(
        autograder, image_home, tmp_path / "a", build_one("solution", tmp_path)
    )
    report(f"{time.perf_counter() - started:7.1f} s  Gradescope's run_autograder, the solution")
    untouched, log = run_autograder(
        autograder, image_home, tmp_path / "b", build_one("untouched", tmp_path)
    )
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
