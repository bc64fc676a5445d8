"""Committed notebooks are clean, and every Colab button points at its own notebook."""

import subprocess
import sys

import nbformat
import pytest

from course_tools import notebooks as tools

ALL = tools.course_notebooks()


def test_every_committed_notebook_is_clean_and_normalised():
    assert ALL, "no notebooks found"
    assert tools.apply(ALL, check=True) == 0, "run `make clean-notebooks`"


@pytest.mark.parametrize("path", ALL, ids=[p.name for p in ALL])
def test_colab_button_and_install_come_from_the_repository_setting(path):
    nb = nbformat.read(path, as_version=4)
    relative = path.relative_to(tools.REPO).as_posix()
    url = f"https://colab.research.google.com/github/{tools.repository()}/blob/main/{relative}"
    assert f'<a href="{url}">' in nb.cells[0].source
    setup = next(c.source for c in nb.cells if "setup_notebook(" in c.source)
    assert f"git+https://github.com/{tools.repository()}" in setup
    assert setup.index("google.colab") < setup.index("import tlcourse")
    # The set-up prints one line; a bare call would show its return value again below it.
    assert "tlcourse.setup_notebook();" in setup.splitlines()


def test_clean_strips_outputs_and_rewrites_a_moved_button(tmp_path):
    source = tools.REPO / "notebooks" / ALL[0].name
    nb = nbformat.read(source, as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", text="noise")]
    code.execution_count = 7
    code.metadata["execution"] = {"iopub.status.busy": "2026-01-01"}
    tools.clean(nb)
    tools.set_colab_button(nb, tools.REPO / "notebooks" / "renamed.ipynb", repo="me/course")
    tools.set_colab_install(nb, repo="me/course")
    tools.set_colab_install(nb, repo="me/course")  # idempotent
    assert code.outputs == [] and code.execution_count is None
    assert "execution" not in code.metadata
    assert "github/me/course/blob/main/notebooks/renamed.ipynb" in nb.cells[0].source
    setup = next(c.source for c in nb.cells if "setup_notebook(" in c.source)
    assert setup.count("google.colab") == 1 and "git+https://github.com/me/course" in setup


def test_lectures_carry_slide_metadata():
    for path in (tools.REPO / "notebooks").glob("*.ipynb"):
        cells = nbformat.read(path, as_version=4).cells
        kinds = [c.metadata.get("slideshow", {}).get("slide_type") for c in cells]
        assert None not in kinds and kinds[0] == "slide", path.name


def test_jupyterlab_presents_slides_offline_with_rise():
    """``make lab`` opens a JupyterLab with RISE (jupyterlab-rise, reveal.js bundled)."""
    listed = subprocess.run(
        [sys.executable, "-m", "jupyter", "labextension", "list"],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(l for l in (listed.stdout + listed.stderr).splitlines() if "jupyterlab-rise" in l)
    assert "enabled" in line and "OK" in line, line
