"""The lectures as slides: reveal.js decks that work offline, one HTML file each.

    python -m course_tools.slides [--out build/slides] [NOTEBOOK ...]   (make slides)

Each lecture is executed first, alone in an empty folder as Colab would open it, so its
slides show its outputs and figures. nbconvert's reveal.js exporter then renders it through
``templates/offline_reveal``, which writes reveal.js itself into the page instead of loading
it from a CDN: a deck needs no network, in a classroom without internet or on a laptop.
reveal.js comes from the npm registry once (``keras.utils.get_file``, Keras' cache).

To present a lecture live, open it in JupyterLab and press RISE's button (the
``jupyterlab-rise`` extension is installed with the course and bundles reveal.js too).
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "templates"
REVEAL_VERSION = "5.1.0"
REVEAL_URL = f"https://registry.npmjs.org/reveal.js/-/reveal.js-{REVEAL_VERSION}.tgz"
THEME = "white"
EXECUTION_TIMEOUT = 900  # s per cell: the lectures train small models on a CPU


@functools.cache
def reveal_js() -> dict[str, str]:
    """reveal.js's script, style sheet and theme, from the npm registry's package."""
    from tlcourse.downloads import CourseDataError, download

    try:
        archive = download(f"reveal.js-{REVEAL_VERSION}.tgz", REVEAL_URL)
    except CourseDataError as error:
        raise SystemExit(f"slides: reveal.js is needed once: {error}") from error
    with tarfile.open(archive) as package:

        def read(name: str) -> str:
            return package.extractfile(f"package/dist/{name}").read().decode()

        return {
            "js": read("reveal.js"),
            "css": read("reveal.css"),
            "theme": read(f"theme/{THEME}.css"),
        }


def executed(path: Path) -> nbformat.NotebookNode:
    """The notebook at ``path``, run top to bottom alone in an empty folder."""
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix="slides-") as folder:
        alone = Path(folder) / path.name
        shutil.copyfile(path, alone)
        nb = nbformat.read(alone, as_version=4)
        NotebookClient(
            nb,
            timeout=EXECUTION_TIMEOUT,
            kernel_name="python3",
            resources={"metadata": {"path": folder}},
        ).execute()
    return nb


def deck(nb: nbformat.NotebookNode, title: str) -> str:
    """The HTML of ``nb``'s slides, with everything it needs inside (the Colab button, an
    image from the web, is left out)."""
    from nbconvert import SlidesExporter

    from .notebooks import BUTTON

    nb = nbformat.from_dict(nb)
    nb.cells[0].source = BUTTON.sub("", nb.cells[0].source).rstrip()

    exporter = SlidesExporter(
        template_name="offline_reveal",
        extra_template_basedirs=[str(TEMPLATES)],
        reveal_url_prefix="data:text/css,",  # the base template's <link>s: empty sheets
        reveal_theme=THEME,
    )
    html, _ = exporter.from_notebook_node(
        nb, resources={"metadata": {"name": title}, "offline_reveal": reveal_js()}
    )
    return html


def write_decks(paths: list[Path], out: Path) -> list[Path]:
    """Execute each notebook and write its deck into ``out``; return the decks."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        target = out / f"{path.stem}.slides.html"
        target.write_text(deck(executed(path), path.stem), encoding="utf-8")
        print(f"wrote {target}", flush=True)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_tools.slides", description=__doc__)
    parser.add_argument("paths", nargs="*", type=Path, help="lectures (default: all)")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "slides")
    args = parser.parse_args(argv)
    write_decks(args.paths or sorted((REPO / "notebooks").glob("*.ipynb")), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
