"""Starting the one child with a clean signal state, in its own group, owning the terminal."""

from __future__ import annotations

import errno
import os
import signal

_UNCATCHABLE = {signal.SIGKILL, signal.SIGSTOP}


class ExecError(Exception):
    """The command could not be executed; carries the shell's exit status for it."""

    def __init__(self, command: str, reason: str, status: int) -> None:
        super().__init__(f"cannot run {command!r}: {reason}")
        self.status = status


def spawn_child(argv: tuple[str, ...], *, take_terminal: bool) -> int:
    """Fork and exec argv; return its pid once exec has succeeded.

    Forked rather than posix_spawn'd so that the child can take the terminal
    before exec, as tini does. Must run while pidone is still single-threaded.
    """
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        os.close(read_end)
        _become_child(argv, take_terminal, write_end)
    os.close(write_end)
    try:
        # Either exec closes the CLOEXEC pipe (no bytes) or the child reports errno.
        report = os.read(read_end, 16)
    finally:
        os.close(read_end)
    try:
        os.setpgid(pid, pid)  # as shells do, so the group exists before we signal it
    except OSError:
        pass  # already exec'd: it set its own group first
    if report:
        os.waitpid(pid, 0)
        raise _exec_error(argv[0], int(report))
    return pid


def _become_child(argv: tuple[str, ...], take_terminal: bool, report_fd: int) -> None:
    code = errno.EINVAL
    try:
        os.setpgid(0, 0)
        if take_terminal:
            try:
                # Our signals are still blocked, so SIGTTOU cannot stop us here.
                os.tcsetpgrp(0, os.getpgrp())
            except OSError:
                pass  # stdin is a terminal but not our controlling one
        for signo in signal.valid_signals():
            if signo not in _UNCATCHABLE:
                signal.signal(signo, signal.SIG_DFL)
        _reset_reserved_signals()
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        os.execvp(argv[0], argv)
    except OSError as error:
        code = error.errno or errno.EINVAL
    except BaseException:
        pass
    try:
        os.write(report_fd, str(code).encode())
    finally:
        os._exit(127 if code == errno.ENOENT else 126)


_RT_SIGACTION = {"x86_64": 13, "aarch64": 134}
"""Syscall numbers of rt_sigaction, for the signals glibc will not let us touch."""


def _reset_reserved_signals() -> None:
    """Give the child default dispositions for signals 32 and 33 too.

    glibc reserves them and refuses sigaction on them, so a parent that ignored
    them (some supervisors and build tools do) would leak that into the child;
    only the raw system call can undo it. Rare, so ctypes is loaded only then.
    """
    with open("/proc/self/status") as status:
        ignored = next(int(line.split()[1], 16) for line in status if line.startswith("SigIgn:"))
    valid = signal.valid_signals()
    reserved = [signo for signo in range(1, signal.SIGRTMIN)
                if signo not in valid and ignored & (1 << (signo - 1))]
    syscall_number = _RT_SIGACTION.get(os.uname().machine)
    if not reserved or syscall_number is None:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    default_action = (ctypes.c_ulong * 4)()  # handler SIG_DFL, no flags, no restorer, empty mask
    for signo in reserved:
        libc.syscall(syscall_number, signo, default_action, None, 8)


def _exec_error(command: str, code: int) -> ExecError:
    if code == errno.ENOENT:
        reason = "no such file or directory" if "/" in command else "command not found"
        return ExecError(command, reason, 127)
    if "/" in command and os.path.isdir(command):
        return ExecError(command, "is a directory", 126)
    return ExecError(command, os.strerror(code), 126)
