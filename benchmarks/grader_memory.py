"""Benchmark: the grader's memory while a sandboxed kernel floods it with output.

    sudo python benchmarks/grader_memory.py [--seconds 30]

Runs two notebooks, each in a fresh sandboxed kernel driven by the grader's own executor
(``GradingExecute`` with the sandbox's settings and its ``max_output_bytes`` cap): one prints
10 kB lines without end, one publishes 10 MB displays without end. Each cell is interrupted
at the cell timeout. Prints, for each, the grader's peak memory growth and the kernel's fate.
Target: the grader grows by less than 1.5 GiB, and the kernel survives to run the next cell.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nbformat.v4 import new_code_cell, new_notebook

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grader.preprocessors import GradingExecute
from grader.sandbox import SandboxLimits, prepare_sandbox

FLOODS = {
    "print loop (10 kB lines)": "while True:\n    print('x' * 10_000)",
    "display loop (10 MB each)": (
        "from IPython.display import display\n"
        "while True:\n    display({'text/plain': 'x' * 10_000_000}, raw=True)"
    ),
}


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def flood(code: str, seconds: int) -> tuple[float, float, str]:
    """Run ``code`` then a print; return (peak growth MiB, wall s, what the next cell printed)."""
    sandbox = prepare_sandbox(limits=SandboxLimits(cell_timeout=seconds))
    nb = new_notebook(cells=[new_code_cell(code), new_code_cell("print('next cell ran')")])
    before, started = peak_mib(), time.monotonic()
    with sandbox.activated():
        executor = GradingExecute(
            config=sandbox.config, iopub_timeout=30, raise_on_iopub_timeout=False
        )
        try:
            executor.preprocess(nb, {"metadata": {"path": tempfile.mkdtemp()}})
        except Exception as error:  # noqa: BLE001 - reported, the benchmark goes on
            return peak_mib() - before, time.monotonic() - started, type(error).__name__
        finally:
            sandbox.cleanup()
    texts = [o.get("text", "") for o in nb.cells[1].outputs]
    return peak_mib() - before, time.monotonic() - started, "".join(texts).strip() or "nothing"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30, help="cell timeout (default 30)")
    parser.add_argument("--only", choices=list(FLOODS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:  # one flood per process, so each peak is its own
        growth, wall, next_cell = flood(FLOODS[args.only], args.seconds)
        print(f"{args.only:26s} grader peak +{growth:5.0f} MiB  {wall:4.0f} s  next: {next_cell}")
        return
    print(f"cell timeout {args.seconds} s")
    for name in FLOODS:
        command = [sys.executable, __file__, "--seconds", str(args.seconds), "--only", name]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
