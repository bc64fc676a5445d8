"""nbgrader preprocessors of our own: feedback that shows results, never hidden tests."""

from __future__ import annotations

from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import is_grade


class ScrubTestTracebacks(NbGraderPreprocessor):
    """In test cells, reduce each error to its last line (``AssertionError: message``).

    A full traceback quotes the failing lines of the hidden test; the message is written
    for the student and says what is wrong.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and is_grade(cell):
            for output in cell.outputs:
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources
