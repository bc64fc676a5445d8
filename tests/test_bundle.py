"""The student bundle (`python -m grader bundle`): complete, installable, and leak-free."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader.__main__ import main
from grader.bundle import write_bundle
from grader.config import REPO
from grader.master import find_labs
from tests.master_text import MASTERS, hidden_test_lines, solution_lines


def solution_blocks() -> list[list[str]]:
    """Each BEGIN/END SOLUTION block of the masters, as its non-trivial lines."""
    blocks: list[list[str]] = []
    cells = [cell for master in MASTERS for cell in nbformat.read(master, as_version=4).cells]
    for cell in cells:
        inside = False
        for line in cell.source.splitlines():
            if "BEGIN SOLUTION" in line:
                inside = True
                blocks.append([])
            elif "END SOLUTION" in line:
                inside = False
            elif inside and len(line.strip()) > 12:
                blocks[-1].append(line.strip())
    return [block for block in blocks if block]


def code_of(path: Path) -> str:
    """What runs: a notebook's code cells, or a .py file."""
    if path.suffix == ".py":
        return path.read_text()
    cells = nbformat.read(path, as_version=4).cells
    return "\n".join(cell.source for cell in cells if cell.cell_type == "code")


def text_files(root: Path) -> list[Path]:
    return [p for p in sorted(root.rglob("*")) if p.is_file() and p.suffix != ".png"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "course"
    assert main(["bundle", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def bundle_with_solutions(tmp_path_factory) -> Path:
    return write_bundle(tmp_path_factory.mktemp("bundle") / "course", with_solutions=True)


def test_bundle_holds_what_students_need_and_nothing_else(bundle):
    assert sorted(p.name for p in bundle.iterdir()) == [
        "README.md",
        "labs",
        "notebooks",
        "pyproject.toml",
        "requirements.txt",
        "tlcourse",
    ]
    for lab in find_labs():  # every lab, as students get it; no labchecks/, no grader/
        assert (bundle / "labs" / lab / f"{lab}.ipynb").is_file()
    assert f"{len(find_labs())} labs in `labs/`" in (bundle / "README.md").read_text()
    assert len(list((bundle / "notebooks").glob("*.ipynb"))) >= 9
    assert not list(bundle.rglob("__pycache__")) and not list(bundle.rglob("*.db"))
    assert "pip install -r requirements.txt -e ." in (bundle / "README.md").read_text()
    pins = (bundle / "requirements.txt").read_text()
    assert "tensorflow-cpu==" in pins and "jupyterlab==" in pins
    assert "nbgrader" not in pins and "pytest" not in pins


def test_no_hidden_test_and_no_solution_in_the_default_bundle(bundle):
    hidden, solution = hidden_test_lines(), solution_lines()
    assert hidden and solution
    for path in text_files(bundle):
        text = path.read_text()
        assert "HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text, path
        assert not [line for line in hidden if line in text], path
    # What runs in the lab and the package: not one line of any solution (the lab's markdown
    # may quote a line as an instruction).
    for path in [*bundle.joinpath("labs").rglob("*.ipynb"), *bundle.rglob("*.py")]:
        leaked = [line for line in solution if line in code_of(path)]
        assert not leaked, f"solution code in {path.relative_to(bundle)}: {leaked[:3]}"
    # The lectures teach the same Keras calls, so single lines may recur; no lecture holds
    # even half of any solution block.
    for path in bundle.joinpath("notebooks").glob("*.ipynb"):
        code = code_of(path)
        for block in solution_blocks():
            shared = [line for line in block if line in code]
            assert len(shared) * 2 < len(block), f"{path.name} holds a solution: {shared}"


def test_with_solutions_adds_solutions_and_still_no_hidden_test(bundle_with_solutions):
    out = bundle_with_solutions
    solutions = sorted(out.joinpath("solutions").rglob("*.ipynb"))
    assert [p.parent.name for p in solutions] == sorted(find_labs())
    code = "\n".join(code_of(solution) for solution in solutions)
    assert sum(line in code for line in solution_lines()) > 10
    assert "`solutions/`" in (out / "README.md").read_text()
    hidden = hidden_test_lines()
    for path in text_files(out):
        text = path.read_text()
        assert "HIDDEN TESTS" not in text and not [line for line in hidden if line in text], path


def test_bundle_refuses_a_folder_that_is_not_empty(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["bundle", str(tmp_path)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def pip(*args: str) -> subprocess.CompletedProcess:
    """pip offline: no index, no build isolation (the installed setuptools builds)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            *args,
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--disable-pip-version-check",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_bundled_pyproject_installs_tlcourse_alone(bundle, tmp_path):
    copy = shutil.copytree(bundle, tmp_path / "course")  # building writes into the folder
    run = pip("install", "--dry-run", "-e", str(copy))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Would install tlcourse-" in run.stdout
    run = pip("wheel", "--wheel-dir", str(tmp_path / "wheels"), str(copy))
    assert run.returncode == 0, run.stdout + run.stderr
    (wheel,) = (tmp_path / "wheels").glob("tlcourse-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "tlcourse/__init__.py" in names and "tlcourse/figures/__init__.py" in names
    assert {name.split("/")[0] for name in names if name.endswith(".py")} == {"tlcourse"}


def test_every_package_of_the_repository_is_installed():
    """pyproject.toml names its packages one by one: a new subpackage (tlcourse.checks) left
    out would be missing from a non-editable install, such as Colab's pip install."""
    import tomllib

    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for top in ("tlcourse", "labchecks", "grader", "course_tools")
        for init in (REPO / top).rglob("__init__.py")
    }
    assert on_disk == listed
