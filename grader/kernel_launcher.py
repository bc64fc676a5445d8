"""Start an IPython kernel inside a sandbox; run as root by jupyter_client.

    python -I -S kernel_launcher.py SANDBOX_JSON CONNECTION_FILE [kernel arguments ...]

``grader.sandbox`` writes SANDBOX_JSON and a kernelspec whose argv is the line above. This
file is a standalone script (standard library only, no import of ``grader``): it runs as root
with the working directory of a student's notebook, so it imports nothing from there.

Process tree (every process stays in the process group jupyter_client created, so an
interrupt reaches the kernel as usual)::

    supervisor  (host PID namespace; root)   enforces the whole-notebook time limit, kills
      |                                      everything when the grader dies or says TERM
      +-- init  (PID 1 of a new PID namespace; root) builds the mounts, reaps orphans
            +-- kernel  (ipykernel, sandbox uid, rlimits, no new privileges)

New namespaces: mount, network (only a loopback that is down), PID, IPC, UTS. When init
exits, the kernel kills every process left in its PID namespace, so nothing a student
started survives the kernel. The kernel talks to jupyter_client over Unix sockets (ZeroMQ
``ipc``) in the sandbox's ``run`` folder, the only host folder it can write to: sticky, not
listable, and its sockets are made with umask 077. Set-up errors end the launch with exit
status 70 and a ``[sandbox]`` line on stderr; nothing runs unsandboxed.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import select
import shutil
import signal
import socket
import sys
import time

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38

EXIT_SETUP_FAILED = 70
HANDIN_INSIDE = "/tmp/handin"  # the kernel's COURSE_HANDIN_DIR, in the private /tmp

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.prctl.argtypes = [
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
]


class SetupError(RuntimeError):
    pass


def log(message: str) -> None:
    try:
        os.write(2, f"[sandbox] {message}\n".encode())
    except OSError:
        pass


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(err)}")


def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    enc = lambda s: None if s is None else s.encode()
    _check(
        _libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)),
        f"mount {fstype or 'bind'} {source} on {target}",
    )


def prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, value, 0, 0, 0), f"prctl {option}")


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
            try:
                busy.add(os.stat(f"/proc/{entry}").st_uid)
            except OSError:
                pass
    start = os.getpid() % count
    for step in range(count):
        uid = base + (start + step) % count
        if uid not in busy:
            return uid
    raise SetupError("no free sandbox uid")


def kernel_env(config: dict, home: str, conn: str) -> dict[str, str]:
    """The grader's chosen variables, and nothing else of this process's environment."""
    env = {k: os.environ[k] for k in config.get("passed_on", []) if k in os.environ}
    env.update(config.get("env_set", {}))
    env.update(
        HOME=home,
        TMPDIR="/tmp",
        USER="student",
        LOGNAME="student",
        MPLCONFIGDIR=f"{home}/.config/matplotlib",
        JPY_CONNECTION_FILE=conn,
    )
    # The host's pid means nothing here; "1" (the kernel's real parent, init) turns off
    # ipykernel's parent polling and its "Ctrl-C will not work" banner.
    env["JPY_PARENT_PID"] = "1"
    return env


# --------------------------------------------------------------------------- mounts


def copy_tree(src: str, dst: str, uid: int) -> None:
    """Copy a submission folder: regular files, folders and symlinks (not followed).

    Notebooks are left out: the one being run holds the hidden tests nbgrader put back,
    and the kernel does not need it.
    """
    for entry in os.scandir(src):
        target = os.path.join(dst, entry.name)
        if entry.name.endswith(".ipynb"):
            continue
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), target)
        elif entry.is_dir(follow_symlinks=False):
            os.mkdir(target, 0o755)
            copy_tree(entry.path, target, uid)
        elif entry.is_file(follow_symlinks=False):
            shutil.copyfile(entry.path, target, follow_symlinks=False)
            os.chmod(target, 0o644)
        else:
            continue
        os.lchown(target, uid, uid)


def makedirs_as_root(path: str) -> None:
    if not os.path.lexists(path):
        os.makedirs(path, 0o755, exist_ok=True)


def build_mounts(config: dict, uid: int, cwd: str, ipc_dir: str) -> None:
    """Make the file system the kernel sees; runs as root in the new mount namespace."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    hide = [p for p in map(os.path.realpath, config["hide"]) if os.path.lexists(p)]
    readonly = [
        p
        for p in map(os.path.realpath, config["readonly"])
        if os.path.isdir(p) or os.path.isfile(p)
    ]
    overlay = [p for p in map(os.path.realpath, config["overlay"]) if os.path.isdir(p)]

    # 1. Scratch: one size-capped tmpfs for every writable place (tmp, home, work, overlays).
    box = config["box"]
    os.makedirs(box, 0o700, exist_ok=True)
    mount("tmpfs", box, "tmpfs", MS_NOSUID | MS_NODEV, f"size={config['scratch_bytes']},mode=0755")
    for name, mode, owner in (
        ("tmp", 0o1777, 0),
        ("shm", 0o1777, 0),
        ("work", 0o755, uid),
        ("ov", 0o755, 0),
        ("empty", 0o755, 0),
    ):
        os.mkdir(f"{box}/{name}", mode)
        os.chmod(f"{box}/{name}", mode)
        os.chown(f"{box}/{name}", owner, owner)
    with open(f"{box}/nothing", "w"):
        pass
    os.chmod(f"{box}/nothing", 0)

    # 2. The working folder: a private copy of the submission, unless it would copy
    #    something hidden (e.g. the kernel was started in the repository).
    if any(inside(h, cwd) for h in hide) or cwd == "/":
        log(f"not copying {cwd}: it holds a hidden path; the working folder is empty")
    else:
        copy_tree(cwd, f"{box}/work", uid)

    # 3. Overlays: the shared cache, readable; writes land in the scratch and vanish.
    #    Folders are handed to the sandbox uid in the merged view only (the copy-up of a
    #    folder is its metadata, not its files), so the kernel may add files there.
    overlay_ok = []
    for number, path in enumerate(overlay):
        layer = f"{box}/ov/{number}"
        for sub in ("lower", "upper", "work", "merged"):
            os.makedirs(f"{layer}/{sub}", 0o755)
        mount(path, f"{layer}/lower", None, MS_BIND | MS_REC)
        mount(None, f"{layer}/lower", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
        try:
            mount(
                "overlay",
                f"{layer}/merged",
                "overlay",
                MS_NOSUID | MS_NODEV,
                f"lowerdir={layer}/lower,upperdir={layer}/upper,workdir={layer}/work",
            )
        except SetupError as error:
            log(f"{error}; {path} is read-only instead")
            readonly.append(path)
            continue
        for folder, _dirs, _files in os.walk(f"{layer}/merged"):
            os.lchown(folder, uid, uid)
        overlay_ok.append((path, f"{layer}/merged"))

    # Sources are opened now: once folders are covered, their paths no longer lead there.
    sources: dict[str, int] = {}

    def source(path: str) -> str:
        if path not in sources:
            sources[path] = os.open(path, os.O_PATH | os.O_CLOEXEC)
        return f"/proc/self/fd/{sources[path]}"

    nothing = source(f"{box}/nothing")

    ops = []  # (target, order, action); parents before children, covers before binds
    for path in hide:
        ops.append((path, 0, ("hide", None)))
    for target in ("/tmp", "/var/tmp"):
        if os.path.isdir(target):
            ops.append((target, 1, ("bind", source(f"{box}/tmp"), False)))
    if os.path.isdir("/dev/shm"):
        ops.append(("/dev/shm", 1, ("bind", source(f"{box}/shm"), False)))
    for path in readonly:
        ops.append((path, 2, ("bind", source(path), True)))
    for path, merged in overlay_ok:
        ops.append((path, 2, ("bind", source(merged), False)))
    ops.append((ipc_dir, 3, ("bind", source(ipc_dir), False)))
    if config.get("handin"):  # the grader's size-capped hand-in folder, writable
        ops.append((HANDIN_INSIDE, 3, ("bind", source(config["handin"]), False)))
    ops.append((cwd, 3, ("bind", source(f"{box}/work"), False)))
    ops.sort(key=lambda op: (op[0].rstrip("/").count("/"), op[1]))

    covers = []
    for target, _order, action in ops:
        if action[0] == "hide":
            if not os.path.lexists(target):
                continue  # already out of sight (e.g. under the private /tmp)
            if os.path.isdir(target) and not os.path.islink(target):
                mount(
                    "tmpfs",
                    target,
                    "tmpfs",
                    MS_NOSUID | MS_NODEV | MS_NOEXEC,
                    "size=64k,nr_inodes=4096,mode=0755",
                )
                covers.append(target)
            else:
                mount(nothing, target, None, MS_BIND)
            continue
        _, src, read_only = action
        if os.path.isdir(src):
            makedirs_as_root(target)
        elif not os.path.lexists(target):
            makedirs_as_root(os.path.dirname(target))
            with open(target, "w"):
                pass
        mount(src, target, None, MS_BIND | MS_REC)
        flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | (MS_RDONLY if read_only else 0)
        mount(None, target, None, flags)
    for target in covers:  # after every mount point below them was made
        mount(
            None,
            target,
            None,
            MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
            "size=64k,nr_inodes=4096,mode=0755",
        )
    for fd in sources.values():
        os.close(fd)
    # The scratch stays mounted under the sandbox folder, which is hidden; the binds above
    # keep its parts in use. /proc last: it shows only this PID namespace.
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


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


# ipykernel as the sandbox runs it: stdout/stderr keep at most CAP characters per cell request
# (None: no cap); IPython 9's copy of everything a cell prints (kept for %history, without
# limit) is off; PRELOAD runs before the kernel serves, so a checking kernel can import and
# build what it will need while the student's notebook still runs. The kernel is started
# with --IPKernelApp.capture_fd_output=False: output written to file descriptors 1 and 2 (C
# libraries such as TensorFlow logging at start-up, child processes) goes to /dev/null.
KERNEL_PROGRAM = """
import contextlib

from IPython.core.interactiveshell import InteractiveShell
from ipykernel.iostream import OutStream
from ipykernel.kernelapp import launch_new_instance

if hasattr(InteractiveShell, "_tee"):
    InteractiveShell._tee = lambda self, channel: contextlib.nullcontext()


class CappedOutStream(OutStream):
    cap = CAP

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


try:
    exec(PRELOAD, {})
except BaseException:
    pass
launch_new_instance()
"""


def exec_kernel(
    config: dict, uid: int, cwd: str, conn: str, home: str, kernel_args: list[str]
) -> None:
    """Drop every privilege and become ipykernel (the child of init)."""
    limits = config["limits"]
    with open("/proc/self/oom_score_adj", "w") as handle:
        handle.write("1000")  # the OOM killer takes a sandbox before the grader
    for name, value in (
        ("RLIMIT_AS", limits.get("address_space")),
        ("RLIMIT_DATA", limits.get("data")),
        ("RLIMIT_NPROC", limits.get("processes")),
        ("RLIMIT_FSIZE", limits.get("file_size")),
        ("RLIMIT_NOFILE", limits.get("open_files")),
        ("RLIMIT_CPU", limits.get("cpu_seconds")),
        ("RLIMIT_CORE", 0),
    ):
        if value is not None:
            resource.setrlimit(getattr(resource, name), (int(value), int(value)))
    os.umask(0o077)
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    os.chdir(cwd)
    # The inherited stdin/stdout/stderr are the grader's: a student's child processes could
    # write there without end. ipykernel captures what the notebook prints on its own pipes.
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    env = kernel_env(config, home, conn)
    python = config["python"]
    cap = limits.get("output_per_cell")
    code = KERNEL_PROGRAM.replace("CAP", repr(int(cap) if cap else None), 1)
    code = code.replace("PRELOAD", repr(config.get("preload") or ""))
    argv = [
        python,
        "-c",
        code,
        "-f",
        conn,
        *kernel_args,
        "--IPKernelApp.outstream_class=__main__.CappedOutStream",
        "--IPKernelApp.capture_fd_output=False",
    ]
    os.execve(python, argv, env)


def run_init(config: dict, uid: int, cwd: str, conn_file: str, kernel_args: list[str]) -> int:
    """PID 1 of the sandbox: set up, start the kernel, reap, exit with the kernel."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    socket.sethostname("sandbox")
    with open(conn_file) as handle:
        info = json.load(handle)
    build_mounts(config, uid, cwd, config["runtime_dir"])

    home = "/tmp/home"  # in the private /tmp
    os.makedirs(home, 0o700)
    os.chown(home, uid, uid)
    conn = f"{home}/.kernel-connection.json"
    with open(conn, "w") as handle:
        json.dump(info, handle)
    os.chmod(conn, 0o600)
    os.chown(conn, uid, uid)

    kernel = os.fork()
    if kernel == 0:
        try:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            exec_kernel(config, uid, cwd, conn, home, kernel_args)
        except BaseException as error:  # noqa: BLE001 - report and never return
            log(f"cannot start the kernel: {error!r}")
        os._exit(EXIT_SETUP_FAILED)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return EXIT_SETUP_FAILED
        except InterruptedError:
            continue
        if pid == kernel:
            return os.waitstatus_to_exitcode(status)


def supervise(init: int, config: dict, parent: int) -> int:
    """Wait for init; kill the whole sandbox on TERM, grader death or time limit."""

    def stop(signum, _frame):
        _kill(init)
        os._exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, stop)
    timeout = config["limits"].get("notebook_timeout")
    deadline = time.monotonic() + timeout if timeout else None
    pidfd = os.pidfd_open(init)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    while True:
        wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
        try:
            ready = poller.poll(wait * 1000)
        except InterruptedError:
            ready = []
        if ready:
            _pid, status = os.waitpid(init, 0)
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code
        if os.getppid() != parent:
            log("the grader is gone: stopping the kernel")
            _kill(init)
        elif deadline is not None and time.monotonic() >= deadline:
            log(f"the notebook ran longer than {timeout} s: the kernel was stopped")
            _kill(init)
            deadline = None


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        log("usage: kernel_launcher.py SANDBOX_JSON CONNECTION_FILE [kernel args]")
        return 2
    config_path, conn_file, kernel_args = argv[0], os.path.realpath(argv[1]), argv[2:]
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # interrupts reach the kernel directly
    try:
        if os.geteuid() != 0:
            raise SetupError("the sandbox launcher must run as root")
        with open(config_path) as handle:
            config = json.load(handle)
        with open(conn_file) as handle:
            info = json.load(handle)
        runtime = os.path.realpath(config["runtime_dir"])
        if info.get("transport") != "ipc":
            raise SetupError("the kernel has no network: set KernelManager.transport='ipc'")
        if os.path.dirname(os.path.realpath(info["ip"])) != runtime:
            raise SetupError(f"the IPC sockets must be in {runtime}: set KernelManager.ip")
        config["runtime_dir"] = runtime
        uid = pick_uid(config)
        cwd = os.path.realpath(os.getcwd())
        parent = os.getppid()
        cgroup = join_memory_cgroup(config["limits"].get("memory"))
        _check(
            _libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID),
            "unshare",
        )
    except (SetupError, OSError, ValueError, KeyError) as error:
        log(f"cannot start: {error}")
        return EXIT_SETUP_FAILED
    init = os.fork()
    if init == 0:
        try:
            code = run_init(config, uid, cwd, conn_file, kernel_args)
        except BaseException as error:  # noqa: BLE001
            log(f"set-up failed: {error}")
            code = EXIT_SETUP_FAILED
        os._exit(code)
    try:
        return supervise(init, config, parent)
    finally:
        leave_memory_cgroup(cgroup)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
