"""A sandboxed Jupyter kernel for student code: bubblewrap, without Docker and without root.

:func:`prepare_sandbox` writes a kernelspec whose command is ``grader/kernel_launcher.py``
and returns the traitlets settings that make nbclient (and so nbgrader's autograde) start
every kernel through it. The launcher starts the kernel in a bubblewrap sandbox (Debian's
``bubblewrap``, the sandbox Flatpak uses), which denies everything it does not grant:

* a file system that starts empty and holds only ``/usr`` (with the ``/bin``, ``/lib``...
  links), a few files of ``/etc``, a minimal ``/dev`` (null, zero, full, random,
  urandom), its own ``/proc``, and, read-only, the Python installation, the course's packages and the
  ``readonly`` paths. The ``overlay`` folders (caches) show read-only files the kernel may
  add to, in its scratch. Paths in ``hide`` that lie inside any of these are covered.
* one writable place, a tmpfs of ``SandboxLimits.scratch`` bytes (``/tmp``, with the
  kernel's home and a working folder copied from the notebook's, without notebooks;
  ``/dev/shm`` and ``/var/tmp`` lead there), plus the socket folder and the hand-in folder.
* new user (without root), mount, PID, network, IPC and UTS namespaces: no network (the
  kernel talks to nbclient through Unix sockets, ZeroMQ ``ipc``), no capabilities, no new
  privileges, a seccomp filter (``grader/seccomp.py``); everything a student starts dies
  with the kernel or with the grader.
* rlimits: address space, processes (counted in the sandbox), file size, open files,
  optional CPU seconds and data segment; a whole-notebook time limit.
* an environment of the grader's choosing only (``environment``, ``FIXED_ENVIRONMENT``).
* as root, also: its own uid from a range (no files of its own on the host), a memory
  cgroup for all its processes together, and (in grader.grading) a size-capped hand-in
  folder. :func:`unenforced_limits` names what is not enforced for the current user.

Typical use (the kernelspec is found through ``JUPYTER_PATH``)::

    sandbox = prepare_sandbox(hide=[out_dir, submissions_dir])
    with sandbox.activated():            # sets JUPYTER_PATH for this process
        config.merge(sandbox.config)     # Execute.kernel_name, KernelManager.transport/ip
        ...run nbgrader autograde or nbclient...
    sandbox.cleanup()
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import zmq
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient
from traitlets import default
from traitlets.config import Config

from .config import CELL_TIMEOUT, REPO

GiB = 1 << 30
MiB = 1 << 20
KERNEL_NAME = "tlcourse-sandbox"
LAUNCHER = Path(__file__).resolve().with_name("kernel_launcher.py")
UID_BASE, UID_COUNT = 200_000, 100_000  # as root, kernels run as a free uid in this range
HANDIN_INSIDE = "/tmp/handin"  # as in kernel_launcher.py
MAX_SOCKET_PATH = 100  # sun_path holds 107 bytes; "<dir>/ipc-NNNN" must fit
# The kernel's environment is what the grader names (prepare_sandbox's ``environment``), on
# top of these fixed values; nothing else of the grader's environment reaches it, so a kernel
# starts the same whatever the caller's shell holds. NBGRADER_EXECUTION, which nbgrader sets
# while it autogrades, is the one variable passed on.
FIXED_ENVIRONMENT = {
    "LANG": "C.UTF-8",
    "MPLBACKEND": "Agg",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "PYTHONUNBUFFERED": "1",
}
PASSED_ON = ("NBGRADER_EXECUTION",)


@dataclass(frozen=True)
class SandboxLimits:
    """What a sandboxed kernel may use. ``None`` means no limit."""

    cell_timeout: int = CELL_TIMEOUT  # s per cell (nbclient: Execute.timeout)
    notebook_timeout: int | None = 3600  # s from kernel start to kill, whole notebook
    # RLIMIT_AS per process. The course's heaviest lab notebook peaked at 3.2 GiB of
    # address space on 2 cores and passed under a 6 GiB cap; TensorFlow reserves more with
    # more cores (thread stacks, malloc arenas), hence the margin.
    address_space: int | None = 12 * GiB
    data: int | None = None  # RLIMIT_DATA per process
    processes: int = 512  # RLIMIT_NPROC for the sandbox uid (threads too)
    file_size: int = 1 * GiB  # RLIMIT_FSIZE: largest file the kernel writes
    open_files: int = 4096  # RLIMIT_NOFILE
    cpu_seconds: int | None = None  # RLIMIT_CPU per process
    scratch: int = 2 * GiB  # tmpfs: /tmp, /dev/shm, working copy, caches
    # Memory of every process of the sandbox together, tmpfs scratch included (a memory
    # cgroup; when the machine has none, only the per-process cap above applies).
    memory: int | None = 8 * GiB
    # What one cell may print (stdout and stderr); the rest is dropped in the kernel. A print
    # loop would otherwise queue output faster than it is sent, until the memory cap kills
    # the kernel. The grader keeps 1 MiB per cell of what arrives (GradingExecute).
    output_per_cell: int | None = 2 * MiB


@contextlib.contextmanager
def environment(values: dict[str, str | None]):
    """Set (or, for None, remove) environment variables of this process for the block."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        _set_environment(values)
        yield
    finally:
        _set_environment(saved)


def _set_environment(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@dataclass
class Sandbox:
    """A prepared sandbox: its folder, kernelspec and the settings that select it."""

    folder: Path
    kernel_name: str
    config: Config
    environ: dict[str, str] = field(default_factory=dict)

    @contextlib.contextmanager
    def activated(self):
        """Set :attr:`environ` (``JUPYTER_PATH``) in this process for the block."""
        with environment(self.environ):
            yield self

    def readiness(self, connection_file: str, wait: float = 5.0) -> dict | None:
        """The readiness report of the kernel started with ``connection_file``:
        ``{"ready": True}``, ``{"ready": False, "error": ...}``, or None when the kernel
        ended before it reported (its launcher writes the report as the kernel sends it, on
        a pipe the kernel closes before any student code runs)."""
        from .kernel_launcher import ready_report_path

        path = Path(ready_report_path(str(self.folder / "run"), connection_file))
        deadline = time.monotonic() + wait
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return report if isinstance(report, dict) else None

    def cleanup(self) -> None:
        """Remove the sandbox folder (kernelspec, sockets); kernels must have ended."""
        shutil.rmtree(self.folder, ignore_errors=True)


class BoundedKernelClient(AsyncKernelClient):
    """A kernel client that holds a bounded amount of what the kernel sends.

    ZeroMQ queues up to 1,000 messages per socket, of any size: a kernel that publishes
    10 MB displays in a loop filled the grader's memory with 5 GB in 30 s. Here a socket
    queues at most ``QUEUED_MESSAGES`` messages (the rest wait in the kernel, under its
    memory cap) of at most ``LARGEST_MESSAGE`` bytes. A larger message ends the connection:
    that kernel's later outputs are lost, while its replies, and so its errors and grades,
    still arrive.
    """

    QUEUED_MESSAGES = 16
    LARGEST_MESSAGE = 64 * MiB

    @default("context")
    def _bounded_context(self) -> zmq.asyncio.Context:
        self._created_context = True
        context = zmq.asyncio.Context()
        context.setsockopt(zmq.RCVHWM, self.QUEUED_MESSAGES)
        context.setsockopt(zmq.MAXMSGSIZE, self.LARGEST_MESSAGE)
        return context


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot run on this machine; the message says what to install or change."""


@functools.cache
def bubblewrap() -> str:
    """The ``bwrap`` program, checked once: it must exist and make its namespaces here."""
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailable(
            "the sandbox needs bubblewrap (bwrap), which is not installed: "
            "`sudo apt install bubblewrap` (Debian, Ubuntu) or `sudo dnf install bubblewrap` "
            "(Fedora, RHEL)"
        )
    probe = [path, "--unshare-all", "--ro-bind", "/", "/", "true"]
    if os.geteuid() != 0:
        probe[1:1] = ["--unshare-user", "--disable-userns"]
    result = subprocess.run(probe, check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise SandboxUnavailable(
            f"bubblewrap cannot make its namespaces here ({result.stderr.strip()}): allow "
            "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 or "
            "user.max_user_namespaces > 0; on Ubuntu 24.04 also an AppArmor profile for "
            "bwrap), or run the grader as root"
        )
    return path


def unfiltered_syscalls() -> list[str]:
    """The system-call filter, when ``grader/seccomp.py`` has no table for this machine
    (kernel_launcher.py then starts kernels without it)."""
    from .seccomp import machine, supported

    return [] if supported() else [f"the system-call filter (no seccomp table for {machine()})"]


def unenforced_limits() -> list[str]:
    """The limits the sandbox cannot enforce for this user on this machine."""
    if os.geteuid() == 0:
        with open("/proc/self/mounts") as mounts:
            types = [(line.split()[2], line.split()[3]) for line in mounts]
        if any(t == "cgroup2" or (t == "cgroup" and "memory" in o) for t, o in types):
            return unfiltered_syscalls()
        return [
            "--memory-gib for all of a kernel's processes together (no memory cgroup)",
            *unfiltered_syscalls(),
        ]
    return [
        (
            "--memory-gib for all of a kernel's processes together (a memory cgroup needs "
            "root; each process is still held to its address-space cap)"
        ),
        "the size of the hand-in folder (a tmpfs needs root; each file is still held to 1 GiB)",
        *unfiltered_syscalls(),
    ]


def mount_tmpfs(folder: Path, options: str) -> None:
    """Mount a tmpfs with ``options`` (e.g. ``size=256m``) on ``folder`` (root only)."""
    libc = ctypes.CDLL(None, use_errno=True)
    flags = 2 | 4  # MS_NOSUID | MS_NODEV
    if libc.mount(b"tmpfs", str(folder).encode(), b"tmpfs", flags, options.encode()) != 0:
        raise OSError(ctypes.get_errno(), f"mount tmpfs on {folder}")


def umount(folder: Path) -> None:
    """Unmount ``folder`` (lazily: nothing may still use it)."""
    ctypes.CDLL(None, use_errno=True).umount2(str(folder).encode(), 2)  # MNT_DETACH


def default_readonly() -> list[Path]:
    """Paths every kernel needs to read: the Python installation and the course's packages
    (``tlcourse``, which notebooks import, and ``labchecks``, which hidden tests import)."""
    paths = {
        Path(sys.prefix).resolve(),
        Path(sys.base_prefix).resolve(),
        Path(sys.executable).resolve().parent.parent,
        REPO / "tlcourse",
        REPO / "labchecks",
    }
    return sorted(paths)


def prepare_sandbox(
    folder: Path | None = None,
    limits: SandboxLimits = SandboxLimits(),
    *,
    hide=(),
    readonly=(),
    overlay=(),
    uid: int | None = None,
    kernel_name: str = KERNEL_NAME,
    handin: Path | None = None,
    environment: dict[str, str] | None = None,
    preload: str = "",
) -> Sandbox:
    """Write the sandbox's kernelspec and launcher settings; return how to select them.

    Nothing is visible unless named: ``readonly``: paths to show read-only (beside Python and
    ``tlcourse``). ``hide``: paths to cover where they lie inside a shown path (the grader's
    part of a cache). ``overlay``: cache folders shown with a throwaway write layer (they
    must be filled before grading: the kernel has no network). ``uid``: a fixed uid instead
    of a free one from a range. ``folder`` must be short (Unix socket paths); default: a
    new /tmp folder. ``handin``: a host folder that the notebook hands objects in to
    (``tlcourse.hand_in``; inside the kernel ``COURSE_HANDIN_DIR``). ``environment``: the
    kernel's environment variables (see ``FIXED_ENVIRONMENT``). ``preload``: Python code the
    kernel process runs before it serves and before any student code: the grader's proof
    that the kernel has what it was given (and its imports); what it concluded is the
    kernel's readiness report (:meth:`Sandbox.readiness`).
    """
    bwrap = bubblewrap()
    folder = Path(folder or tempfile.mkdtemp(prefix="tlsbx-")).resolve()
    runtime = folder / "run"
    if len(str(runtime / "ipc-9999")) > MAX_SOCKET_PATH:
        raise ValueError(f"sandbox folder {folder} is too long for Unix socket paths")
    kernels = folder / "kernels" / kernel_name
    kernels.mkdir(parents=True, exist_ok=True)
    runtime.mkdir(exist_ok=True)
    # Every kernel creates its sockets here, as its own uid: sticky (no one removes another
    # kernel's socket), not listable. Sockets are made with umask 077 (only root connects).
    os.chmod(runtime, 0o1733)
    os.chmod(folder, 0o711)

    settings = {
        "python": sys.executable,
        "bwrap": bwrap,
        "uid": uid,
        "uid_base": UID_BASE,
        "uid_count": UID_COUNT,
        "limits": asdict(limits),
        "scratch_bytes": limits.scratch,
        "hide": [str(p) for p in [folder, *hide]],
        "readonly": [str(p) for p in [*default_readonly(), *readonly]],
        "overlay": [str(p) for p in overlay],
        "runtime_dir": str(runtime),
        "passed_on": list(PASSED_ON),
        "env_set": {
            **FIXED_ENVIRONMENT,
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            **(environment or {}),
        },
        "handin": str(Path(handin).resolve()) if handin else None,
        "preload": preload,
    }
    if handin:
        settings["env_set"]["COURSE_HANDIN_DIR"] = HANDIN_INSIDE
    settings_file = folder / "sandbox.json"
    settings_file.write_text(json.dumps(settings, indent=1))
    os.chmod(settings_file, stat.S_IRUSR | stat.S_IWUSR)
    spec = {
        "argv": [
            sys.executable,
            "-I",
            "-S",
            str(LAUNCHER),
            str(settings_file),
            "{connection_file}",
        ],
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {"debugger": False},
    }
    (kernels / "kernel.json").write_text(json.dumps(spec, indent=1))

    c = Config()
    for section in (c.NotebookClient, c.Execute):  # nbclient alone, and nbgrader's Execute
        section.kernel_name = kernel_name
        section.timeout = limits.cell_timeout
    c.KernelManager.transport = "ipc"
    c.KernelManager.ip = str(runtime / "ipc")
    c.AsyncKernelManager.client_factory = BoundedKernelClient  # nbclient and nbgrader use it
    old = os.environ.get("JUPYTER_PATH")
    environ = {"JUPYTER_PATH": os.pathsep.join(filter(None, [str(folder), old]))}
    return Sandbox(folder, kernel_name, c, environ)
