"""Keep the committed notebooks clean: no outputs, normalised JSON, right Colab buttons, slide
metadata, diagrams drawn by the course's code (decks: course_tools.slides).

    python -m course_tools.notebooks clean [--check]  # outputs, JSON, Colab buttons, slides
    python -m course_tools.notebooks figures          # redraw the diagrams inside the notebooks

The Colab buttons are written from one setting: ``[tool.tlcourse] repository`` in
pyproject.toml (the repository's GitHub ``owner/name``).
"""

from __future__ import annotations

import argparse
import base64
import re
import sys
import tomllib
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
FOLDERS = ("notebooks", "labs", "solutions", "grader/source")
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BUTTON = re.compile(
    r'<a href="https://colab\.research\.google\.com/github/[^"]*">'
    r'<img src="[^"]*colab-badge\.svg"[^>]*/?></a>'
)
COLAB_INSTALL = re.compile(r"# On Colab: install.*?importlib\.invalidate_caches\(\)\n", re.DOTALL)
VOLATILE_METADATA = ("execution", "collapsed", "scrolled", "ExecuteTime")
# A diagram in a markdown cell: ``![alt](figure:NAME)`` as written, then the PNG itself as
# the image's address, with NAME as its title, once ``figures`` has drawn it.
FIGURE = re.compile(
    r"!\[(?P<alt>[^\]]*)\]\((?:figure:(?P<new>[\w-]+)"
    r'|data:image/png;base64,[A-Za-z0-9+/=]+ "(?P<drawn>[\w-]+)")\)'
)


def repository() -> str:
    """The ``owner/name`` every Colab button points to."""
    with open(REPO / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["tool"]["tlcourse"]["repository"]


def course_notebooks() -> list[Path]:
    """Every committed notebook of the course."""
    found = []
    for folder in FOLDERS:
        found += sorted((REPO / folder).rglob("*.ipynb"))
    return [p for p in found if ".ipynb_checkpoints" not in p.parts]


def colab_url(path: Path, repo: str | None = None) -> str:
    """The Colab address of a notebook at ``path`` in this repository."""
    relative = Path(path).resolve().relative_to(REPO).as_posix()
    return f"https://colab.research.google.com/github/{repo or repository()}/blob/main/{relative}"


def colab_button(url: str) -> str:
    return f'<a href="{url}"><img src="{BADGE}" alt="Open In Colab"/></a>'


def set_colab_button(nb, path: Path, repo: str | None = None) -> None:
    """Point the notebook's button (in its first cell) at its own path."""
    first = nb.cells[0]
    button = colab_button(colab_url(path, repo))
    if BUTTON.search(first.source):
        first.source = BUTTON.sub(button, first.source, count=1)
    else:
        lines = first.source.split("\n")
        first.source = "\n".join([lines[0], "", button, *lines[1:]])


def colab_install(repo: str | None = None) -> str:
    """Lines that install the helper package on Colab (TensorFlow is already there)."""
    return (
        "# On Colab: install the course's helper package (Colab already has TensorFlow).\n"
        "import importlib.util, subprocess, sys  # noqa: E401\n"
        'if "google.colab" in sys.modules and importlib.util.find_spec("tlcourse") is None:\n'
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",\n'
        f'                    "git+https://github.com/{repo or repository()}"], check=True)\n'
        "    importlib.invalidate_caches()\n"
    )


def set_colab_install(nb, repo: str | None = None) -> None:
    """Start the setup cell (the one calling ``setup_notebook``) with :func:`colab_install`."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "setup_notebook(" in cell.source:
            rest = COLAB_INSTALL.sub("", cell.source).lstrip("\n")
            cell.source = colab_install(repo) + "\n" + rest
            return


def clean(nb) -> None:
    """Remove outputs, execution counts and volatile metadata."""
    for cell in nb.cells:
        for key in VOLATILE_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("widgets", None)


def set_slide_types(nb) -> None:
    """Slide metadata: a new slide at each H1/H2, a sub-slide at each H3, the rest follows."""
    for cell in nb.cells:
        text = cell.source.lstrip() if cell.cell_type == "markdown" else ""
        kind = (
            "slide"
            if text.startswith(("# ", "## "))
            else "subslide"
            if text.startswith("### ")
            else "-"
        )
        cell.metadata["slideshow"] = {"slide_type": kind}


def embed_figures(nb, draw) -> list[str]:
    """Put ``draw(name)`` (PNG bytes) into every diagram reference of ``nb``'s markdown
    cells; return the names used."""
    used = []

    def embedded(match: re.Match) -> str:
        name = match["new"] or match["drawn"]
        used.append(name)
        data = base64.b64encode(draw(name)).decode()
        return f'![{match["alt"]}](data:image/png;base64,{data} "{name}")'

    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = FIGURE.sub(embedded, cell.source)
    return used


def figures(paths: list[Path]) -> list[Path]:
    """Redraw every diagram inside the notebooks at ``paths``; return the changed ones."""
    from tlcourse.figures import png

    drawn: dict[str, bytes] = {}
    changed = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        embed_figures(nb, lambda name: drawn.setdefault(name, png(name)))
        text = normalised(nb)
        if text != path.read_text(encoding="utf-8"):
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def normalised(nb) -> str:
    return nbformat.writes(nb) + "\n"


def fix(path: Path) -> str:
    """The clean, normalised text of the notebook at ``path``, with its Colab button."""
    nb = nbformat.read(path, as_version=4)
    clean(nb)
    set_colab_button(nb, path)
    set_colab_install(nb)
    if path.parent.name == "notebooks":
        set_slide_types(nb)
    return normalised(nb)


def apply(paths: list[Path], check: bool) -> int:
    """Rewrite (or, with ``check``, list) the notebooks that are not clean."""
    dirty = []
    for path in paths:
        wanted = fix(path)
        if path.read_text(encoding="utf-8") != wanted:
            dirty.append(path)
            if not check:
                path.write_text(wanted, encoding="utf-8")
    for path in dirty:
        verb = "needs cleaning" if check else "cleaned"
        print(f"{path.relative_to(REPO)}: {verb}")
    if check and dirty:
        print("Run `python -m course_tools.notebooks clean` (or `make clean-notebooks`).")
    return 1 if check and dirty else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_tools.notebooks")
    parser.add_argument("command", choices=["clean", "figures"])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all)")
    parser.add_argument("--check", action="store_true", help="only report, exit 1 if dirty")
    args = parser.parse_intermixed_args(argv)
    paths = []
    for given in args.paths:
        paths += sorted(given.resolve().rglob("*.ipynb")) if given.is_dir() else [given.resolve()]
    paths = [p for p in paths if p.suffix == ".ipynb"] or course_notebooks()
    if args.command == "figures":
        for path in figures(paths):
            print(f"redrew the diagrams of {path.relative_to(REPO)}")
        return 0
    return apply(paths, args.check)


if __name__ == "__main__":
    sys.exit(main())
