"""Lines of the master lab notebook that must never reach students."""

import nbformat

from grader.config import MASTER


def marked_lines(begin: str, end: str) -> list[str]:
    """Non-trivial code lines between ``begin`` and ``end`` markers in the master notebook."""
    lines = []
    for cell in nbformat.read(MASTER, as_version=4).cells:
        inside = False
        for line in cell.source.splitlines():
            if begin in line:
                inside = True
            elif end in line:
                inside = False
            elif inside and len(line.strip()) > 12:
                lines.append(line.strip())
    return lines


def hidden_test_lines() -> list[str]:
    """The hidden tests' code lines."""
    return marked_lines("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def solution_lines() -> list[str]:
    """The solutions' code lines."""
    return marked_lines("BEGIN SOLUTION", "END SOLUTION")
