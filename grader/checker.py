"""The second run of the hidden tests: in a clean kernel, on what a submission handed in.

Student code runs in the same kernel as the hidden tests, so it can fool them (patch
``Model.evaluate``, numpy or builtins, rewrite later cells, swallow errors). Each hidden test
therefore hands its objects in (``tlcourse.hand_in``), and after the notebook the grader runs
the same tests in a fresh kernel where no student code ran, on those objects loaded back in
Keras' safe mode. Only this kernel sees the held-out photos.

:class:`CleanKernelCheck` is the nbgrader preprocessor that does it, between the execution
of the notebook and nbgrader's scoring: it adds the clean run's verdict to each test cell,
so that nbgrader scores every test cell at the lower of the two runs. The clean kernel
itself (:class:`CheckingKernel`) is started together with the student's kernel and loads
each object as it is handed in, so that most of its work overlaps the notebook.
"""

from __future__ import annotations

import atexit
import time
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_notebook, new_output
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.utils import determine_grade, is_grade
from traitlets.config import Config

from .master import Master
from .sandbox import Sandbox

KERNEL_ARGUMENTS = ["--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR"]


def warm_up_code(master: Master) -> str:
    """What the clean kernel runs before it serves (grader.sandbox's preload): the lab's
    ``warm`` hook, with the lab's settings."""
    if not master.spec.warm:
        return ""
    module, _, function = master.spec.warm.partition(":")
    return (
        "import importlib as _importlib\n"
        "_settings = {}\n"
        f"exec({master.settings!r}, _settings)\n"
        f"_importlib.import_module({module!r}).{function}(_settings)\n"
    )


@dataclass
class CheckResult:
    scores: dict[str, float]  # grade cell id -> points in the clean kernel
    messages: dict[str, str] = field(default_factory=dict)  # grade cell id -> its output
    problem: str = ""  # the clean kernel did not start or lacked what it was given, or ""
    stopped: str = ""  # why a started clean kernel stopped twice while checking, or ""


def check_notebook(handin: Path, master: Master) -> NotebookNode:
    """The notebook the clean kernel runs: load the hand-in, then every test cell."""
    setup = "\n".join(
        [
            "import warnings",
            "warnings.filterwarnings('ignore')",
            "from tlcourse.handin import load_handed_in",
            f"globals().update(load_handed_in({str(handin)!r}))",
            master.settings,
        ]
    )
    cells = [new_code_cell(setup)]
    for test in master.tests:
        cells.append(new_code_cell(test.source, metadata={"grade_id": test.grade_id}))
    return new_notebook(cells=cells)


class CheckingKernel:
    """The clean kernel of one submission: started once (:meth:`start`), used once
    (:meth:`run`), always shut down (:meth:`stop`).

    ``config`` selects the kernel (``NotebookClient.kernel_name``, the sandbox's
    ``KernelManager`` settings); ``handin`` is the folder of accepted hand-ins; ``sandbox``
    the :class:`grader.sandbox.Sandbox` it runs in (its kernelspec, its readiness reports),
    None for a plain kernel; ``env``, the environment of a kernel started without it.
    """

    def __init__(
        self,
        config: Config,
        workdir: Path,
        handin: Path,
        sandbox: Sandbox | None = None,
        env: dict[str, str] | None = None,
    ):
        self.config = config
        self.workdir, self.handin = Path(workdir), Path(handin)
        self.sandbox = sandbox
        self.env = env
        self.km: AsyncKernelManager | None = None
        self._sender = None  # a client that only sends: see load_soon

    def fresh(self) -> CheckingKernel:
        """A new, unstarted kernel with the same settings (a second try of the check)."""
        return CheckingKernel(self.config, self.workdir, self.handin, self.sandbox, self.env)

    def readiness(self) -> dict | None:
        """The kernel's readiness report (see :meth:`grader.sandbox.Sandbox.readiness`);
        ``{"ready": True}`` for a plain kernel, which has none."""
        if self.sandbox is None:
            return {"ready": True}
        return self.sandbox.readiness(self.km.connection_file) if self.km else None

    def start(self) -> None:
        """Start the kernel process, without waiting for it to be ready; once only."""
        run_sync(self._start)()

    async def _start(self) -> None:
        if self.km is not None:
            return
        kernel_dirs = [str(self.sandbox.folder / "kernels")] if self.sandbox else None
        specs = KernelSpecManager(kernel_dirs=kernel_dirs) if kernel_dirs else None
        self.km = AsyncKernelManager(
            config=self.config,
            kernel_name=self.config.NotebookClient.kernel_name,
            **({"kernel_spec_manager": specs} if specs else {}),
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        await self.km.start_kernel(
            cwd=str(self.workdir),
            extra_arguments=KERNEL_ARGUMENTS,
            **({"env": self.env} if self.env else {}),
        )

    def load_soon(self) -> None:
        """Start the kernel if need be and have it load what has been handed in so far,
        without waiting for it: it does so while the student's notebook goes on (the check
        later finds those objects loaded, tlcourse.handin.load_handed_in)."""
        self.start()
        if self._sender is None:
            self._sender = self.km.blocking_client()
            self._sender.start_channels(
                shell=True, iopub=False, stdin=False, hb=False, control=False
            )
        code = f"from tlcourse.handin import load_handed_in\nload_handed_in({str(self.handin)!r})"
        self._sender.execute(code, silent=True, store_history=False)

    def run(self, nb: NotebookNode) -> None:
        """Execute ``nb`` in this kernel (starting it if need be); errors stay in the cells.
        Raises :class:`NotReady`, before any cell runs, when the kernel did not start or
        reported that it lacks what it was given: the grader's failure, not the student's."""
        self.start()
        client = NotebookClient(nb, km=self.km, config=self.config, allow_errors=True)
        try:
            client.kc = self.km.client()
            client.kc.start_channels()
            try:
                run_sync(client.kc.wait_for_ready)(timeout=client.startup_timeout)
            except RuntimeError as error:
                raise NotReady(f"the clean kernel did not start: {error}") from error
            report = self.readiness()
            if not report or not report.get("ready"):
                why = (report or {}).get("error") or "it ended before it reported ready"
                raise NotReady(f"the clean kernel lacks what the grader gives it: {why}")
            client.execute(reset_kc=False)
        finally:
            atexit.unregister(client._cleanup_kernel)

    def stop(self) -> None:
        if self._sender is not None:
            self._sender.stop_channels()
        if self.km is not None and self.km.has_kernel:
            run_sync(self.km.shutdown_kernel)(now=True)


class NotReady(RuntimeError):
    """The clean kernel did not start, or lacks what the grader gave it."""


class CleanKernelCheck(NbGraderPreprocessor):
    """Run the hidden tests again in ``kernel`` on the objects in ``handin``; lower each test
    cell to the clean run's score (nbgrader's SaveAutoGrades, later in the pipeline, scores
    what the cells then show).

    After :meth:`preprocess`, ``kernel_scores`` and ``clean_scores`` hold each test cell's
    points in the two runs (``clean_scores`` is empty when nothing needed confirming) and
    ``seconds`` the time the check took.
    """

    def __init__(self, kernel: CheckingKernel, handin: Path, master: Master, **kwargs):
        super().__init__(**kwargs)
        self.kernel, self.handin, self.master = kernel, Path(handin), master
        self.kernel_scores: dict[str, float] = {}
        self.clean_scores: dict[str, float] = {}
        self.problem = ""  # the grader's failure (see CheckResult)
        self.stopped = ""  # the student's hand-in stopped the clean kernel (see CheckResult)
        self.seconds = 0.0

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        tests = {c.metadata.nbgrader["grade_id"]: c for c in nb.cells if is_grade(c)}
        self.kernel_scores = {
            g: float(determine_grade(c, self.log)[0] or 0) for g, c in tests.items()
        }
        if not any(self.kernel_scores.values()):
            return nb, resources  # nothing to confirm
        started = time.monotonic()
        check = self.run_check()
        self.seconds = time.monotonic() - started
        self.clean_scores, self.problem, self.stopped = check.scores, check.problem, check.stopped
        for grade_id, cell in tests.items():
            if grade_id in check.scores:
                message = check.messages.get(grade_id) or check.problem or "passed"
                _add_verdict(cell, self.kernel_scores[grade_id], check.scores[grade_id], message)
        return nb, resources

    def run_check(self) -> CheckResult:
        zeros = {test.grade_id: 0.0 for test in self.master.tests}
        if not any(self.handin.iterdir()):
            return CheckResult(zeros, {g: "nothing was handed in to the grader" for g in zeros})
        kernel, stopped = self.kernel, []
        try:
            for attempt in range(2):  # a started kernel that stops is given a second try
                nb = check_notebook(self.handin, self.master)
                try:
                    kernel.run(nb)
                    break
                except NotReady as error:
                    return CheckResult(zeros, problem=str(error)[:600])
                except Exception as error:  # noqa: BLE001 - a dead kernel, a time limit
                    stopped.append(f"{type(error).__name__}: {str(error)[:200]}")
                    kernel.stop()
                    kernel = kernel.fresh() if attempt == 0 else kernel
            else:
                why = f"the clean kernel stopped while checking the hand-in, twice ({stopped[-1]})"
                return CheckResult(zeros, {g: why for g in zeros}, stopped=why)
        finally:
            if kernel is not self.kernel:  # the grader stops the first one
                kernel.stop()
        result = CheckResult({})
        for cell, test in zip(nb.cells[1:], self.master.tests, strict=True):
            result.scores[test.grade_id] = _score(cell, test.points)
            result.messages[test.grade_id] = _text(cell)
        return result


CLEAN_VERDICT = "[checked again by the grader in a clean kernel"  # heads its output in a cell


def _add_verdict(cell, kernel_score: float, clean_score: float, message: str) -> None:
    """Show the clean run in ``cell``; when it scored lower, make nbgrader score that."""
    heading = f"{CLEAN_VERDICT}: {clean_score:g} points]"
    if clean_score < kernel_score and clean_score == 0:
        # nbgrader scores a cell by its first error or result: this one comes first.
        verdict = new_output("error", ename=heading, evalue=message, traceback=[heading, message])
        cell.outputs.insert(0, verdict)
        return
    if clean_score < kernel_score:
        cell.outputs.insert(
            0,
            new_output(
                "execute_result", data={"text/plain": f"{clean_score:g}"}, execution_count=None
            ),
        )
    cell.outputs.append(new_output("stream", name="stdout", text=f"\n{heading}\n{message}\n"))


def _text(cell) -> str:
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream" and out.name == "stdout":  # stderr: library noise
            parts.append(out.text)
        elif out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}\n")
    return "".join(parts).strip()


def _score(cell, points: float) -> float:
    if any(out.output_type == "error" for out in cell.outputs):
        return 0.0
    for out in cell.outputs:
        if out.output_type == "execute_result":
            try:
                return min(points, max(0.0, float(out.data.get("text/plain", ""))))
            except ValueError:
                pass
    return points
