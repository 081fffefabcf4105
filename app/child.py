"""Starting the one child with a clean signal state, in its own group, owning the terminal."""

from __future__ import annotations

import errno
import os
import signal
import sys


class ExecError(Exception):
    """The command could not be executed; carries the shell's exit status for it."""

    def __init__(self, command: str, reason: str, status: int) -> None:
        super().__init__(f"cannot run {command!r}: {reason}")
        self.status = status


def spawn_child(argv: tuple[str, ...], *, take_terminal: bool) -> int:
    """Fork and exec argv; return its pid once exec has succeeded.

    Forked rather than posix_spawn'd so that the child can take the terminal before exec, as
    tini does, and leave no signal ignored: glibc's posix_spawn hands its child signals 32 and
    33 ignored. Must run while pidone is still single-threaded. What can be worked out before
    the fork is, so that the child execs soon.
    """
    _give_back_the_locale()
    ignored = _ignored_signals()
    candidates = _exec_candidates(argv[0])
    read_end = write_end = -1
    try:
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
    except OSError as error:  # no process or file left: the cgroup's pids.max, RLIMIT_NOFILE
        for fd in (read_end, write_end):
            if fd >= 0:
                os.close(fd)
        call = "fork" if write_end >= 0 else "pipe"
        raise ExecError(argv[0], f"{call}: {error.strerror}", 126) from None
    if pid == 0:  # pragma: no cover - the child never returns
        os.close(read_end)
        _become_child(argv, candidates, take_terminal, ignored, write_end)
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


def _become_child(argv: tuple[str, ...], candidates: list[str], take_terminal: bool,
                  ignored: int, report_fd: int) -> None:
    code = errno.EINVAL
    try:
        os.setpgid(0, 0)
        if take_terminal:
            try:
                # Our signals are still blocked, so SIGTTOU cannot stop us here.
                os.tcsetpgrp(0, os.getpgrp())
            except OSError:
                pass  # stdin is a terminal but not our controlling one
        _reset_ignored_signals(ignored)
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        _exec(argv, candidates)
    except OSError as error:
        code = error.errno or errno.EINVAL
    except BaseException:
        pass
    try:
        os.write(report_fd, str(code).encode())
    finally:
        os._exit(127 if code == errno.ENOENT else 126)


def give_back_the_terminal(child_pid: int) -> None:
    """After `fg` the shell has made our group the terminal's foreground group: hand it on to
    the child's, as at its start, so that it reads the terminal without SIGTTIN. After `bg` the
    shell keeps it, and so does this. Nothing to do without a terminal on stdin."""
    try:
        if os.tcgetpgrp(0) == os.getpgrp():
            os.tcsetpgrp(0, child_pid)
    except OSError:
        pass  # stdin is no terminal, not ours, or the child left its group


def _give_back_the_locale() -> None:
    """In the C locale (an image without LANG) CPython sets LC_CTYPE=C.UTF-8 in its own
    environment (PEP 538), which the child would inherit: take it back out unless pidone was
    given it. /proc/self/environ still holds the environment as exec passed it; without /proc,
    the UTF-8 mode tells that the locale was C at start, and with LC_ALL unset CPython then
    coerced it (an LC_CTYPE=C given is lost: the child's locale is C all the same)."""
    if "LC_CTYPE" not in os.environ:
        return
    try:
        with open("/proc/self/environ", "rb") as given:
            if b"\0LC_CTYPE=" in b"\0" + given.read():
                return
    except OSError:
        if not sys.flags.utf8_mode or "LC_ALL" in os.environ:
            return
    del os.environ["LC_CTYPE"]


SHELL = "/bin/sh"
"""What runs a file the kernel cannot (ENOEXEC), as glibc's execvp and POSIX have it."""
_GO_ON = frozenset({errno.ENOENT, errno.ESTALE, errno.ENOTDIR, errno.ENODEV, errno.ETIMEDOUT})
"""Errors after which glibc's execvp tries the next directory of PATH (EACCES too, remembered)."""


def _exec_candidates(command: str) -> list[str]:
    """The paths execvp would try for `command`, found before the fork: os.execvp first
    imports `warnings`, a millisecond before every child's exec. An empty name is no file."""
    if not command:
        return []
    if "/" in command:
        return [command]
    directories = os.environ.get("PATH", os.defpath).split(os.pathsep)
    return [os.path.join(directory, command) for directory in directories]


def _exec(argv: tuple[str, ...], candidates: list[str]) -> None:
    """Exec the first candidate that runs, as glibc's execvp (which tini, dumb-init and
    catatonit call) does: a file the kernel refuses as ENOEXEC (a script without #!) runs with
    /bin/sh; past "not there" and "permission denied" the search goes on, any other error ends
    it; at the end, EACCES if any candidate gave it, else the last error."""
    last: OSError = FileNotFoundError(errno.ENOENT, "nothing to run")
    denied: OSError | None = None
    for candidate in candidates:
        try:
            _execute(candidate, argv)
        except OSError as error:
            last = error
            if error.errno == errno.EACCES:
                denied = error
            elif error.errno not in _GO_ON:
                raise
    raise denied or last


def _execute(path: str, argv: tuple[str, ...]) -> None:
    try:
        os.execv(path, argv)
    except OSError as error:
        if error.errno != errno.ENOEXEC:
            raise
    os.execv(SHELL, (SHELL, path, *argv[1:]))


_CATCHABLE = signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}
_RT_SIGACTION = {"x86_64": 13, "aarch64": 134}
"""Syscall numbers of rt_sigaction, for the signals glibc will not let us touch."""


def _ignored_signals() -> int:
    """The SigIgn mask of this process: Python's own SIGPIPE and SIGXFSZ, and whatever
    pidone's parent ignored. Without /proc, what CPython found ignored at its start, which
    lacks only 32 and 33 (glibc hides them from sigaction)."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1], 16) for line in status if line.startswith("SigIgn:"))
    except (OSError, StopIteration):
        return sum(1 << (signo - 1) for signo in _CATCHABLE
                   if signal.getsignal(signo) == signal.SIG_IGN)


def _reset_ignored_signals(ignored: int) -> None:
    """Give the child default dispositions for what this process ignores (handlers need
    nothing: exec resets them, and pidone installs none).

    Signals 32 and 33 too: glibc reserves them and refuses sigaction on them, so a parent that
    ignored them (some supervisors and build tools do) would leak that into the child; only
    the raw system call can undo it. Rare, so ctypes is loaded only then.
    """
    reserved = []
    for signo in range(1, signal.SIGRTMAX + 1):
        if ignored & (1 << (signo - 1)):
            if signo in _CATCHABLE:
                signal.signal(signo, signal.SIG_DFL)
            else:
                reserved.append(signo)
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
