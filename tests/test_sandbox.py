"""The sandboxed kernel: every limit proved by a small notebook run through nbclient.

Each test runs real student-like code in a kernel started by ``grader.sandbox`` and checks
what happened, in the notebook's outputs and on the host. Only the TensorFlow test needs
TensorFlow; it proves the limits leave room for the lab.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbformat.v4 import new_code_cell, new_notebook

from grader.config import REPO
from grader.master import SOURCE

MASTER = SOURCE / "cats_vs_dogs" / "cats_vs_dogs.ipynb"  # what a kernel must not reach
from grader.sandbox import (
    UID_BASE,
    BoundedKernelClient,
    MiB,
    SandboxLimits,
    prepare_sandbox,
)
from grader.seccomp import SYSCALLS, machine
from tests.conftest import run_as

# Run as root, which adds the sandbox uid and the memory cgroup; the grader run by an
# ordinary user is tests/test_grading_rootless.py.
pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("bwrap"),
    reason="these tests run as root, with bubblewrap (apt install bubblewrap)",
)

FAST = SandboxLimits(
    cell_timeout=30,
    notebook_timeout=120,
    address_space=1024 * MiB,
    processes=64,
    file_size=8 * MiB,
    scratch=64 * MiB,
)
SECRET = "master-secret-7d1f"


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> dict[str, Path]:
    """A course folder as nbgrader keeps it: master, gradebook, two students, a cache."""
    root = tmp_path_factory.mktemp("course")
    files = {
        "master": root / "source" / "lab" / "lab.ipynb",
        "gradebook": root / "gradebook.db",
        "other": root / "submitted" / "alice" / "lab" / "lab.ipynb",
        "own": root / "autograded" / "bob" / "lab" / "lab.ipynb",
        "own_data": root / "autograded" / "bob" / "lab" / "data.txt",
        "cached": root.parent / (root.name + "-cache") / "features" / "known.npz",
    }
    for name, path in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{name}: {SECRET}" if name != "own_data" else "bob's data")
    return {
        "root": root,
        "cwd": files["own"].parent,
        "cache": files["cached"].parent.parent,
        **files,
    }


def sandbox_for(course, limits=FAST, **kwargs):
    return prepare_sandbox(
        limits=limits, hide=[course["root"]], overlay=[course["cache"]], **kwargs
    )


def run(course, cells, limits=FAST, sandbox=None, **client_options):
    """Execute ``cells`` in a sandboxed kernel started in bob's folder: (notebook, error)."""
    sandbox = sandbox or sandbox_for(course, limits)
    nb = new_notebook(cells=[new_code_cell(textwrap.dedent(c)) for c in cells])
    client = NotebookClient(
        nb,
        config=sandbox.config,
        allow_errors=True,
        resources={"metadata": {"path": str(course["cwd"])}},
        **client_options,
    )
    error = None
    try:
        with sandbox.activated():
            client.execute()
    except Exception as caught:  # noqa: BLE001 - the tests inspect it
        error = caught
    finally:
        sandbox.cleanup()
        atexit.unregister(client._cleanup_kernel)  # nbclient's; noisy after a failed start
    return nb, error


def text(cell) -> str:
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.data.get("text/plain", ""))
        elif out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}")
    return "".join(parts)


def tf_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    for name in ("tensorflow", "tensorflow-cpu"):
        with contextlib.suppress(PackageNotFoundError):
            return version(name)
    return "?"


def processes_of(uid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def wait_gone(uid: int, seconds: float = 10) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := processes_of(uid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


# ------------------------------------------------------------------------ identity


def test_kernel_runs_unprivileged_alone_and_without_grader_secrets(course, monkeypatch):
    monkeypatch.setenv("GRADER_API_TOKEN", "do-not-leak")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    nb, error = run(
        course,
        [
            "import os; print(os.getuid(), os.getgid(), os.getgroups())",
            "print([l for l in open('/proc/self/status') if l.startswith(('CapEff', 'NoNewPrivs'))])",
            "print(sorted(p for p in os.listdir('/proc') if p.isdigit()))",
            "print('GRADER_API_TOKEN' in os.environ, os.environ['TF_CPP_MIN_LOG_LEVEL'])",
        ],
    )
    assert error is None
    uid, gid, groups = text(nb.cells[0]).split(maxsplit=2)
    assert int(uid) >= 200_000 and gid == uid and groups.strip() == "[]"
    assert "CapEff:\\t0000000000000000" in text(nb.cells[1])
    assert "NoNewPrivs:\\t1" in text(nb.cells[1])
    assert text(nb.cells[2]).strip() in ("['1', '2']", "['1', '2', '3']")  # init, kernel(, child)
    assert text(nb.cells[3]).strip() == "False 3"


# ------------------------------------------------------------------------ time


def test_endless_cells_are_interrupted_at_the_cell_timeout(course):
    limits = SandboxLimits(**{**FAST.__dict__, "cell_timeout": 3})
    started = time.monotonic()
    nb, error = run(
        course,
        ["while True:\n    pass", "import time\ntime.sleep(10**6)", "print('still alive')"],
        limits,
        interrupt_on_timeout=True,
        error_on_timeout={"ename": "CellTimeoutError", "evalue": "", "traceback": []},
    )
    assert error is None
    for endless in nb.cells[:2]:  # a busy loop, a sleep
        assert "CellTimeoutError" in text(endless) or "KeyboardInterrupt" in text(endless)
    assert text(nb.cells[2]).strip() == "still alive"  # the interrupts reached the kernel
    assert time.monotonic() - started < 60


def test_endless_printing_is_cut_in_the_kernel_and_the_next_cell_prints_again(course):
    """A print loop would pile output up in the kernel (its send queue; IPython 9 keeps a
    copy of everything printed) until the memory cap killed it."""
    limits = SandboxLimits(**{**FAST.__dict__, "cell_timeout": 4, "output_per_cell": 64_000})
    nb, error = run(
        course,
        [
            "n = 1000\nwhile True:\n    print('x' * n)",  # a new string each time
            "import resource\nprint('still alive', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
        ],
        limits,
        interrupt_on_timeout=True,
        error_on_timeout={"ename": "CellTimeoutError", "evalue": "", "traceback": []},
    )
    assert error is None
    printed = "".join(o.get("text", "") for o in nb.cells[0].outputs if o.output_type == "stream")
    assert printed.endswith("[output cut in the sandbox: more than 64000 characters]\n")
    assert 64_000 <= len(printed) < 64_200
    alive, peak_kib = text(nb.cells[1]).rsplit(maxsplit=1)
    assert alive == "still alive"
    assert int(peak_kib) < 200 * 1024  # a bare kernel is about 70 MB; nothing piled up


def test_a_message_too_large_for_the_grader_is_dropped_and_grading_goes_on(course):
    """The grader's sockets refuse messages over BoundedKernelClient.LARGEST_MESSAGE (and
    queue at most QUEUED_MESSAGES), so a kernel cannot fill the grader's memory."""
    too_large = BoundedKernelClient.LARGEST_MESSAGE + MiB
    nb, error = run(
        course,
        [
            f"""
            from IPython.display import display
            display({{"text/plain": "big" * {too_large // 3}}}, raw=True)
            """,
            "print('next cell')",
        ],
        iopub_timeout=5,
    )
    assert error is None
    assert not any("big" in str(o) for o in nb.cells[0].outputs)
    # Outputs no longer arrive, but the next cell still ran and replied.
    assert "shell.execute_reply" in nb.cells[1].metadata.execution


def test_infinite_loop_without_interrupt_raises_cell_timeout(course):
    from nbclient.exceptions import CellTimeoutError

    limits = SandboxLimits(**{**FAST.__dict__, "cell_timeout": 2})
    _, error = run(course, ["while True:\n    pass"], limits, interrupt_on_timeout=False)
    assert isinstance(error, CellTimeoutError)


def test_whole_notebook_time_limit_kills_the_kernel(course):
    limits = SandboxLimits(**{**FAST.__dict__, "notebook_timeout": 5})
    started = time.monotonic()
    nb, error = run(course, ["import time; time.sleep(2.5); print('one')"] * 5, limits)
    assert isinstance(error, DeadKernelError)
    assert text(nb.cells[0]).strip() == "one"
    assert not text(nb.cells[4])
    assert time.monotonic() - started < 40


# ------------------------------------------------------------------------ memory


def test_memory_exhaustion_is_a_memory_error_and_the_kernel_survives(course):
    nb, error = run(
        course,
        [
            "import resource; print(resource.getrlimit(resource.RLIMIT_AS)[0] // 2**20)",
            "x = bytearray(4 * 2**30)",
            "chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 2**20))",
            "n = len(chunks); del chunks; print('alive', n)",
        ],
    )
    assert error is None
    assert text(nb.cells[0]).strip() == "1024"
    assert text(nb.cells[1]).startswith("MemoryError")
    assert text(nb.cells[2]).startswith("MemoryError")
    alive, chunks = text(nb.cells[3]).split()
    assert alive == "alive" and 5 <= int(chunks) < 21  # < 1 GiB in 50 MiB pieces


def test_memory_hog_in_a_child_process_dies_alone(course):
    nb, error = run(
        course,
        [
            (
                "import subprocess, sys\n"
                "r = subprocess.run([sys.executable, '-c', 'x = bytearray(3 * 2**30)'],"
                " capture_output=True, text=True)\nprint(r.returncode, r.stderr.splitlines()[-1])"
            ),
            "print('alive')",
        ],
    )
    assert error is None
    code, message = text(nb.cells[0]).split(maxsplit=1)
    assert code == "1" and message.strip() == "MemoryError"
    assert text(nb.cells[1]).strip() == "alive"


# ------------------------------------------------------------------------ processes


def test_fork_bomb_stops_at_the_process_cap(course):
    nb, error = run(
        course,
        [
            """
        import os, time, errno, threading
        print(len(os.listdir('/proc/self/task')), os.getuid(), flush=True)
        children, failure = [], None
        for _ in range(500):
            try:
                pid = os.fork()
            except OSError as e:
                failure = errno.errorcode[e.errno]
                break
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            children.append(pid)
        print(len(children), failure)
        """,
        ],
    )
    assert error is None
    threads, uid, forked, failure = text(nb.cells[0]).split()
    assert failure == "EAGAIN"
    # The cap (64) counts every process and thread of the sandbox uid, the kernel included
    # (its thread count moves a little while it forks, so it only bounds from below).
    assert int(forked) < FAST.processes
    assert int(forked) >= FAST.processes - int(threads) - 10
    assert wait_gone(int(uid)) == []  # and all of them ended with the kernel


def test_background_processes_are_killed_with_the_kernel(course):
    nb, error = run(
        course,
        [
            (
                "import subprocess, os\n"
                "a = subprocess.Popen(['sleep', '1000'], start_new_session=True)\n"
                "b = subprocess.Popen(['sh', '-c', '(setsid sleep 1001 &) ; exit 0'])\n"
                "b.wait(); print(os.getuid())"
            ),
            (
                "import time; time.sleep(0.5); print(subprocess.run(['ps', '-e', '-o', 'comm='],"
                " capture_output=True, text=True).stdout.count('sleep'))"
            ),
        ],
    )
    assert error is None
    uid = int(text(nb.cells[0]))
    assert text(nb.cells[1]).strip() == "2"  # both sleepers ran, detached from the kernel
    assert wait_gone(uid) == []


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def test_everything_ends_when_the_grader_is_killed(course, tmp_path):
    """The grader process dies (SIGKILL) in mid-notebook: its kernel must not linger."""
    script = tmp_path / "grader.py"
    folder_file = tmp_path / "folder"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from tests.test_sandbox import run, sandbox_for
        course = {{k: Path(v) for k, v in { ({k: str(v) for k, v in course.items()})!r}.items()}}
        sandbox = sandbox_for(course)
        Path({str(folder_file)!r}).write_text(str(sandbox.folder))
        run(course, ["import subprocess; subprocess.Popen(['sleep', '1000'])",
                     "import time; time.sleep(1000)"], sandbox=sandbox)
    """)
    )
    grader = subprocess.Popen([sys.executable, str(script)], cwd=REPO)
    try:
        deadline = time.monotonic() + 90
        sandboxed: list[int] = []
        while len(sandboxed) < 2 and time.monotonic() < deadline:  # the kernel and sleep
            time.sleep(0.5)
            sandboxed = [
                p for p in descendants(grader.pid) if os.stat(f"/proc/{p}").st_uid >= UID_BASE
            ]
        assert len(sandboxed) == 2, "the kernel and its child should be running"
        uid = os.stat(f"/proc/{sandboxed[0]}").st_uid
    finally:
        grader.kill()  # only the grader: the kernel runs in its own session
        grader.wait()
    assert wait_gone(uid) == []
    shutil.rmtree(folder_file.read_text(), ignore_errors=True)


# ------------------------------------------------------------------------ files


def test_huge_file_write_stops_at_the_file_size_cap(course):
    nb, error = run(
        course,
        [
            (
                "import os\nwith open('big.bin', 'wb') as f:\n"
                "    try:\n        f.write(b'x' * (50 * 2**20))\n"
                "    except OSError as e:\n        print('stopped', e.errno)\n"
                "print(os.path.getsize('big.bin') // 2**20)"
            ),
        ],
    )
    assert error is None
    stopped, code, size = text(nb.cells[0]).split()
    assert stopped == "stopped" and int(code) == 27  # EFBIG
    assert int(size) == FAST.file_size // MiB
    assert not (course["cwd"] / "big.bin").exists()  # written in the private copy only


def test_many_files_stop_at_the_scratch_cap(course):
    nb, error = run(
        course,
        [
            (
                "import os\nn = 0\ntry:\n    for n in range(100):\n"
                "        open(f'/tmp/f{n}', 'wb').write(b'x' * (4 * 2**20))\n"
                "except OSError as e:\n    print(n, e.errno)"
            ),
        ],
    )
    assert error is None
    written, code = text(nb.cells[0]).split()
    assert int(code) == 28  # ENOSPC: /tmp, /dev/shm, home and work share 64 MiB
    assert int(written) <= FAST.scratch // (4 * MiB)


# ------------------------------------------------------------------------ network


def test_no_network_not_even_the_graders_loopback(course):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    socket.create_connection(("127.0.0.1", port), timeout=2).close()  # works for the grader
    try:
        nb, error = run(
            course,
            [
                f"""
            import socket
            for address in [('127.0.0.1', {port}), ('1.1.1.1', 443), ('8.8.8.8', 53)]:
                try:
                    socket.create_connection(address, timeout=3)
                    print('connected')
                except OSError as e:
                    print(e.errno)
            """,
                """
            try:
                socket.getaddrinfo('example.com', 443)
                print('resolved')
            except OSError as e:
                print(type(e).__name__)
            """,
            ],
        )
    finally:
        listener.close()
    assert error is None
    # The grader's listener is out of reach (the sandbox's loopback is its own: refused),
    # the rest of the world too (ENETUNREACH).
    assert text(nb.cells[0]).split() == ["111", "101", "101"]
    assert text(nb.cells[1]).strip() == "gaierror"


# ------------------------------------------------------------------------ hidden paths


def test_grader_files_and_other_submissions_cannot_be_read(course):
    targets = {name: str(course[name]) for name in ("master", "gradebook", "other")}
    targets["repo_master"] = str(MASTER)
    targets["grader_sources"] = str(REPO / "grader" / "grading.py")
    targets["home"] = str(Path.home() / ".bashrc")
    nb, error = run(
        course,
        [
            f"""
        results = {{}}
        for name, path in {targets!r}.items():
            try:
                results[name] = open(path).read()[:20]
            except OSError as e:
                results[name] = type(e).__name__
        print(results)
        """,
            "import os; print(os.path.exists({!r}))".format(str(course["root"])),
            "print(open('data.txt').read(), sorted(os.listdir('.')))",
        ],
    )
    assert error is None
    results = eval(text(nb.cells[0]))
    assert set(results.values()) <= {"FileNotFoundError", "PermissionError"}, results
    assert SECRET not in "".join(text(c) for c in nb.cells)
    # The course folder is not there at all: the kernel works in a copy of its own folder.
    assert text(nb.cells[1]).strip() == "False"
    # A private copy of the kernel's own folder, without the notebook: the one being graded
    # holds the hidden tests that nbgrader put back.
    assert text(nb.cells[2]).strip() == "bob's data ['data.txt']"


def test_only_what_is_bound_is_there(course, tmp_path):
    """Deny by default: a copy of the course outside the repository (another clone, a
    backup), /home, /sys and the host's devices are simply not in the kernel's file system;
    Python and tlcourse are, read-only."""
    elsewhere = Path(tempfile.mkdtemp(prefix="tlcourse-copy-", dir="/"))
    try:
        (elsewhere / "cats_vs_dogs.ipynb").write_text(SECRET)
        nb, error = run(
            course,
            [
                f"""
            import os, sys
            print(sorted(os.listdir("/")))
            print([os.path.exists(p) for p in ({str(elsewhere)!r}, "/home", "/sys", "/srv")])
            print(os.listdir("/var"), sorted(os.listdir("/dev")))
            import numpy; print("numpy ok", os.path.isfile({str(REPO / "tlcourse" / "__init__.py")!r}))
            """
            ],
        )
    finally:
        shutil.rmtree(elsewhere)
    assert error is None
    top, absent, var_dev, python = text(nb.cells[0]).splitlines()
    assert elsewhere.name not in top and "'home'" not in top and "'sys'" not in top
    assert absent == "[False, False, False, False]"
    assert var_dev == "['tmp'] ['fd', 'full', 'null', 'random', 'shm', 'urandom', 'zero']"
    assert python == "numpy ok True"  # Python and tlcourse are bound


def test_nested_mounts_are_read_only_too(course, tmp_path):
    """A mount below a read-only path (here a tmpfs) is read-only in the kernel as well."""
    data = tmp_path / "data"
    (data / "nested").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(data / "nested")], check=True)
    try:
        (data / "nested" / "kept.txt").write_text("kept")
        (data / "nested" / "kept.txt").chmod(0o666)  # only the mount may refuse
        (data / "nested").chmod(0o777)
        sandbox = prepare_sandbox(limits=FAST, hide=[course["root"]], readonly=[data])
        nb, error = run(
            course,
            [
                f"""
            for path in ({str(data / "new.txt")!r}, {str(data / "nested" / "new.txt")!r},
                         {str(data / "nested" / "kept.txt")!r}):
                try:
                    open(path, "a").write("x")
                    print("wrote")
                except OSError as e:
                    print(e.errno)
            """
            ],
            sandbox=sandbox,
        )
        assert error is None
        assert text(nb.cells[0]).split() == ["30", "30", "30"]  # EROFS
        assert sorted(p.name for p in (data / "nested").iterdir()) == ["kept.txt"]
    finally:
        subprocess.run(["umount", str(data / "nested")], check=True)


def test_grader_files_and_other_submissions_cannot_be_written(course):
    targets = [str(course[n]) for n in ("master", "gradebook", "other", "cached")]
    targets += [str(course["root"] / "new.txt"), str(REPO / "grader" / "pwned.py"), str(MASTER)]
    nb, error = run(
        course,
        [
            f"""
        for path in {targets!r}:
            try:
                with open(path, 'a') as handle:
                    handle.write('pwned')
                print('wrote')
            except OSError as e:
                print(type(e).__name__)
        """
        ],
    )
    assert error is None
    outcomes = text(nb.cells[0]).split()
    # The cache's files belong to root: new files may go there (see the next test), but
    # prepared ones cannot be changed.
    assert len(outcomes) == len(targets)
    assert set(outcomes) <= {"FileNotFoundError", "PermissionError", "OSError"}, outcomes
    for name in ("master", "gradebook", "other", "cached"):
        assert course[name].read_text() == f"{name}: {SECRET}"
    assert not (course["root"] / "new.txt").exists()
    assert not (REPO / "grader" / "pwned.py").exists()


def test_cache_is_readable_and_writes_stay_in_the_sandbox(course):
    cache = course["cache"]
    nb, error = run(
        course,
        [
            f"""
        import os
        print(open({str(course["cached"])!r}).read())
        open({str(cache / "features" / "new.npz")!r}, 'w').write('student')
        os.makedirs({str(cache / "more")!r})
        print(sorted(os.listdir({str(cache / "features")!r})))
        """
        ],
    )
    assert error is None
    assert text(nb.cells[0]).split("\n")[:2] == [f"cached: {SECRET}", "['known.npz', 'new.npz']"]
    assert sorted(p.name for p in cache.rglob("*")) == ["features", "known.npz"]


def test_a_folder_hidden_inside_a_cache_stays_hidden(course):
    """The student's kernel reads the course cache but not the grader's part of it (the
    held-out photos' features)."""
    secret = course["cache"] / "grader-check" / "features" / "holdout.npz"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text(SECRET)
    sandbox = prepare_sandbox(
        limits=FAST, hide=[course["root"], secret.parent.parent], overlay=[course["cache"]]
    )
    try:
        nb, error = run(
            course,
            [
                f"""
            import os
            print(open({str(course["cached"])!r}).read())
            print(os.listdir({str(secret.parent.parent)!r}))
            try:
                open({str(secret)!r}).read()
            except OSError as e:
                print(type(e).__name__)
            """
            ],
            sandbox=sandbox,
        )
    finally:
        shutil.rmtree(secret.parent.parent)  # the cache is shared by this module's tests
    assert error is None
    assert text(nb.cells[0]).split("\n")[:3] == [f"cached: {SECRET}", "[]", "FileNotFoundError"]


# ------------------------------------------------------------------------ plumbing


def test_kernel_refuses_to_start_over_tcp(course):
    sandbox = sandbox_for(course)
    sandbox.config.KernelManager.transport = "tcp"
    del sandbox.config.KernelManager["ip"]
    sandbox.config.NotebookClient.startup_timeout = 30
    started = time.monotonic()
    _, error = run(course, ["print(1)"], sandbox=sandbox)
    assert isinstance(error, RuntimeError)
    assert time.monotonic() - started < 30  # it fails at once, no waiting for a timeout


def test_kernel_restart_and_interrupt_work(course):
    from jupyter_client import KernelManager

    sandbox = sandbox_for(course)
    with sandbox.activated():
        km = KernelManager(kernel_name=sandbox.kernel_name, config=sandbox.config)
        km.start_kernel(cwd=str(course["cwd"]))
    try:
        km.restart_kernel(now=False)
        client = km.client()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        msg = client.execute("import time; time.sleep(30)")
        time.sleep(2)
        km.interrupt_kernel()
        reply = client.get_shell_msg(timeout=20)
        while reply["parent_header"].get("msg_id") != msg:  # e.g. kernel_info replies
            reply = client.get_shell_msg(timeout=20)
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        client.stop_channels()
    finally:
        km.shutdown_kernel(now=True)
        sandbox.cleanup()


# ------------------------------------------------------------------------ the lab still works


@pytest.mark.slow
def test_tensorflow_and_keras_train_a_model_in_the_default_sandbox(course, monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    nb, error = run(
        course,
        [
            """
        import numpy as np, tensorflow as tf, keras
        x = np.random.default_rng(0).normal(size=(256, 8)).astype('float32')
        y = (x.sum(axis=1) > 0).astype('float32')
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation='relu'),
                                  keras.layers.Dense(1, activation='sigmoid')])
        model.compile('adam', 'binary_crossentropy', metrics=['accuracy'])
        history = model.fit(x, y, epochs=60, verbose=0)
        print(tf.__version__, history.history['accuracy'][-1] > 0.85)
        """,
            """
        import os
        print(os.environ['TF_CPP_MIN_LOG_LEVEL'])
        model.save('model.keras'); print(keras.models.load_model('model.keras').count_params())
        """,
        ],
        SandboxLimits(),
    )
    assert error is None, error
    assert text(nb.cells[0]).strip().splitlines()[-1] == f"{tf_version()} True"
    assert text(nb.cells[1]).split() == ["3", "161"]


def memory_cgroup_available() -> bool:
    """Whether this machine lets root create a memory cgroup (v1 or v2)."""
    with open("/proc/self/mounts") as mounts:
        return any(
            (line.split()[2] == "cgroup" and "memory" in line.split()[3].split(","))
            or line.split()[2] == "cgroup2"
            for line in mounts
        )


def test_total_memory_of_all_sandbox_processes_is_capped(course):
    """Three processes of 400 MiB each stay under the per-process cap (1 GiB) but not under
    the sandbox's total (768 MiB): the memory cgroup stops them."""
    if not memory_cgroup_available():
        if os.environ.get("CI"):
            pytest.fail("CI runs on machines with a memory cgroup: the total cap must be tested")
        pytest.skip("no memory cgroup on this machine: only the per-process cap applies")
    limits = SandboxLimits(**{**FAST.__dict__, "memory": 768 * MiB})
    nb, error = run(
        course,
        [
            """
        import subprocess, sys
        hold = "x = bytearray(b'x' * (400 * 2**20)); print('held', flush=True); import time; time.sleep(5)"
        procs = [subprocess.Popen([sys.executable, '-c', hold], stdout=subprocess.PIPE, text=True)
                 for _ in range(3)]
        print(sum(p.stdout.readline().strip() == 'held' for p in procs))
        """
        ],
        limits=limits,
    )
    held = int(text(nb.cells[0]) or 0) if error is None else 0
    assert held * 400 <= 768, f"{held} processes held 400 MiB each"


def test_handed_in_files_reach_the_grader_and_nothing_else(course, tmp_path):
    """What ``tlcourse.hand_in`` writes lands in the grader's folder at once (so it survives a
    kernel that dies); the grader then accepts only regular files with hand-in names."""
    from grader.preprocessors import accept_handed_in

    handin, accepted = tmp_path / "handin", tmp_path / "accepted"
    handin.mkdir(mode=0o1777)
    handin.chmod(0o1777)
    accepted.mkdir()
    roomy = SandboxLimits(**{**FAST.__dict__, "address_space": None})  # tlcourse imports TF
    sandbox = sandbox_for(course, roomy, handin=handin)
    nb, error = run(
        course,
        [
            "import os, tlcourse\nprint(os.environ['COURSE_HANDIN_DIR'])",
            "tlcourse.hand_in(class_counts={'cats': 3, 'dogs': 4})",
            "os.symlink('/etc/passwd', '/tmp/handin/secret.json')",
            "open('/tmp/handin/notes.txt', 'w').write('x')",
            "os._exit(0)",
        ],
        sandbox=sandbox,
    )
    assert isinstance(error, DeadKernelError)
    assert text(nb.cells[0]).strip() == "/tmp/handin"
    assert accept_handed_in(handin, accepted, before={}) == ["class_counts.json"]
    assert sorted(p.name for p in accepted.iterdir()) == ["class_counts.json"]
    assert (accepted / "class_counts.json").read_text() == '{"cats": 3, "dogs": 4}'
    assert (accepted / "class_counts.json").stat().st_mode & 0o777 == 0o644


# ------------------------------------------------------------------------ system calls

# Each call the seccomp filter (grader/seccomp.py) refuses, made through ctypes with
# arguments that do no harm if it goes through: without the filter most of these end with
# another errno, or succeed. Then what must still work. ``NR`` is set before this runs.
SECCOMP_PROBES = r"""
import ctypes, errno, json, os, subprocess, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
AT_FDCWD, CLONE_THREAD, OPEN_TREE_CLONE = -100, 0x10000, 1
NAMESPACES = {"CLONE_NEWNS": 0x20000, "CLONE_NEWCGROUP": 0x2000000, "CLONE_NEWUTS": 0x4000000,
              "CLONE_NEWIPC": 0x8000000, "CLONE_NEWUSER": 0x10000000,
              "CLONE_NEWPID": 0x20000000, "CLONE_NEWNET": 0x40000000, "CLONE_NEWTIME": 0x80}
reader, writer = os.pipe()
char = ctypes.c_char(b"x")

def outcome(result):
    return errno.errorcode.get(ctypes.get_errno(), "?") if result == -1 else f"returned {result}"

def call(name, *args):
    ctypes.set_errno(0)
    args = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    return outcome(libc.syscall(ctypes.c_long(NR[name]), *args))

sleeper = subprocess.Popen(["sleep", "30"])
results = {
    "unshare(CLONE_NEWUSER)": call("unshare", NAMESPACES["CLONE_NEWUSER"]),
    "setns(-1, 0)": call("setns", -1, 0),
    "ptrace(PTRACE_ATTACH, own child)": call("ptrace", 16, sleeper.pid, 0, 0),
    "keyctl(GET_KEYRING_ID, session)": call("keyctl", 0, -3, 0),
    "add_key(user, process keyring)": call("add_key", b"user", b"probe", b"secret", 6, -2),
    "request_key(user)": call("request_key", b"user", b"probe", None, 0),
    "bpf(BPF_MAP_CREATE, NULL)": call("bpf", 0, None, 0),
    "perf_event_open(NULL)": call("perf_event_open", None, 0, -1, -1, 0),
    "userfaultfd(UFFD_USER_MODE_ONLY)": call("userfaultfd", 1),
    "mount(tmpfs on /tmp)": call("mount", b"none", b"/tmp", b"tmpfs", 0, None),
    "umount2(/tmp, MNT_DETACH)": call("umount2", b"/tmp", 2),
    "pivot_root(/tmp, /tmp)": call("pivot_root", b"/tmp", b"/tmp"),
    "open_tree(/tmp, OPEN_TREE_CLONE)": call("open_tree", AT_FDCWD, b"/tmp", OPEN_TREE_CLONE),
    "open_tree_attr(/tmp, OPEN_TREE_CLONE)": call(
        "open_tree_attr", AT_FDCWD, b"/tmp", OPEN_TREE_CLONE, None, 0),
    "move_mount(-1 onto /tmp)": call("move_mount", -1, b"", AT_FDCWD, b"/tmp", 4),
    "fsopen(tmpfs)": call("fsopen", b"tmpfs", 0),
    "fsconfig(-1, CMD_CREATE)": call("fsconfig", -1, 6, None, None, 0),
    "fsmount(-1)": call("fsmount", -1, 0, 0),
    "fspick(/tmp)": call("fspick", AT_FDCWD, b"/tmp", 0),
    "mount_setattr(/tmp, NULL)": call("mount_setattr", AT_FDCWD, b"/tmp", 0, None, 0),
    "ioctl(pipe, TIOCSTI)": call("ioctl", writer, 0x5412, ctypes.byref(char)),
    "ioctl(pipe, TIOCSTI | 1 << 32)": call("ioctl", writer, 0x5412 | 1 << 32, ctypes.byref(char)),
    "ioctl(pipe, TIOCLINUX)": call("ioctl", writer, 0x541C, ctypes.byref(char)),
}
for flag, value in NAMESPACES.items():  # with CLONE_THREAD alone the kernel says EINVAL
    results[f"clone({flag} | CLONE_THREAD)"] = call("clone", value | CLONE_THREAD, 0, 0, 0, 0)
results["clone3(NULL, 0)"] = call("clone3", None, 0)
if os.uname().machine == "x86_64":
    ctypes.set_errno(0)
    results["getpid through x32"] = outcome(libc.syscall(ctypes.c_long(0x40000000 | 39)))
    # In a child: a machine without the i386 ABI answers int 0x80 with SIGSEGV.
    i386 = ("import ctypes, mmap\n"
            "page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
            "page.write(bytes([0xB8, 20, 0, 0, 0, 0xCD, 0x80, 0xC3]))  # getpid; int 0x80; ret\n"
            "print(ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(page)))())")
    child = subprocess.run([sys.executable, "-c", i386], capture_output=True, text=True)
    value = int(child.stdout) if child.returncode == 0 else None
    results["getpid through i386 int 0x80"] = (
        f"killed by signal {-child.returncode}" if value is None
        else errno.errorcode.get(-value, "?") if value < 0 else f"returned {value}")
sleeper.kill()
sleeper.wait()
print(json.dumps(results))
"""
SECCOMP_STILL_WORKS = r"""
import threading
done = []
thread = threading.Thread(target=done.append, args=(1,))
thread.start()
thread.join()
child = subprocess.run(["grep", "^Seccomp:", "/proc/self/status"], capture_output=True, text=True)
print(json.dumps({
    "threading.Thread": "ran" if done else "did not run",
    "/usr/bin/true": subprocess.run(["/usr/bin/true"]).returncode,
    "ioctl(pipe, TIOCGWINSZ)": call("ioctl", reader, 0x5413, ctypes.create_string_buffer(8)),
    "clone(CLONE_THREAD)": call("clone", CLONE_THREAD, 0, 0, 0, 0),
    "Seccomp (kernel)": [l.split()[1] for l in open("/proc/self/status") if l.startswith("Seccomp:")],
    "Seccomp (child)": child.stdout.split()[1:],
}))
"""
STILL_WORKS = {
    "threading.Thread": "ran",
    "/usr/bin/true": 0,
    "ioctl(pipe, TIOCGWINSZ)": "ENOTTY",  # the kernel's answer: a pipe is no terminal
    "clone(CLONE_THREAD)": "EINVAL",  # the kernel's answer too: clone itself goes through
    "Seccomp (kernel)": ["2"],  # a filter, inherited by what the kernel starts
    "Seccomp (child)": ["2"],
}


def seccomp_probes(cwd: Path) -> tuple[dict, dict]:
    """Run the probes in a new sandboxed kernel started in ``cwd``: what each refused call
    returned, and what still works (the second cell: the kernel survived the first)."""
    numbers = f"NR = {SYSCALLS[machine()]!r}\n"
    nb, error = run(
        {"cwd": cwd},
        [numbers + SECCOMP_PROBES, SECCOMP_STILL_WORKS],
        FAST,
        sandbox=prepare_sandbox(limits=FAST),
    )
    assert error is None, error
    outcomes = []
    for cell in nb.cells:
        try:
            outcomes.append(json.loads(text(cell)))
        except ValueError:
            raise AssertionError(f"the cell did not print its results: {text(cell)}") from None
    return outcomes[0], outcomes[1]


def check_seccomp_probes(refused: dict, works: dict) -> None:
    expected = {name: "ENOSYS" if name.startswith("clone3") else "EPERM" for name in refused}
    if refused.get("getpid through i386 int 0x80") == "killed by signal 11":
        expected["getpid through i386 int 0x80"] = "killed by signal 11"  # no i386 ABI here
    assert len(refused) >= 32, refused
    assert {k: v for k, v in refused.items() if v != expected[k]} == {}
    assert works == STILL_WORKS


def outcomes_line(who: str, refused: dict, seconds: float) -> str:
    by_outcome: dict[str, list[str]] = {}
    for name, outcome in refused.items():
        by_outcome.setdefault(outcome, []).append(name)
    listed = "; ".join(f"{outcome}: {', '.join(names)}" for outcome, names in by_outcome.items())
    return f"{seconds:7.1f} s  seccomp probes {who}: {listed}"


def test_syscall_numbers_are_those_of_the_kernel_headers():
    headers = {
        "x86_64": Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
        "aarch64": Path("/usr/include/asm-generic/unistd.h"),  # the generic table
    }
    checked = 0
    for name, header in headers.items():
        if not header.exists():
            continue
        defined = dict(
            re.findall(r"^#define __NR_(\w+)\s+(\d+)\s*$", header.read_text(), re.MULTILINE)
        )
        known = {call: number for call, number in SYSCALLS[name].items() if call in defined}
        assert {call: int(defined[call]) for call in known} == known
        checked += len(known)
    if not checked:
        pytest.skip("no kernel headers: apt install linux-libc-dev")


def test_the_syscall_filter_refuses_namespaces_mounts_tracing_and_keeps_the_kernel_alive(
    course, report
):
    started = time.perf_counter()
    refused, works = seccomp_probes(course["cwd"])
    report(outcomes_line("as root", refused, time.perf_counter() - started))
    check_seccomp_probes(refused, works)


def test_the_syscall_filter_holds_for_an_ordinary_users_kernel_too(ordinary_user, report):
    """Without root the kernel runs in a user namespace of its own: the filter is the same."""
    script = textwrap.dedent(f"""
        import json, os, shutil, sys, tempfile
        from pathlib import Path
        home = tempfile.mkdtemp(prefix="tlgrader-seccomp-")
        os.environ["HOME"] = home  # jupyter's connection files
        sys.path.insert(0, {str(REPO)!r})
        from tests.test_sandbox import seccomp_probes
        try:
            (Path(home) / "lab").mkdir()
            print(json.dumps(seccomp_probes(Path(home) / "lab")))
        finally:
            shutil.rmtree(home, ignore_errors=True)
    """)
    started = time.perf_counter()
    result = run_as(ordinary_user, ["-c", script], timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    refused, works = json.loads(result.stdout.splitlines()[-1])
    report(outcomes_line(f"as {ordinary_user.pw_name}", refused, time.perf_counter() - started))
    check_seccomp_probes(refused, works)
