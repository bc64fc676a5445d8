"""The sandboxed kernel's system-call filter: a seccomp program in classic BPF, standard
library only (``kernel_launcher.py`` loads this file by its path, without ``grader``).

:func:`build` returns the program as bubblewrap's ``--seccomp FD`` reads it (an array of
``struct sock_filter``); bubblewrap installs it, after ``no_new_privs``, right before it
starts the kernel, so it holds for the kernel and everything the kernel starts. A refused
call fails with an errno (EPERM; ENOSYS for clone3), never with a signal, so the kernel
goes on. Refused: new namespaces (unshare, setns, clone with a namespace flag), mounts and
the mount API, ptrace, the kernel keyrings, BPF programs, perf events, userfaultfd, typing
into a terminal (ioctl TIOCSTI, TIOCLINUX), and every call made through another ABI (i386
``int 0x80``, x32). Everything else is allowed: the namespaces, the dropped capabilities
and the rlimits do the rest.
"""

from __future__ import annotations

import errno
import os
import struct
import sys

# seccomp_data.arch of the native ABI of each machine (linux/audit.h).
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}

# System-call numbers. x86_64: /usr/include/x86_64-linux-gnu/asm/unistd_64.h; aarch64: the
# generic table (asm-generic/unistd.h). From 424 on both share one table; open_tree_attr
# (Linux 6.15) is newer than Debian 12's headers: 467 in both.
COMMON = {  # one table for every architecture from 424 on
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "clone3": 435,
    "mount_setattr": 442,
    "open_tree_attr": 467,
}
SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": {
        "ioctl": 16,
        "clone": 56,
        "ptrace": 101,
        "pivot_root": 155,
        "mount": 165,
        "umount2": 166,
        "add_key": 248,
        "request_key": 249,
        "keyctl": 250,
        "unshare": 272,
        "perf_event_open": 298,
        "setns": 308,
        "bpf": 321,
        "userfaultfd": 323,
        **COMMON,
    },
    "aarch64": {
        "ioctl": 29,
        "umount2": 39,
        "mount": 40,
        "pivot_root": 41,
        "unshare": 97,
        "ptrace": 117,
        "add_key": 217,
        "request_key": 218,
        "keyctl": 219,
        "clone": 220,
        "perf_event_open": 241,
        "setns": 268,
        "bpf": 280,
        "userfaultfd": 282,
        **COMMON,
    },
}

# Refused with EPERM whatever their arguments.
REFUSED = (
    "unshare",
    "setns",
    "ptrace",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "mount",
    "umount2",
    "pivot_root",
    "move_mount",
    "open_tree",
    "open_tree_attr",
    "fsopen",
    "fsmount",
    "fsconfig",
    "fspick",
    "mount_setattr",
)
# clone's flags (args[0] on both machines) that make a namespace. In clone's flags the low
# byte is the exit signal (at most 64), so CLONE_NEWTIME (0x80) is never set by real code.
CLONE_NAMESPACES = (
    0x00020000  # CLONE_NEWNS
    | 0x02000000  # CLONE_NEWCGROUP
    | 0x04000000  # CLONE_NEWUTS
    | 0x08000000  # CLONE_NEWIPC
    | 0x10000000  # CLONE_NEWUSER
    | 0x20000000  # CLONE_NEWPID
    | 0x40000000  # CLONE_NEWNET
    | 0x00000080  # CLONE_NEWTIME
)
TERMINAL_INPUT = (0x5412, 0x541C)  # ioctl requests TIOCSTI, TIOCLINUX (args[1])
X32_SYSCALL_BIT = 0x40000000  # x86_64: a call through the x32 ABI

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6]. Both
# machines are little-endian: the low 32 bits of args[i] are at 16 + 8 * i.
NR, ARCH = 0, 4


def low_word_of_arg(index: int) -> int:
    return 16 + 8 * index


# Classic BPF instructions (linux/filter.h, linux/bpf_common.h).
LOAD = 0x20  # BPF_LD | BPF_W | BPF_ABS: A = 32-bit word at offset k of seccomp_data
JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K: A == k
JGE = 0x35  # BPF_JMP | BPF_JGE | BPF_K: A >= k (unsigned)
JSET = 0x45  # BPF_JMP | BPF_JSET | BPF_K: A & k != 0
RETURN = 0x06  # BPF_RET | BPF_K
ALLOW = 0x7FFF0000  # SECCOMP_RET_ALLOW
ERRNO = 0x00050000  # SECCOMP_RET_ERRNO | errno


class UnsupportedMachine(ValueError):
    """This module has no system-call table for the machine."""


def machine() -> str:
    """The machine as the kernel's native ABI names it; a 32-bit Python is not native."""
    name = os.uname().machine
    return name if sys.maxsize > 2**32 else f"{name} (32-bit Python)"


def supported(name: str | None = None) -> bool:
    return (name or machine()) in SYSCALLS


# An instruction before its jumps are resolved: jt and jf are a label or None (the next one).
Step = tuple[int, str | None, str | None, int]


def _assemble(steps: list[Step | str]) -> bytes:
    """Pack ``steps`` (instructions, and label names that mark the next instruction) as
    ``struct sock_filter`` entries: u16 code, u8 jt, u8 jf, u32 k, native byte order."""
    labels: dict[str, int] = {}
    instructions: list[Step] = []
    for step in steps:
        if isinstance(step, str):
            labels[step] = len(instructions)
        else:
            instructions.append(step)
    program = bytearray()
    for index, (code, true, false, k) in enumerate(instructions):
        skips = [0 if target is None else labels[target] - index - 1 for target in (true, false)]
        if not all(0 <= skip <= 255 for skip in skips):
            raise ValueError(f"jump out of reach at instruction {index}")
        program += struct.pack("=HBBI", code, skips[0], skips[1], k)
    return bytes(program)


def build(name: str | None = None) -> bytes:
    """The filter for machine ``name`` (default: this one); UnsupportedMachine if unknown."""
    name = name or machine()
    if name not in SYSCALLS:
        raise UnsupportedMachine(f"no seccomp table for {name}")
    numbers = SYSCALLS[name]
    steps: list[Step | str] = [
        (LOAD, None, None, ARCH),
        (JEQ, None, "refuse", AUDIT_ARCH[name]),  # another ABI (i386, arm32): refused
        (LOAD, None, None, NR),
    ]
    if name == "x86_64":
        steps.append((JGE, "refuse", None, X32_SYSCALL_BIT))
    steps += [(JEQ, "refuse", None, numbers[call]) for call in REFUSED]
    steps += [
        (JEQ, "clone", None, numbers["clone"]),
        # clone3's flags are behind a pointer, which a filter cannot read. ENOSYS, not EPERM:
        # glibc (2.34 and later) starts threads and processes with clone3 and falls back to
        # clone, whose flags are checked below, only on ENOSYS. Flatpak does the same.
        (JEQ, "no_such_call", None, numbers["clone3"]),
        (JEQ, "ioctl", None, numbers["ioctl"]),
        (RETURN, None, None, ALLOW),
        "clone",
        (LOAD, None, None, low_word_of_arg(0)),
        (JSET, "refuse", "allow", CLONE_NAMESPACES),
        "ioctl",  # the request is an unsigned int: its low 32 bits are all of it
        (LOAD, None, None, low_word_of_arg(1)),
        *[(JEQ, "refuse", None, request) for request in TERMINAL_INPUT],
        (RETURN, None, None, ALLOW),
        "refuse",
        (RETURN, None, None, ERRNO | errno.EPERM),
        "no_such_call",
        (RETURN, None, None, ERRNO | errno.ENOSYS),
        "allow",
        (RETURN, None, None, ALLOW),
    ]
    return _assemble(steps)
