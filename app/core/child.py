"""Starting the one child with a clean signal state, in its own group, owning the terminal."""

from __future__ import annotations

import errno
import os
import signal
import sys

TYPE_CHECKING = False  # typing itself is not imported: it costs the start-up path
if TYPE_CHECKING:
    from collections.abc import Callable


class ExecError(Exception):
    """The command could not be executed; carries the shell's exit status for it."""

    def __init__(self, command: str, reason: str, status: int, pid: int | None = None) -> None:
        super().__init__(f"cannot run {command!r}: {reason}")
        self.status = status
        self.pid = pid
        """The forked process that failed to exec (reaped already), if it came that far."""


def spawn_child(argv: tuple[str, ...], *, take_terminal: bool, cwd: str | None = None) -> int:
    """Fork and exec argv (in `cwd`, if given); return its pid once exec has succeeded.

    Forked rather than posix_spawn'd so that the child can take the terminal before exec, as
    tini does, and leave no signal ignored: glibc's posix_spawn hands its child signals 32 and
    33 ignored. What can be worked out before the fork is, so that the child execs soon.

    A restart forks while the HTTP thread runs. That is safe because the forked child only
    execs: between fork and exec it takes no lock, imports nothing and logs nothing (the
    HTTP thread may have held any of them at the fork); it makes system calls on values
    prepared here, and CPython's own after-fork handlers only make new locks. pidone's
    working directory moves to `cwd` for the fork alone (the child inherits it) and back to
    "/": the HTTP thread uses no relative path.
    """
    _give_back_the_locale()
    reset_signals = _ignored_signal_reset(_ignored_signals())
    candidates = _exec_candidates(argv[0])
    if cwd is not None:
        try:
            os.chdir(cwd)
        except OSError as error:
            raise ExecError(argv[0], f"cannot enter its working directory {cwd!r}: "
                            f"{error.strerror}", 126) from None
    read_end = write_end = pid = -1
    try:
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        pid = _fork()
    except OSError as error:  # no process or file left: the cgroup's pids.max, RLIMIT_NOFILE
        for fd in (read_end, write_end):
            if fd >= 0:
                os.close(fd)
        call = "fork" if write_end >= 0 else "pipe"
        raise ExecError(argv[0], f"{call}: {error.strerror}", 126) from None
    finally:
        if cwd is not None and pid != 0:
            os.chdir("/")
    if pid == 0:  # pragma: no cover - the child never returns
        os.close(read_end)
        _become_child(argv, candidates, take_terminal, reset_signals, write_end)
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
        error = _exec_error(argv[0], int(report))
        error.pid = pid
        raise error
    return pid


def _fork() -> int:
    """os.fork. Python 3.12 warns (DeprecationWarning) when the process has threads, as it has
    on a restart: under -W error that warning would raise in pidone after the child exists, and
    its PID would be lost. The child only execs (see spawn_child)."""
    if "threading" not in sys.modules or sys.version_info < (3, 12):
        return os.fork()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def _become_child(argv: tuple[str, ...], candidates: list[str], take_terminal: bool,
                  reset_signals: Callable[[], None], report_fd: int) -> None:
    code = errno.EINVAL
    try:
        os.setpgid(0, 0)
        if take_terminal:
            try:
                # Our signals are still blocked, so SIGTTOU cannot stop us here.
                os.tcsetpgrp(0, os.getpgrp())
            except OSError:
                pass  # stdin is a terminal but not our controlling one
        reset_signals()
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


def _ignored_signal_reset(ignored: int) -> Callable[[], None]:
    """What the forked child calls to give default dispositions to what this process ignores
    (handlers need nothing: exec resets them, and pidone installs none). Prepared before the
    fork, so that the child imports nothing.

    Signals 32 and 33 too: glibc reserves them and refuses sigaction on them, so a parent that
    ignored them (some supervisors and build tools do) would leak that into the child; only
    the raw system call can undo it. Rare, so ctypes is loaded only then.
    """
    catchable = [signo for signo in range(1, signal.SIGRTMAX + 1)
                 if ignored & (1 << (signo - 1)) and signo in _CATCHABLE]
    reserved = [signo for signo in range(1, signal.SIGRTMAX + 1)
                if ignored & (1 << (signo - 1)) and signo not in _CATCHABLE]
    syscall_number = _RT_SIGACTION.get(os.uname().machine)
    raw_reset: Callable[[int], object] | None = None
    if reserved and syscall_number is not None:
        import ctypes

        syscall = ctypes.CDLL(None, use_errno=True).syscall
        default_action = (ctypes.c_ulong * 4)()  # handler SIG_DFL, no flags, no restorer, empty mask

        def raw_reset(signo: int) -> object:
            return syscall(syscall_number, signo, default_action, None, 8)

    def reset() -> None:
        for signo in catchable:
            signal.signal(signo, signal.SIG_DFL)
        if raw_reset is not None:
            for signo in reserved:
                raw_reset(signo)

    return reset


def _exec_error(command: str, code: int) -> ExecError:
    if code == errno.ENOENT:
        reason = "no such file or directory" if "/" in command else "command not found"
        return ExecError(command, reason, 127)
    if "/" in command and os.path.isdir(command):
        return ExecError(command, "is a directory", 126)
    return ExecError(command, os.strerror(code), 126)
