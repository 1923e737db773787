"""A second wall behind the query checks: confine a query worker process before it takes work.

Whatever a query makes the engine try, a confined worker

- opens no network socket: a seccomp filter lets `socket()` create only Unix sockets (and
  refuses io_uring, which could open sockets behind the filter's back), unless SERVICE
  endpoints are allowed, in which case Landlock (ABI 4, Linux 6.7) lets TCP reach only their
  ports and binds nothing;
- reads only the paths it is given (the build's store, Python and its libraries) and writes
  nothing (Landlock, Linux 5.13 and later).

Both use the kernel's interfaces through ctypes (no compiled helper): `confine` applies what the
kernel offers and says what it applied, so that the service can say at start what is missing.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import platform
import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.restype = ctypes.c_int

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

# seccomp (linux/seccomp.h, linux/filter.h, linux/audit.h)
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K
_AF_UNIX = 1
_X32_SYSCALL_BIT = 0x40000000

#: (audit architecture, socket, io_uring_setup) by machine.
_ARCHES = {
    "x86_64": (0xC000003E, 41, 425),
    "aarch64": (0xC00000B7, 198, 425),
}

# Landlock (linux/landlock.h)
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_RULE_NET_PORT = 2
_FS_EXECUTE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 2, 1 << 3
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
#: Every filesystem right each Landlock ABI knows (v1: 13 rights, v2 REFER, v3 TRUNCATE,
#: v5 IOCTL_DEV): handling them all with no rule that grants them denies them.
_FS_RIGHTS = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}
_FS_RIGHTS_LATEST = (1 << 16) - 1
#: The Landlock ABI from which TCP ports can be restricted.
_NET_ABI = 4


@dataclass
class Confinement:
    """What `confine` applied: the network filter, the Landlock ABI, and what was not possible."""

    network: str = "open"  # "closed" (no TCP/UDP socket), "ports" (TCP to allowed ports only)
    landlock_abi: int = 0
    missing: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing

    def describe(self) -> str:
        parts = []
        if self.network == "closed":
            parts.append("no network (seccomp)")
        elif self.network == "ports":
            parts.append("TCP only to the allowed SERVICE endpoints' ports (Landlock)")
        if self.landlock_abi:
            parts.append(
                f"files read-only and confined to the build (Landlock ABI {self.landlock_abi})"
            )
        text = "; ".join(parts) or "nothing"
        if self.missing:
            text += "; NOT confined: " + "; ".join(self.missing)
        return text


def _syscall(*args: int | bytes | ctypes.c_void_p | None) -> int:
    result = _libc.syscall(*args)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(result)


def _seccomp_no_inet() -> None:
    """Install a filter: socket() only for AF_UNIX, no io_uring, nothing of the x32 ABI."""
    arch, socket_nr, io_uring_nr = _ARCHES[platform.machine()]
    deny = _RET_ERRNO | errno.EACCES
    program = [
        (_LD_W_ABS, 0, 0, 4),  # arch
        (_JEQ_K, 1, 0, arch),
        (_RET_K, 0, 0, deny),
        (_LD_W_ABS, 0, 0, 0),  # syscall number
        (_JGE_K, 0, 1, _X32_SYSCALL_BIT),
        (_RET_K, 0, 0, deny),
        (_JEQ_K, 0, 1, io_uring_nr),
        (_RET_K, 0, 0, deny),
        (_JEQ_K, 0, 3, socket_nr),
        (_LD_W_ABS, 0, 0, 16),  # args[0] (low half): the address family
        (_JEQ_K, 1, 0, _AF_UNIX),
        (_RET_K, 0, 0, deny),
        (_RET_K, 0, 0, _RET_ALLOW),
    ]
    raw = b"".join(struct.pack("HBBI", *insn) for insn in program)
    buffer = ctypes.create_string_buffer(raw)
    fprog = struct.pack("HxxxxxxP", len(program), ctypes.addressof(buffer))
    fprog_buffer = ctypes.create_string_buffer(fprog)
    if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, fprog_buffer, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def landlock_abi() -> int:
    """The Landlock ABI version the kernel offers (0: none)."""
    try:
        return _syscall(_SYS_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION)
    except OSError:
        return 0


def _landlock(abi: int, read_paths: Iterable[Path], ports: Iterable[int]) -> None:
    fs_rights = _FS_RIGHTS.get(abi, _FS_RIGHTS_LATEST)
    if abi >= _NET_ABI:
        attr = struct.pack("QQ", fs_rights, _NET_BIND_TCP | _NET_CONNECT_TCP)
    else:
        attr = struct.pack("Q", fs_rights)
    ruleset = _syscall(_SYS_CREATE_RULESET, attr, len(attr), 0)
    try:
        read = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
        for path in read_paths:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a path that is not there needs no rule
            try:
                rights = read if Path(path).is_dir() else read & ~_FS_READ_DIR
                rule = struct.pack("=Qi", rights, fd)
                _syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, rule, 0)
            finally:
                os.close(fd)
        if abi >= _NET_ABI:
            for port in ports:
                rule = struct.pack("QQ", _NET_CONNECT_TCP, port)
                _syscall(_SYS_ADD_RULE, ruleset, _RULE_NET_PORT, rule, 0)
        _syscall(_SYS_RESTRICT_SELF, ruleset, 0)
    finally:
        os.close(ruleset)


def python_paths() -> list[Path]:
    """Where this Python reads its own code and libraries from."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix)}
    paths.update(Path(p) for p in sys.path if p)
    paths.update(Path(p) for p in ("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib"))
    paths.update(Path(p) for p in ("/dev/null", "/dev/urandom", "/proc/self", "/etc/localtime"))
    return sorted(paths)


def confine(read_paths: Iterable[Path], allowed_ports: Iterable[int] = ()) -> Confinement:
    """Confine this process for good: no network (or TCP to `allowed_ports` only), files
    readable only under `read_paths` and Python's own paths, nothing writable.

    Call it once, after the process has opened what it needs and before it takes work.
    """
    state = Confinement()
    ports = sorted(set(allowed_ports))
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        state.missing.append("no_new_privs refused")
        return state
    if not ports:
        try:
            _seccomp_no_inet()
            state.network = "closed"
        except (KeyError, OSError) as exc:
            state.missing.append(f"network: seccomp unavailable ({exc})")
    abi = landlock_abi()
    if abi:
        try:
            _landlock(abi, [*read_paths, *python_paths()], ports)
            state.landlock_abi = abi
            if ports and abi >= _NET_ABI:
                state.network = "ports"
        except OSError as exc:
            state.missing.append(f"files: Landlock failed ({exc})")
    else:
        state.missing.append("files: the kernel offers no Landlock")
    if ports and state.network != "ports":
        state.missing.append("network: SERVICE endpoints are allowed and Landlock ABI 4 is absent")
    return state


_SAID: set[str] = set()


def say_confinement(description: str, complete: bool) -> None:
    """Log once what the query workers' sandbox holds (a warning when it is incomplete)."""
    if description in _SAID:
        return
    _SAID.add(description)
    if complete:
        log.info("query workers confined: %s", description)
    else:
        log.warning("query workers only partly confined: %s", description)
