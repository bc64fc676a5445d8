"""Every lecture notebook and each lab's worked solution run top to bottom offline, opened
alone, in the pinned versions and in Colab's; every diagram a lecture shows is inside it,
drawn by the course's own code.

The execution test is slow (it runs the notebooks on the real photos): ``pytest -m slow``.
Each notebook is copied alone into an empty folder first, as Colab or a downloaded copy
opens it, and runs in each version. The runs of the notebooks the session selects go two at
a time, one kernel each (the machine's two cores; every notebook in the pinned versions
first, then in Colab's), and share the feature cache of the session's home. Each run's wall
time is printed in the summary at the end of the run.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.pyplot as plt
import nbclient
import nbformat
import numpy as np
import pytest

from course_tools import slides
from course_tools.notebooks import FIGURE, course_notebooks, figures
from tests.conftest import SESSION_DIR
from tlcourse.figures import registry

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
RUNNABLE = [*NOTEBOOKS, *sorted((REPO / "solutions").glob("*/*.ipynb"))]  # lectures, labs
IMAGE = re.compile(r"!\[[^\]]*\]\((?P<markdown>[^ )]+)|<img [^>]*src=\"(?P<html>[^\"]+)\"")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXECUTED = SESSION_DIR / "executed"  # the lectures as the run test left them, for the decks
DECK_LECTURE = "02_lenet5.ipynb"  # a short lecture with a diagram


@pytest.fixture(scope="session")
def colab_kernel(colab_python):
    """A kernel spec, ``colab``, that runs the Python of Colab's versions."""
    spec = SESSION_DIR / "jupyter" / "kernels" / "colab"
    spec.mkdir(parents=True, exist_ok=True)
    argv = [str(colab_python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Colab versions"}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(spec.parent.parent))
        yield "colab"


async def _execute(client: nbclient.NotebookClient, name: str, report) -> str:
    """Run ``client``'s notebook; "" or where it failed. Its time goes to the report. A
    kernel that dies before it answers (before any cell: not the notebook's doing; seen once
    in CI, two kernels starting at once) is started once more, and the report says so."""
    start = time.perf_counter()
    try:
        try:
            await client.async_execute()
        except RuntimeError as error:
            if "before replying to kernel_info" not in str(error):
                raise
            report(f"          {client.kernel_name:7}  {name}: kernel died at start, started again")
            client.km = None  # a new kernel manager, a new kernel
            await client.async_execute()
        return ""
    except nbclient.exceptions.CellExecutionError as error:
        cells = enumerate(client.nb.cells)
        index = next((i for i, c in cells if c.cell_type == "code" and _failed(c)), "?")
        return f"{name} ({client.kernel_name}), cell {index}:\n{error}"
    finally:
        report(f"{time.perf_counter() - start:7.1f} s  {client.kernel_name:7}  {name}")


def _failed(cell) -> bool:
    return any(output.get("output_type") == "error" for output in cell.outputs)


def _kernels(path: Path, colab: str) -> tuple[str, ...]:
    """A lecture runs in both versions; a lab's worked solution in Colab's only (in the
    pinned ones its run is its grading: tests/test_grading.py, tests/test_grading_lab2.py)."""
    return (colab,) if path.parent.parent.name == "solutions" else ("python3", colab)


@pytest.fixture(scope="session")
def notebook_runs(request, colab_kernel, offline_mirror, report, tmp_path_factory) -> dict:
    """Every selected notebook run alone in an empty folder, in each of its versions, two
    runs at a time: ``{name: [where each failing run failed]}``."""
    selected = [
        item.callspec.params["path"]
        for item in request.session.items
        if item.originalname == "test_notebook_runs_alone_in_both_versions"
    ]
    runs = [(path, kernel) for kernel in ("python3", colab_kernel) for path in selected]
    runs = [(path, kernel) for path, kernel in runs if kernel in _kernels(path, colab_kernel)]
    problems: dict[str, list[str]] = {path.name: [] for path in selected}
    slots = asyncio.Semaphore(2)

    async def run(path: Path, kernel: str) -> None:
        folder = tmp_path_factory.mktemp(f"{path.stem}-{kernel}")
        shutil.copyfile(path, folder / path.name)
        nb = nbformat.read(folder / path.name, as_version=4)
        client = nbclient.NotebookClient(
            nb, timeout=900, kernel_name=kernel, resources={"metadata": {"path": str(folder)}}
        )
        async with slots:
            problem = await _execute(client, path.name, report)
        if problem:
            problems[path.name].append(problem)
        elif kernel == _kernels(path, colab_kernel)[0]:  # the deck test's copy
            EXECUTED.mkdir(exist_ok=True)
            nbformat.write(client.nb, EXECUTED / path.name)

    async def all_runs() -> None:
        await asyncio.gather(*(run(path, kernel) for path, kernel in runs))

    asyncio.run(all_runs())
    return problems


@pytest.mark.slow
@pytest.mark.parametrize("path", RUNNABLE, ids=[path.name for path in RUNNABLE])
def test_notebook_runs_alone_in_both_versions(path: Path, notebook_runs: dict) -> None:
    """The notebook, alone in an empty folder and offline, runs top to bottom in the pinned
    versions and in Colab's (a lab's worked solution: in Colab's; see :func:`_kernels`)."""
    assert not notebook_runs[path.name], "\n\n".join(notebook_runs[path.name])


@pytest.mark.parametrize("path", course_notebooks(), ids=lambda p: p.name)
def test_every_image_is_inside_the_notebook_or_on_the_web(path: Path) -> None:
    """No image needs a file beside the notebook: diagrams are PNG data, and the one web
    image is the Colab badge."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert "Image(" not in cell.source, f"{path.name}: an image read from a file"
            continue
        for match in IMAGE.finditer(cell.source):
            address = match["markdown"] or match["html"]
            if address.startswith("https://"):
                continue
            assert address.startswith("data:image/png;base64,"), f"{path.name}: {address[:60]}"
            assert base64.b64decode(address.split(",", 1)[1]).startswith(PNG_SIGNATURE)


def test_the_diagrams_are_those_the_course_code_draws(tmp_path: Path) -> None:
    """``make figures`` on copies of the notebooks changes nothing, and every figure the
    course can draw is shown somewhere."""
    copies = []
    for path in course_notebooks():
        copies.append(tmp_path / f"{len(copies)}-{path.name}")
        shutil.copyfile(path, copies[-1])
    assert figures(copies) == [], "run `make figures`: a diagram differs from its code"
    shown = set()
    for path in copies:
        for cell in nbformat.read(path, as_version=4).cells:
            shown |= {m["drawn"] or m["new"] for m in FIGURE.finditer(cell.source)}
    assert shown == set(registry()), f"drawn but never shown: {set(registry()) - shown}"


class SectionFinder(HTMLParser):
    """Where (horizontal, vertical index) the first diagram of a reveal.js deck is."""

    def __init__(self):
        super().__init__()
        self.depth, self.h, self.v, self.found = 0, -1, -1, None

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            self.depth += 1
            if self.depth == 1:
                self.h, self.v = self.h + 1, -1
            elif self.depth == 2:
                self.v += 1
        source = dict(attrs).get("src", "")
        if tag == "img" and source.startswith("data:image/png") and self.found is None:
            self.found = (self.h, max(self.v, 0), source)

    def handle_endtag(self, tag):
        if tag == "section":
            self.depth -= 1


def browse(deck: Path, hash_: str, tmp_path: Path, name: str) -> tuple[str, np.ndarray]:
    """Chromium, headless and with no network at all, on ``deck#hash_``: (DOM, screenshot)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        problem = "Debian's chromium is not installed (apt install chromium)"
        pytest.fail(problem) if os.environ.get("CI") else pytest.skip(problem)
    offline = ["unshare", "--net"] if os.geteuid() == 0 else []
    common = [*offline, chromium, "--headless", "--no-sandbox", "--disable-gpu"]
    common += ["--window-size=1280,900", "--virtual-time-budget=4000", f"{deck.as_uri()}{hash_}"]
    dom = subprocess.run(
        [*common[:-1], "--dump-dom", common[-1]],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    shot = tmp_path / f"{name}.png"
    subprocess.run(
        [*common[:-1], f"--screenshot={shot}", common[-1]],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return dom, plt.imread(shot)


@pytest.mark.slow
def test_a_deck_works_offline_and_shows_its_diagram(tmp_path: Path) -> None:
    """A lecture's deck, opened in a real browser with no network: reveal.js starts, and the
    slide with the diagram shows it (the same slide with the diagram blanked looks different)."""
    lecture = NOTEBOOK_DIR / DECK_LECTURE
    saved = EXECUTED / DECK_LECTURE
    nb = nbformat.read(saved, as_version=4) if saved.exists() else slides.executed(lecture)
    assert any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")
    html = slides.deck(nb, lecture.stem)
    finder = SectionFinder()
    finder.feed(html)
    assert finder.found, "the deck has no diagram"
    h, v, diagram = finder.found
    blank = base64.b64encode(blank_png()).decode()
    decks = {"deck": html, "blanked": html.replace(diagram, f"data:image/png;base64,{blank}")}
    shots = {}
    for name, text in decks.items():
        path = tmp_path / f"{name}.html"
        path.write_text(text, encoding="utf-8")
        dom, shots[name] = browse(path, f"#/{h}/{v}", tmp_path, name)
        assert re.search(r'<div class="reveal [^"]*\bready\b', dom), "reveal.js did not start"
    changed = np.abs(shots["deck"] - shots["blanked"]).max(axis=-1) > 0.1
    assert changed.mean() > 0.01, "the diagram's slide looks the same without it"


def blank_png() -> bytes:
    """A 1x1 white PNG."""
    buffer = io.BytesIO()
    plt.imsave(buffer, np.ones((1, 1, 3)), format="png")
    return buffer.getvalue()
