"""nbgrader preprocessors of our own: grading execution, feedback without hidden tests, and
the refusal of nbgrader's own autograde."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from nbgrader.preprocessors import ClearHiddenTests, Execute, NbGraderPreprocessor
from nbgrader.utils import is_grade
from traitlets import Dict, Integer, List, Unicode

HANDIN_FILE = re.compile(r"^[a-z][a-z0-9_]{0,40}\.(keras|json)$")  # as tlcourse.handin writes


class GradingExecute(Execute):
    """nbgrader's Execute for one submission: bounded output, hand-ins from test cells only.

    * At most ``max_output_bytes`` of output are kept per cell: a cell that prints without
      end would otherwise fill the grader's memory before its time limit stops it.
    * The kernel hands objects in to ``handin``. After each test cell, the files that cell
      wrote there are moved to ``accepted``, which the kernel cannot reach; what any other
      cell (or a thread, between test cells) writes is never accepted.
    * ``on_start`` is called once the kernel process is launched (the grader has the clean
      checking kernel start alongside it), ``on_handin`` after each test cell that handed
      something in (the checking kernel loads the objects while the notebook goes on).
    * ``readiness(connection_file)`` gives the kernel's readiness report (see
      grader.sandbox.Sandbox.readiness), asked once the kernel answers: a kernel that lacks
      what the grader gives it runs no cell (:class:`KernelNotReady`).
    * ``seconds`` holds the time spent starting the kernel and running the notebook;
      ``served`` whether the kernel answered; ``not_ready`` why it was not ready, or "".
    """

    max_output_bytes = Integer(1 << 20, help="output kept per cell").tag(config=True)

    def __init__(
        self,
        handin: Path | None = None,
        accepted: Path | None = None,
        on_start: Callable[[], None] | None = None,
        on_handin: Callable[[], None] | None = None,
        readiness: Callable[[str], dict | None] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.handin, self.accepted = handin, accepted
        self.on_start, self.on_handin = on_start, on_handin
        self.seconds = {"kernel start": 0.0, "notebook": 0.0}
        self.readiness = readiness
        self.served = False
        self.not_ready = ""
        self.connection_file = ""
        self._output_sizes: dict[int, int] = {}

    def preprocess(self, nb, resources=None, km=None):
        started = time.monotonic()
        try:
            return super().preprocess(nb, resources, km)
        finally:
            total = time.monotonic() - started
            self.seconds["notebook"] = total - self.seconds["kernel start"]

    def start_new_kernel(self, **kwargs):
        started = time.monotonic()
        try:
            super().start_new_kernel(**kwargs)
        finally:
            self.seconds["kernel start"] += time.monotonic() - started
        self.connection_file = self.km.connection_file
        if self.on_start:
            self.on_start()

    def start_new_kernel_client(self):
        started = time.monotonic()
        try:
            client = super().start_new_kernel_client()
        finally:  # until the new kernel answers
            self.seconds["kernel start"] += time.monotonic() - started
        self.served = True
        if self.readiness:
            report = self.readiness(self.connection_file)
            if not report:
                self.not_ready = "the student's kernel ended before it reported ready"
            elif not report.get("ready"):
                self.not_ready = (
                    f"the student's kernel lacks what the grader gives it: {report.get('error')}"
                )
            if self.not_ready:
                self._cleanup_kernel()  # nbclient cleans up only after the client is set up
                raise KernelNotReady(self.not_ready)
        return client

    def preprocess_cell(self, cell, resources, index):
        before = self._handed_in() if is_grade(cell) else None
        result = super().preprocess_cell(cell, resources, index)
        if before is not None and self._accept(before) and self.on_handin:
            self.on_handin()
        return result

    def _handed_in(self) -> dict[str, tuple]:
        return handed_in(self.handin) if self.handin else {}

    def _accept(self, before: dict[str, tuple]) -> bool:
        return bool(accept_handed_in(self.handin, self.accepted, before)) if self.handin else False

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        size = len(str(content.get("text", ""))) + sum(
            len(str(value)) for value in content.get("data", {}).values()
        )
        total = self._output_sizes.get(cell_index, 0) + size
        self._output_sizes[cell_index] = total
        if total <= self.max_output_bytes:
            return super().output(outs, msg, display_id, cell_index)
        if total - size <= self.max_output_bytes:  # the first message over the cap
            note = f"[output cut by the grader: more than {self.max_output_bytes:,} bytes]\n"
            outs.append(_stream(note))
        return None


class KernelNotReady(RuntimeError):
    """The student's kernel reported that it lacks what the grader gives it."""


def handed_in(folder: Path) -> dict[str, tuple]:
    """What ``folder`` holds: ``{name: (inode, mtime, size)}``."""
    found = {}
    for entry in os.scandir(folder):
        stat = entry.stat(follow_symlinks=False)
        found[entry.name] = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    return found


def accept_handed_in(handin: Path, accepted: Path, before: dict[str, tuple]) -> list[str]:
    """Move what was written to ``handin`` since ``before`` (see :func:`handed_in`) into
    ``accepted``: regular files with hand-in names only, readable by the checking kernel.
    Return their names."""
    moved = []
    for name, state in handed_in(handin).items():
        path = Path(handin) / name
        if before.get(name) == state:
            continue  # not written since
        if HANDIN_FILE.match(name) and path.is_file() and not path.is_symlink():
            os.replace(path, Path(accepted) / name)
            (Path(accepted) / name).chmod(0o644)
            moved.append(name)
    return moved


def _stream(text: str, name: str = "stdout"):
    from nbformat.v4 import new_output

    return new_output("stream", name=name, text=text)


class RefuseNbgraderAutograde(NbGraderPreprocessor):
    """Stop nbgrader's own autograde (its command, the formgrader's button) of this lab.

    It would run student code without the sandbox and without the clean-kernel check, and
    award Part E's points without measuring the held-out accuracy. The course's grader runs
    nbgrader's autograde itself, with its own settings.
    """

    def preprocess(self, nb, resources):
        raise RuntimeError(
            "This lab is graded with the course's grader, not with nbgrader's autograde: "
            "`python -m grader grade SUBMISSIONS --out OUT` runs every notebook in a sandbox, "
            "checks it again in a clean kernel and measures the held-out accuracy (see "
            "README.md, Instructors). nbgrader's collect and zip_collect layouts are accepted "
            "as SUBMISSIONS."
        )


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


class NameParts(NbGraderPreprocessor):
    """For the feedback's summary: each test cell's part (``part_title``, from the master's
    headings) and, when it lost points, the one line that says why (``reason``: its first
    error, else the first line it printed). Runs after HideTestCode: nothing hidden shows."""

    titles = Dict(Unicode(), help="test cell's grade id -> its part's title").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if not is_grade(cell):
            return cell, resources
        meta = cell.metadata.nbgrader
        meta["part_title"] = self.titles.get(meta["grade_id"], meta["grade_id"])
        meta["reason"] = ""
        if float(meta.get("score") or 0) < float(meta["points"]):
            errors = [o for o in cell.outputs if o.output_type == "error"]
            printed = "".join(o.text for o in cell.outputs if o.output_type == "stream")
            if errors:
                text = errors[0].evalue.strip() or errors[0].ename
            else:
                text = printed.strip()
            meta["reason"] = (text.splitlines() or [""])[0][:300]
        return cell, resources


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
