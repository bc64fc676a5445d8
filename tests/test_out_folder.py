"""OUT is kept safe (grader/records.py): one grader at a time, and a damaged record costs a
regrade, never a crash or a silent loss. No kernel, no TensorFlow."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from grader import run
from grader.collect import CollectError, Submission
from grader.master import SOURCE, load_master
from grader.records import (
    GRADED,
    LOCK_FILE,
    NOT_GRADED,
    OutInUse,
    Record,
    out_lock,
    read_records,
    submission_digest,
    write_record,
)
from grader.report import write_reports
from tests.conftest import SESSION_DIR, run_as_user, user_environment

HOLD = """
import sys
from grader.records import out_lock
with out_lock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""
# The command, in a process of its own; then what it imported (the grader, not TensorFlow).
GRADE = """
import sys
from grader.__main__ import main
status = main(["grade", sys.argv[1], "--out", sys.argv[2]])
for name in ("run", "grading", "checker", "preprocessors", "master", "lms", "workers"):
    assert f"grader.{name}" in sys.modules, name
assert "tensorflow" not in sys.modules, "TensorFlow was imported"
sys.exit(status)
"""


def hold(out: Path) -> subprocess.Popen:
    """Another process that holds ``out``'s lock until its stdin is closed."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)],
        env=user_environment(),
        cwd=SESSION_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline() == "held\n"  # "" if it ended without the lock
    return holder


def files(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name != LOCK_FILE
    }


def record(student: str, **changes) -> Record:
    whole = {"status": GRADED, "digest": "digest", "scores": {"part_a": 1.0, "part_b": 2.0}}
    return Record(student, **{**whole, **changes})


# --- one grader per OUT ---------------------------------------------------------------------


def test_a_second_grader_on_the_same_out_is_refused_and_changes_nothing(tmp_path):
    out, subs = tmp_path / "out", tmp_path / "subs"
    subs.mkdir()
    (subs / "alice.ipynb").write_text("")
    write_record(out, record("bob"))
    (out / "grades.csv").write_text("student_id,total\nbob,3\n")
    before = files(out)
    holder = hold(out)
    try:
        second = run_as_user(["-c", GRADE, subs, out], timeout=120)
    finally:
        holder.stdin.close()
        assert holder.wait(timeout=60) == 0
    assert second.returncode == 2, second.stdout + second.stderr
    assert second.stdout == ""
    line = second.stderr.strip()
    assert "\n" not in line
    assert line.startswith(f"grader: another grader is grading into {out.resolve()}: ")
    assert f"process {holder.pid} on " in line and ", since 20" in line
    assert "Wait for it to finish (or stop it)" in line and "give another --out" in line
    assert files(out) == before
    with out_lock(out):  # released when its holder ended
        pass


def test_the_lock_ends_with_its_process_even_when_killed(tmp_path):
    holder = hold(tmp_path)
    with pytest.raises(OutInUse, match=f"process {holder.pid} "), out_lock(tmp_path):
        pass
    holder.kill()
    holder.wait(timeout=60)
    with out_lock(tmp_path):
        pass


def test_the_lock_is_held_for_the_block_and_taken_again_freely_inside_it(tmp_path):
    with out_lock(tmp_path), out_lock(tmp_path):  # grade() calls grade_class(): no deadlock
        other = os.open(tmp_path / LOCK_FILE, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(other)
    holder = json.loads((tmp_path / LOCK_FILE).read_text())
    assert holder["pid"] == os.getpid() and holder["since"].startswith("20")


def test_an_out_that_cannot_be_a_folder_is_explained(tmp_path):
    (tmp_path / "file").write_text("")
    refused = pytest.raises(CollectError, match="cannot write into --out .*give a folder")
    with refused, out_lock(tmp_path / "file" / "out"):
        pass


# --- damaged records ------------------------------------------------------------------------

WHOLE = json.dumps(asdict(record("alice")), indent=1)
DAMAGED = {
    "empty": (b"", "the file is empty"),
    "cut short": (WHOLE[: len(WHOLE) // 2].encode(), "not JSON, cut short"),
    "zeros": (b"\0" * 512, "not JSON"),  # a power cut can leave a block of zeros
    "not utf-8": (b"\xff\xfe{", "codec can't decode"),
    "a list": (b"[1, 2]", "JSON list, not an object"),
    "no digest": (
        json.dumps({"student_id": "alice", "status": "graded", "scores": {}}),
        "no digest",
    ),
    "unknown field": (json.dumps({**asdict(record("alice")), "grade": 3}), "unknown grade"),
    "scores as text": (json.dumps(asdict(record("alice", scores={"part_a": "1"}))), "scores"),
    "not finite": (WHOLE.replace('"part_a": 1.0', '"part_a": NaN'), "scores"),
    "bool seconds": (json.dumps(asdict(record("alice", seconds=True))), "seconds"),
    "odd status": (json.dumps(asdict(record("alice", status="done"))), "unknown status 'done'"),
    "someone else's": (json.dumps(asdict(record("bob"))), "it is the record of 'bob'"),
}


@pytest.mark.parametrize("content, why", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_record_is_moved_aside_said_and_reported_without_it(tmp_path, content, why):
    write_record(tmp_path, record("bob"))
    damaged = tmp_path / "records" / "alice.json"
    data = content.encode() if isinstance(content, str) else content
    damaged.write_bytes(data)
    lines: list[str] = []
    records = read_records(tmp_path, log=lines.append)
    assert list(records) == ["bob"]
    assert len(lines) == 1 and lines[0].startswith("alice: records/alice.json is not a whole")
    assert why in lines[0]
    assert lines[0].endswith("kept as records/alice.json.corrupt; alice is graded again")
    assert not damaged.exists()
    assert (tmp_path / "records" / "alice.json.corrupt").read_bytes() == data
    write_reports(tmp_path, records, load_master(SOURCE / "cats_vs_dogs"))
    with open(tmp_path / "grades.csv", newline="") as handle:
        assert [row["student_id"] for row in csv.DictReader(handle)] == ["bob"]
    assert (tmp_path / "lms_grades.csv").read_text() == "student_id,total,max\nbob,3,9\n"


def test_a_second_damage_keeps_the_first_copy(tmp_path):
    damaged = tmp_path / "records" / "alice.json"
    damaged.parent.mkdir()
    for content in ("first", "second"):
        damaged.write_text(content)
        assert read_records(tmp_path, log=lambda line: None) == {}
    assert (tmp_path / "records" / "alice.json.corrupt").read_text() == "first"
    assert (tmp_path / "records" / "alice.json.corrupt.1").read_text() == "second"


def test_a_whole_record_reads_back_as_written(tmp_path):
    written = record("alice", note="n", notebook_scores={"part_a": 1}, seconds=2.5)
    write_record(tmp_path, written)
    assert read_records(tmp_path, log=pytest.fail) == {"alice": written}
    assert not list((tmp_path / "records").glob("*.partial"))


def test_the_run_grades_a_student_with_a_damaged_record_again(tmp_path, monkeypatch):
    """The coordinator (grader/run.py) on two submissions that need no kernel: bob's record
    stands, alice's is damaged: she is graded again, and her damaged file is kept."""
    monkeypatch.setattr(run, "import_tensorflow_quietly", lambda: None)
    master, root = load_master(SOURCE / "cats_vs_dogs"), tmp_path / "out"
    out = root / master.lab
    subs = []
    for student in ("alice", "bob"):
        path = tmp_path / f"{student}.ipynb"
        path.write_text("")
        subs.append(Submission(student, path, "the notebook file is empty", master.lab))
    digest = submission_digest(master.digest, subs[1].path)
    write_record(out, Record("bob", NOT_GRADED, digest, {p: 0.0 for p in master.parts}, "empty"))
    (out / "records" / "alice.json").write_text('{"student_id": "alice", "sta')
    lines: list[str] = []
    graded = run.grade_class(
        subs, root, log=lambda line, **_: lines.append(line), sandboxed=False, jobs=1
    )
    assert [r.student_id for r in graded] == ["alice"]
    assert any(line.startswith("alice: records/alice.json is not a whole") for line in lines)
    assert any("bob ... already graded, kept" in line for line in lines)
    assert read_records(out, log=pytest.fail)["alice"].note == "the notebook file is empty"
    assert (out / "records" / "alice.json.corrupt").read_text() == '{"student_id": "alice", "sta'
    with open(out / "grades.csv", newline="") as handle:
        assert [row["student_id"] for row in csv.DictReader(handle)] == ["alice", "bob"]


def test_bad_files_handed_in_again_are_recorded_with_the_lab_out_holds(tmp_path, monkeypatch):
    """No file of the run is of a known lab, but OUT holds one lab's grades: the files are
    that lab's (an instructor grading resubmissions into the same OUT); with none, the run
    stops and asks for --lab."""
    monkeypatch.setattr(run, "import_tensorflow_quietly", lambda: None)
    path = tmp_path / "bob.ipynb"
    path.write_text("")
    bad = [Submission("bob", path, "the notebook file is empty")]
    with pytest.raises(CollectError, match="say which lab they are with --lab"):
        run.grade_class(bad, tmp_path / "out", log=lambda *a, **k: None, sandboxed=False)
    write_record(tmp_path / "out" / "cats_vs_dogs", record("alice"))
    graded = run.grade_class(bad, tmp_path / "out", log=lambda *a, **k: None, sandboxed=False)
    assert [(r.student_id, r.note) for r in graded] == [("bob", "the notebook file is empty")]
    assert (tmp_path / "out" / "cats_vs_dogs" / "records" / "bob.json").exists()
