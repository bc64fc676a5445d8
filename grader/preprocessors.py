"""nbgrader preprocessors of our own: bounded output, feedback without hidden tests."""

from __future__ import annotations

import re

from nbgrader.preprocessors import ClearHiddenTests, Execute, NbGraderPreprocessor
from nbgrader.utils import is_grade
from traitlets import Integer, List, Unicode

HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.DOTALL)


def hidden_test_lines(sources: list[str], shortest: int = 12) -> list[str]:
    """The code lines between the hidden-test markers of ``sources`` (long enough to match)."""
    lines = []
    for source in sources:
        for block in HIDDEN.findall(source):
            lines += [s.strip() for s in block.splitlines() if len(s.strip()) >= shortest]
    return lines


class CappedExecute(Execute):
    """nbgrader's Execute, keeping at most ``max_output_bytes`` of output per cell.

    A cell that prints without end would otherwise fill the grader's memory before its
    time limit stops it.
    """

    max_output_bytes = Integer(1 << 20, help="output kept per cell").tag(config=True)

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        size = len(str(content.get("text", ""))) + sum(
            len(str(value)) for value in content.get("data", {}).values()
        )
        sizes = self.__dict__.setdefault("_output_sizes", {})
        total = sizes.get(cell_index, 0) + size
        sizes[cell_index] = total
        if total <= self.max_output_bytes:
            return super().output(outs, msg, display_id, cell_index)
        if total - size <= self.max_output_bytes:  # the first message over the cap
            note = f"[output cut by the grader: more than {self.max_output_bytes:,} bytes]\n"
            outs.append(_stream(note))
        return None


def _stream(text: str, name: str = "stdout"):
    from nbformat.v4 import new_output

    return new_output("stream", name=name, text=text)


class ClearHiddenTestsInTestCells(ClearHiddenTests):
    """nbgrader's ClearHiddenTests, on test cells only.

    nbgrader fails on any cell with an unmatched marker; a student's own cell that merely
    mentions "BEGIN HIDDEN TESTS" (say, to search for the tests) would cost them their
    feedback. Their cells hold no hidden tests, so they are left alone.
    """

    def preprocess_cell(self, cell, resources, index):
        if not is_grade(cell):
            return cell, resources
        return super().preprocess_cell(cell, resources, index)


class HideTestCode(NbGraderPreprocessor):
    """Make feedback safe to hand out.

    In test cells, each error is reduced to its last line (``AssertionError: message``): a
    traceback quotes the hidden test. In every cell, output lines that quote a hidden-test
    line are removed: student code can capture the source of the cells it runs before
    (IPython hooks, input transformers) and print it later.
    """

    hidden_lines = List(Unicode(), help="lines that must not appear in feedback").tag(config=True)

    def _clean(self, text: str) -> str:
        kept = [
            line for line in text.splitlines(True) if not any(h in line for h in self.hidden_lines)
        ]
        return "".join(kept)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        for output in cell.outputs:
            if output.output_type == "error":
                if is_grade(cell):
                    output.traceback = [f"{output.ename}: {output.evalue}"[:500]]
                output.ename = self._clean(output.ename)
                output.evalue = self._clean(output.evalue)
                output.traceback = [self._clean(line) for line in output.traceback]
            elif output.output_type == "stream":
                output.text = self._clean(output.text)
            elif "data" in output:
                output.data = {
                    kind: self._clean(value) if isinstance(value, str) else value
                    for kind, value in output.data.items()
                }
        return cell, resources
