"""Lines of the master lab notebooks that must never reach students."""

from pathlib import Path

import nbformat

from grader.master import SOURCE

MASTERS = sorted(SOURCE.glob("*/*.ipynb"))  # every lab's master notebook


def marked_lines(begin: str, end: str, masters: list[Path] = MASTERS) -> list[str]:
    """Non-trivial code lines between ``begin`` and ``end`` markers in the master notebooks."""
    lines = []
    for master in masters:
        for cell in nbformat.read(master, as_version=4).cells:
            inside = False
            for line in cell.source.splitlines():
                if begin in line:
                    inside = True
                elif end in line:
                    inside = False
                elif inside and len(line.strip()) > 12:
                    lines.append(line.strip())
    return lines


def hidden_test_lines(masters: list[Path] = MASTERS) -> list[str]:
    """The hidden tests' code lines."""
    return marked_lines("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", masters)


def solution_lines(masters: list[Path] = MASTERS) -> list[str]:
    """The solutions' code lines."""
    return marked_lines("BEGIN SOLUTION", "END SOLUTION", masters)
