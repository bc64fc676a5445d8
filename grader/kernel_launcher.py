"""Start an IPython kernel inside a bubblewrap sandbox; run by jupyter_client.

    python -I -S kernel_launcher.py SANDBOX_JSON CONNECTION_FILE [kernel arguments ...]

``grader.sandbox`` writes SANDBOX_JSON and a kernelspec whose argv is the line above. This
file is a standalone script (standard library only, no import of ``grader``): it runs with
the working directory of a student's notebook, so it imports nothing from there.

Process tree (all in the process group jupyter_client created, so an interrupt reaches the
kernel as usual)::

    launcher  (the grader's user, or root)   checks the settings, joins a memory cgroup
      |                                      (root), stops everything on TERM, when the
      |                                      grader dies or at the whole-notebook limit
      +-- bwrap                              builds the sandbox (bubblewrap does the
            +-- bwrap's init  (PID 1)        namespaces and mounts), dies with the launcher
                  +-- kernel  (PID 2)        KERNEL_PROGRAM: drops to the sandbox uid
                                             (root), rlimits, then ipykernel

The kernel's file system starts empty: bubblewrap binds into it only ``/usr`` (and the
``/bin``, ``/lib``... links into it), a few files of ``/etc``, a minimal ``/dev``, its own
``/proc``, the Python installation and the ``readonly`` paths read-only, the ``overlay``
folders read-only under ``/run/overlay/N`` (the kernel sees them at their own paths through
a writable copy made of links), the socket folder and the hand-in folder. Everything it
may write lives in one size-capped tmpfs (``/tmp``; ``/dev/shm`` and ``/var/tmp`` lead
there). New user (unless root), mount, PID, network (loopback only), IPC and UTS
namespaces; no capabilities; no new privileges; a seccomp filter (``seccomp.py``). Before
it serves, the kernel runs the grader's readiness check and sends its report through a pipe
that it closes before any student code runs; the launcher writes it to ``<sandbox>/ready/``,
which no kernel sees (``grader.sandbox.Sandbox.readiness``). Set-up errors end the launch with exit
status 70 and a ``[sandbox]`` line on stderr; nothing runs unsandboxed.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time

EXIT_SETUP_FAILED = 70
SCRATCH = "/tmp"  # the one writable tmpfs
HOME = "/tmp/home"
WORK = "/tmp/work"  # the kernel's working folder: a copy of the notebook's folder
SUBMISSION = "/run/submission"  # the notebook's folder, read-only, notebooks covered
OVERLAYS = "/run/overlay"  # the overlay folders, read-only; copies of links in /tmp/.overlay
HANDIN_INSIDE = "/tmp/handin"  # the kernel's COURSE_HANDIN_DIR
SYSTEM_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives")
DEVICES = ("null", "zero", "full", "random", "urandom")


class SetupError(RuntimeError):
    pass


def log(message: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, f"[sandbox] {message}\n".encode())


def inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


# --------------------------------------------------------------------------- choices


def pick_uid(config: dict) -> int:
    """A uid no running process has: RLIMIT_NPROC then counts only this sandbox."""
    if config.get("uid") is not None:
        return int(config["uid"])
    base, count = int(config["uid_base"]), int(config["uid_count"])
    busy = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                busy.add(os.stat(f"/proc/{entry}").st_uid)
    start = os.getpid() % count
    for step in range(count):
        uid = base + (start + step) % count
        if uid not in busy:
            return uid
    raise SetupError("no free sandbox uid")


def kernel_env(config: dict) -> dict[str, str]:
    """The grader's chosen variables, and nothing else of this process's environment."""
    env = {k: os.environ[k] for k in config.get("passed_on", []) if k in os.environ}
    env.update(config.get("env_set", {}))
    env.update(
        HOME=HOME,
        TMPDIR=SCRATCH,
        USER="student",
        LOGNAME="student",
        MPLCONFIGDIR=f"{HOME}/.config/matplotlib",
        # The host's pid means nothing here; "1" turns off ipykernel's parent polling.
        JPY_PARENT_PID="1",
    )
    return env


# --------------------------------------------------------------------------- the sandbox


def bwrap_args(config: dict, cwd: str, uid: int | None) -> list[str]:
    """bubblewrap's command line: namespaces, then the file system, in mount order."""
    args = ["bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
    args += ["--unshare-cgroup-try", "--hostname", "sandbox", "--die-with-parent"]
    if uid is None:  # not root: a user namespace, with no way to make another
        args += ["--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
    else:  # root: the kernel drops to ``uid`` itself, then has no capability left
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    args += ["--ro-bind", "/usr", "/usr"]
    for name in SYSTEM_LINKS:
        path = f"/{name}"
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for name in ETC_FILES:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    args += ["--proc", "/proc", "--tmpfs", "/dev"]
    for name in DEVICES:
        args += ["--dev-bind", f"/dev/{name}", f"/dev/{name}"]
    args += ["--symlink", "/proc/self/fd", "/dev/fd", "--symlink", f"{SCRATCH}/.shm", "/dev/shm"]
    args += ["--remount-ro", "/dev"]
    args += ["--perms", "1777", "--size", str(config["scratch_bytes"]), "--tmpfs", SCRATCH]

    hide = [os.path.realpath(p) for p in config["hide"]]
    made: set[str] = {"/", "/usr", "/dev", "/proc", SCRATCH}

    def make_parents(target: str) -> None:
        # bubblewrap copies the modes of the host's folders; these must be traversable.
        parent = os.path.dirname(target)
        if parent in made or any(inside(parent, m) for m in ("/usr", "/proc", "/dev")):
            return
        make_parents(parent)
        args.extend(["--perms", "0755", "--dir", parent])
        made.add(parent)

    def bind(source: str, target: str, flag: str = "--ro-bind") -> None:
        make_parents(target)
        args.extend([flag, source, target])
        made.add(target)
        for path in hide:  # a hidden path inside what was bound: covered again
            if inside(path, source) and path != source and os.path.lexists(path):
                covered = target + path[len(source) :]
                if os.path.isdir(path):
                    args.extend(["--tmpfs", covered, "--remount-ro", covered])
                else:
                    args.extend(["--ro-bind", "/dev/null", covered])

    make_parents("/var/tmp")
    args += ["--symlink", SCRATCH, "/var/tmp"]
    readonly = sorted(
        {os.path.realpath(p) for p in config["readonly"] if os.path.exists(p)}, key=len
    )
    shown: list[str] = []
    for path in readonly:
        if inside(path, "/usr") or any(inside(path, s) for s in shown):
            continue
        bind(path, path)
        shown.append(path)
    for number, path in enumerate(map(os.path.realpath, config["overlay"])):
        if os.path.isdir(path):
            bind(path, f"{OVERLAYS}/{number}")
            make_parents(path)
            args += ["--symlink", f"{SCRATCH}/.overlay/{number}", path]
    if cwd != "/" and not any(inside(h, cwd) for h in hide):
        bind(cwd, SUBMISSION)
        for folder, _dirs, files in os.walk(cwd):
            for name in files:  # the notebook being graded holds the hidden tests
                if name.endswith(".ipynb"):
                    relative = os.path.relpath(os.path.join(folder, name), cwd)
                    args += ["--ro-bind", "/dev/null", f"{SUBMISSION}/{relative}"]
    bind(config["runtime_dir"], config["runtime_dir"], "--bind")
    if config.get("handin"):  # the grader's hand-in folder, writable
        args += ["--bind", config["handin"], HANDIN_INSIDE]
    return [*args, "--remount-ro", "/", "--chdir", SCRATCH]


def syscall_filter() -> tuple[list[str], tuple[int, ...]]:
    """bubblewrap's ``--seccomp FD`` and the file descriptor to pass on: a memfd holding the
    program of ``seccomp.py`` beside this file (loaded by its path: this script runs in the
    student's folder, and isolated). On a machine it has no table for: nothing, and a line
    on stderr (``grader.sandbox.unenforced_limits`` names it too)."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seccomp.py")
    try:
        spec = importlib.util.spec_from_file_location("tlcourse_seccomp", path)
        if spec is None or spec.loader is None:
            raise ImportError("not a Python file")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        build, unsupported = module.build, module.UnsupportedMachine
    except (ImportError, SyntaxError, OSError, AttributeError) as error:
        raise SetupError(f"the system-call filter {path}: {error}") from error
    try:
        program = build()
    except unsupported as error:
        log(f"no system-call filter: {error}")
        return [], ()
    fd = os.memfd_create("tlcourse-seccomp", os.MFD_CLOEXEC)
    try:
        view = memoryview(program)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)  # bubblewrap reads it from where it stands
    except OSError:
        os.close(fd)
        raise
    return ["--seccomp", str(fd)], (fd,)


# ipykernel as the sandbox runs it (``python -I -c KERNEL_PROGRAM SETTINGS``). First, as
# bubblewrap left it: the sandbox uid (root: switch to it; the capabilities go with root),
# rlimits, a working folder copied from the notebook's, writable copies (made of links) of
# the overlay folders, the connection file, and stdin/stdout/stderr to /dev/null (what C
# libraries and child processes write to file descriptors 1 and 2 is dropped). Then:
# stdout/stderr keep at most ``cap`` characters per cell request (None: no cap); IPython
# 9's copy of everything a cell prints is off; ``preload`` runs before the kernel serves,
# so a checking kernel can import and build what it will need while the notebook runs.
KERNEL_PROGRAM = """
import contextlib, json, os, resource, shutil, signal, sys

SETTINGS = json.loads(sys.argv[1])
if os.getuid() == 0:
    os.setgroups([])
    os.setresgid(*[SETTINGS["uid"]] * 3)
    os.setresuid(*[SETTINGS["uid"]] * 3)
for name, value in SETTINGS["rlimits"].items():
    if value is not None:
        resource.setrlimit(getattr(resource, name), (int(value), int(value)))
with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as handle:
    handle.write("1000")  # the OOM killer takes a sandbox before the grader
os.umask(0o077)
home, work, scratch = SETTINGS["home"], SETTINGS["work"], SETTINGS["scratch"]
for folder in (f"{home}/.config", f"{scratch}/.shm", work):
    os.makedirs(folder, 0o755, exist_ok=True)
os.chmod(f"{scratch}/.shm", 0o1777)
if os.path.isdir(SETTINGS["submission"]):
    try:
        shutil.copytree(SETTINGS["submission"], work, symlinks=True, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.ipynb"))
    except (OSError, shutil.Error) as error:
        os.write(2, f"[sandbox] the notebook's folder was not copied: {error}\\n".encode())
overlays = SETTINGS["overlays"]
for number in sorted(os.listdir(overlays)) if os.path.isdir(overlays) else []:
    lower, upper = f"{overlays}/{number}", f"{scratch}/.overlay/{number}"
    for folder, dirs, files in os.walk(lower):
        here = upper + folder[len(lower):]
        os.makedirs(here, 0o755, exist_ok=True)
        for name in files:
            os.symlink(os.path.join(folder, name), os.path.join(here, name))
connection = f"{home}/.kernel-connection.json"
with open(connection, "w") as handle:
    handle.write(SETTINGS["connection"])
os.chdir(work)
null = os.open("/dev/null", os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
signal.signal(signal.SIGINT, signal.default_int_handler)  # the launcher ignores it

from IPython.core.interactiveshell import InteractiveShell
from ipykernel.iostream import OutStream
from ipykernel.kernelapp import launch_new_instance

if hasattr(InteractiveShell, "_tee"):
    InteractiveShell._tee = lambda self, channel: contextlib.nullcontext()


class CappedOutStream(OutStream):
    cap = SETTINGS["cap"]

    def write(self, string):
        if self.cap is None:
            return super().write(string)
        request = self.parent_header.get("msg_id")
        if request != getattr(self, "_request", None):
            self._request, self._left = request, self.cap
        if self._left <= 0:
            return len(string)
        self._left -= len(string)
        if self._left < 0:
            super().write(string[: len(string) + self._left])
            super().write(f"\\n[output cut in the sandbox: more than {self.cap} characters]\\n")
            return len(string)
        return super().write(string)


# The readiness report: what ``preload`` (the grader's check that the kernel has what it
# was given) concluded, written to a pipe only the launcher reads, then closed, before any
# student code runs. A kernel that dies before this line never reports ready.
report = {"ready": True}
try:
    exec(SETTINGS["preload"], {})
except BaseException as error:
    import traceback
    lines = traceback.format_exception(error)
    report = {"ready": False, "error": "".join(lines[-4:])[-600:]}  # one write < PIPE_BUF
if SETTINGS["ready_fd"] is not None:
    os.write(SETTINGS["ready_fd"], (json.dumps(report) + "\\n").encode())
    os.close(SETTINGS["ready_fd"])
launch_new_instance(argv=["-f", connection, *SETTINGS["kernel_args"]])
"""


def kernel_settings(
    config: dict, uid: int | None, connection: str, kernel_args: list[str], ready_fd: int | None
) -> str:
    """KERNEL_PROGRAM's one argument (JSON)."""
    limits = config["limits"]
    cap = limits.get("output_per_cell")
    return json.dumps(
        {
            "uid": uid,
            "rlimits": {
                "RLIMIT_AS": limits.get("address_space"),
                "RLIMIT_DATA": limits.get("data"),
                "RLIMIT_NPROC": limits.get("processes"),
                "RLIMIT_FSIZE": limits.get("file_size"),
                "RLIMIT_NOFILE": limits.get("open_files"),
                "RLIMIT_CPU": limits.get("cpu_seconds"),
                "RLIMIT_CORE": 0,
            },
            "cap": int(cap) if cap else None,
            "preload": config.get("preload") or "",
            "ready_fd": ready_fd,
            "connection": connection,
            "kernel_args": [
                *kernel_args,
                "--IPKernelApp.outstream_class=__main__.CappedOutStream",
                "--IPKernelApp.capture_fd_output=False",
            ],
            "home": HOME,
            "work": WORK,
            "scratch": SCRATCH,
            "submission": SUBMISSION,
            "overlays": OVERLAYS,
        }
    )


# --------------------------------------------------------------------------- memory


def join_memory_cgroup(limit: int | None) -> str | None:
    """Put this process (and so every process of the sandbox) in a new memory cgroup of
    ``limit`` bytes; return its folder, or None when the machine has no usable cgroup."""
    if not limit:
        return None
    candidates = []
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            _dev, where, fstype, options, *_ = line.split()
            if fstype == "cgroup" and "memory" in options.split(","):
                candidates.append((where, "memory.limit_in_bytes"))
            elif fstype == "cgroup2":
                candidates.append((where, "memory.max"))
    for root, limit_file in candidates:
        for old in os.listdir(root) if os.path.isdir(root) else []:
            if old.startswith("tlcourse-sandbox-"):  # left by a killed launcher; if empty
                with contextlib.suppress(OSError):
                    os.rmdir(os.path.join(root, old))
        folder = os.path.join(root, f"tlcourse-sandbox-{os.getpid()}")
        try:
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, limit_file), "w") as handle:
                handle.write(str(int(limit)))
            with open(os.path.join(folder, "cgroup.procs"), "w") as handle:
                handle.write(str(os.getpid()))
            return folder
        except OSError:
            with contextlib.suppress(OSError):
                os.rmdir(folder)
    log("no writable memory cgroup: the memory cap is per process only (RLIMIT_AS)")
    return None


def leave_memory_cgroup(folder: str | None) -> None:
    if folder is None:
        return
    with contextlib.suppress(OSError):
        with open(os.path.join(os.path.dirname(folder), "cgroup.procs"), "w") as handle:
            handle.write(str(os.getpid()))
        os.rmdir(folder)


# --------------------------------------------------------------------------- processes


def ready_report_path(runtime_dir: str, connection_file: str) -> str:
    """Where the launcher writes a kernel's readiness report: beside the sandbox's socket
    folder (``<sandbox>/ready/<connection file name>``), which no kernel can see."""
    name = os.path.basename(connection_file)
    return os.path.join(os.path.dirname(runtime_dir), "ready", name)


def pass_on_report(ready: int, report: str) -> None:
    """Copy the kernel's report, the first line on the readiness pipe, to ``report``
    (atomically). It is written in one piece (under PIPE_BUF bytes) before any student code
    runs, so one read takes all of it; the pipe is then closed, so nothing later is read."""
    try:
        data = os.read(ready, 65536)
    except OSError:
        data = b""
    os.close(ready)
    if b"\n" not in data:
        return
    with contextlib.suppress(OSError):
        os.makedirs(os.path.dirname(report), exist_ok=True)
        partial = f"{report}.partial"
        with open(partial, "wb") as handle:
            handle.write(data.split(b"\n", 1)[0] + b"\n")
        os.replace(partial, report)


def supervise(
    sandbox: subprocess.Popen, config: dict, parent: int, ready: int | None, report: str
) -> int:
    """Wait for bubblewrap; kill the whole sandbox on TERM, grader death or time limit.
    Pass the kernel's readiness report on from the pipe ``ready`` to the file ``report``."""

    def stop(signum, _frame):
        sandbox.kill()
        os._exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, stop)
    timeout = config["limits"].get("notebook_timeout")
    deadline = time.monotonic() + timeout if timeout else None
    poller = select.poll()
    pidfd = os.pidfd_open(sandbox.pid)
    poller.register(pidfd, select.POLLIN)
    if ready is not None:
        poller.register(ready, select.POLLIN)
    while True:
        wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
        try:
            events = dict(poller.poll(wait * 1000))
        except InterruptedError:
            events = {}
        if ready is not None and ready in events:
            poller.unregister(ready)
            pass_on_report(ready, report)
            ready = None
        if pidfd in events:
            code = sandbox.wait()
            return code if code >= 0 else 128 - code
        if os.getppid() != parent:
            log("the grader is gone: stopping the kernel")
            sandbox.kill()
        elif deadline is not None and time.monotonic() >= deadline:
            log(f"the notebook ran longer than {timeout} s: the kernel was stopped")
            sandbox.kill()
            deadline = None


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        log("usage: kernel_launcher.py SANDBOX_JSON CONNECTION_FILE [kernel args]")
        return 2
    config_path, connection_file, kernel_args = argv[0], os.path.realpath(argv[1]), argv[2:]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # interrupts reach the kernel directly
    cgroup = None
    try:
        with open(config_path) as handle:
            config = json.load(handle)
        with open(connection_file) as handle:
            connection = handle.read()
        info = json.loads(connection)
        runtime = os.path.realpath(config["runtime_dir"])
        if info.get("transport") != "ipc":
            raise SetupError("the kernel has no network: set KernelManager.transport='ipc'")
        if os.path.dirname(os.path.realpath(info["ip"])) != runtime:
            raise SetupError(f"the IPC sockets must be in {runtime}: set KernelManager.ip")
        config["runtime_dir"] = runtime
        uid = pick_uid(config) if os.geteuid() == 0 else None
        cwd = os.path.realpath(os.getcwd())
        args = bwrap_args(config, cwd, uid)
        ready_read, ready_write = os.pipe()
        settings = kernel_settings(config, uid, connection, kernel_args, ready_write)
        if uid is not None:
            cgroup = join_memory_cgroup(config["limits"].get("memory"))
        seccomp, seccomp_fds = syscall_filter()
        sandbox = subprocess.Popen(
            [*args, *seccomp, config["python"], "-I", "-c", KERNEL_PROGRAM, settings],
            executable=config["bwrap"],
            env=kernel_env(config),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            cwd="/",
            pass_fds=(ready_write, *seccomp_fds),
        )
        os.close(ready_write)
        for fd in seccomp_fds:  # bubblewrap holds its own copy; it closes it once read
            os.close(fd)
    except (SetupError, OSError, ValueError, KeyError) as error:
        log(f"cannot start: {error}")
        leave_memory_cgroup(cgroup)
        return EXIT_SETUP_FAILED
    report = ready_report_path(config["runtime_dir"], connection_file)
    try:
        return supervise(sandbox, config, os.getppid(), ready_read, report)
    finally:
        leave_memory_cgroup(cgroup)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
