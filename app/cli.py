"""The command line: flags and environment variables into a Config, errors into exit status 2.

It runs before the child is spawned, so it imports only what that needs: no getopt (gettext
and re come with it), no typing; the options are read by hand, as getopt_long would.
"""

from __future__ import annotations

import os
import stat
import sys

from app import __version__
from app.config import (CHILD, DEFAULT_GRACE, DEFAULT_HTTP, DEFAULT_HTTP_MODE, DEFAULT_RESTART_MAX,
                        GROUP, RESTART_POLICIES, Config)
from app.excerpt import excerpt
from app.numbers import is_whole_number, parse_seconds
from app.output import say, write_text
from app.core.signals import parse_rewrite, parse_signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import TypeVar

    T = TypeVar("T")

USAGE_EXIT = 2
MAX_TOKEN_FILE_BYTES = 4096
"""A token is a word, not a document: a larger file is a mistake (or /dev/zero), refused."""
LOG_LEVELS = {"debug": 2, "info": 1, "warning": 0, "warn": 0, "error": -1}
"""PIDONE_LOG_LEVEL as a -v count."""

HELP = f"""\
usage: pidone [OPTIONS] [--] COMMAND [ARG...]
       pidone health [--url URL] [--timeout S]
       pidone signal SIG [--target child|group|all] [--url URL]
       pidone restart [--timeout S] [--url URL]
       pidone --version | --help

Run COMMAND as the one child: reap every zombie, forward every signal,
exit with the child's status. Serves /health, /metrics and POST /signal.

options:
  -c, --single-child        every signal to the child alone (default: TERM, INT,
                            QUIT to its process group, the others to the child)
  -g                        every signal to the child's process group (the last
                            of -g and -c decides)
  -s, --subreaper           register as child subreaper (when not PID 1)
  -p, --pdeathsig SIG       signal pidone gets when its parent dies
  -r, --rewrite FROM:TO     rewrite signal FROM into TO before forwarding;
                            TO 0 drops it
  -e, --remap-exit CODE     exit 0 when the child exits with CODE (repeatable)
  -v, --verbose             more log output (repeatable)
  -w, --warn-on-reap        log a warning for each orphan zombie reaped
      --http ADDR           HOST:PORT, [V6]:PORT, :PORT, unix:/path or off
                            (default {DEFAULT_HTTP})
      --http-mode MODE      permissions of a unix: socket, octal (default {DEFAULT_HTTP_MODE:o})
      --token-file PATH     bearer token for /signal, /status, /processes
      --grace SECONDS       after the child exits: SIGTERM the rest, wait,
                            SIGKILL (default {DEFAULT_GRACE:g})
      --term-delay SECONDS  on SIGTERM, turn /readyz to 503 and forward it later
      --stop-timeout SECONDS  SIGKILL the child SECONDS after a forwarded
                            TERM/INT/QUIT
      --log-format FORMAT   text or json
      --restart POLICY      never (the default: leave when the child exits),
                            on-failure or always (start it again)
      --restart-max N       leave at the Nth failure in a row (default {DEFAULT_RESTART_MAX})
  -V, --version             print the version and exit
  -h, --help                print this help and exit

Most flags have an environment variable (PIDONE_*); tini's and dumb-init's are
honoured too. A flag on the command line wins over its variable.
"""

SHORT_FLAGS = {"c": False, "g": False, "s": False, "p": True, "r": True, "e": True, "v": False,
               "w": False, "h": False, "V": False}
"""-x -> whether it takes a value, as tini and dumb-init spell them."""
LONG_FLAGS = {"single-child": False, "subreaper": False, "pdeathsig": True, "rewrite": True,
              "remap-exit": True, "verbose": False, "warn-on-reap": False, "http": True,
              "http-mode": True, "token-file": True, "grace": True, "term-delay": True,
              "stop-timeout": True, "log-format": True, "restart": True, "restart-max": True,
              "help": False, "version": False}


class UsageError(Exception):
    """A mistake on the command line or in the environment: one line, exit status 2."""


class EarlyExit(Exception):
    """--help or --version: print the text and exit 0."""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["health"]:
        import signal

        from app.probe import main as probe_main

        # An ordinary command, not an init: Ctrl-C or a HEALTHCHECK's timeout ends it.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signal.valid_signals())

        return probe_main(args[1:])
    if args[:1] in (["signal"], ["restart"]):
        from app.steer import main as steer_main

        return steer_main(args[0], args[1:])
    try:
        config = parse_config(args, os.environ)
    except EarlyExit as shown:
        try:
            write_text(str(shown))
        except OSError as error:
            say(f"pidone: cannot write to standard output: {error.strerror}")
            return USAGE_EXIT
        return 0
    except UsageError as error:
        say(f"pidone: {error}")
        return USAGE_EXIT
    from app.lifecycle import run

    run(config)


def parse_config(args: Sequence[str], env: Mapping[str, str]) -> Config:
    """Flags first, then the environment for whatever a flag did not set."""
    options, command = split_options(args)
    given: dict[str, object] = {}
    rewrites: dict[int, int] = {}
    remaps: set[int] = set()
    verbosity = 0
    for flag, value in options:
        if flag in ("-h", "--help"):
            raise EarlyExit(HELP)
        if flag in ("-V", "--version"):
            raise EarlyExit(f"pidone {__version__}\n")
        if flag in ("-c", "--single-child"):
            given["signal_target"] = CHILD
        elif flag == "-g":
            given["signal_target"] = GROUP
        elif flag in ("-s", "--subreaper"):
            given["subreaper"] = True
        elif flag in ("-p", "--pdeathsig"):
            given["pdeathsig"] = _parsed(flag, parse_signal, value)
        elif flag in ("-r", "--rewrite"):
            source, target = _parsed(flag, parse_rewrite, value)
            rewrites[source] = target
        elif flag in ("-e", "--remap-exit"):
            remaps.add(_exit_code_option(flag, value))
        elif flag in ("-v", "--verbose"):
            verbosity += 1
        elif flag in ("-w", "--warn-on-reap"):
            given["warn_on_reap"] = True
        elif flag == "--http":
            given["http"] = _http_option(flag, value)
        elif flag == "--http-mode":
            given["http_mode"] = _mode_option(flag, value)
        elif flag == "--token-file":
            given["token"] = read_token_file(value)
        elif flag == "--grace":
            given["grace"] = _seconds_option(flag, value)
        elif flag == "--term-delay":
            given["term_delay"] = _seconds_option(flag, value)
        elif flag == "--stop-timeout":
            given["stop_timeout"] = _seconds_option(flag, value)
        elif flag == "--log-format":
            given["log_format"] = _log_format_option(flag, value)
        elif flag == "--restart":
            given["restart"] = _restart_option(flag, value)
        elif flag == "--restart-max":
            given["restart_max"] = _restart_max_option(flag, value)

    if not command:
        raise UsageError("no command given: usage: pidone [OPTIONS] [--] COMMAND [ARG...]")
    if verbosity:
        given["verbosity"] = verbosity
    settings = {**_from_environment(env, given), **given}
    return Config(
        command=tuple(command), rewrites=rewrites, remap_exit=frozenset(remaps), **settings
    )


def split_options(args: Sequence[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """(flag, value) pairs and the command, as getopt_long reads them with "+": options stop
    at the first word that is not one, or after "--"; "-vv" and "-pTERM" are clustered short
    flags; "--grace=3" and "--grace 3" are the same; a long flag may be cut to any prefix that
    names only one."""
    options: list[tuple[str, str]] = []
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        if word == "--":
            break
        if word.startswith("--"):
            name, has_value, value = word[2:].partition("=")
            flag = "--" + _long_flag(name)
            if LONG_FLAGS[flag[2:]]:
                if not has_value:
                    if index == len(args):
                        raise UsageError(f"option {flag} requires an argument (see pidone --help)")
                    value = args[index]
                    index += 1
            elif has_value:
                raise UsageError(f"option {flag} must not have an argument (see pidone --help)")
            options.append((flag, value))
        elif word.startswith("-") and word != "-":
            position = 1
            while position < len(word):
                letter = word[position]
                position += 1
                if letter not in SHORT_FLAGS:
                    raise UsageError(f"option -{letter} not recognized (see pidone --help)")
                value = ""
                if SHORT_FLAGS[letter]:
                    value, position = word[position:], len(word)
                    if not value:
                        if index == len(args):
                            raise UsageError(f"option -{letter} requires an argument (see pidone --help)")
                        value = args[index]
                        index += 1
                options.append((f"-{letter}", value))
        else:
            index -= 1
            break
    return options, list(args[index:])


def _long_flag(name: str) -> str:
    if name in LONG_FLAGS:
        return name
    matches = [flag for flag in LONG_FLAGS if flag.startswith(name)] if name else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(f"option --{name} is ambiguous: --{', --'.join(matches)} (see pidone --help)")
    raise UsageError(f"option --{name} not recognized (see pidone --help)")


def _from_environment(env: Mapping[str, str], given: Mapping[str, object]) -> dict[str, object]:
    """Settings from PIDONE_* and the peers' variables, read only where no flag decided."""
    found: dict[str, object] = {}
    if env.get("PIDONE_SINGLE_CHILD") == "1" or env.get("DUMB_INIT_SETSID") == "0":
        found["signal_target"] = CHILD  # the narrower target wins when both are set
    elif env.get("TINI_KILL_PROCESS_GROUP") == "1":
        found["signal_target"] = GROUP
    if env.get("PIDONE_SUBREAPER") == "1" or "TINI_SUBREAPER" in env:
        found["subreaper"] = True
    if "PIDONE_LOG_LEVEL" in env and "verbosity" not in given:
        name = env["PIDONE_LOG_LEVEL"]
        if not name.isascii() or name.lower() not in LOG_LEVELS:
            raise UsageError(f"PIDONE_LOG_LEVEL: unknown log level {excerpt(name)!r}: use debug, "
                             "info, warning or error")
        found["verbosity"] = LOG_LEVELS[name.lower()]
    if "PIDONE_HTTP" in env and "http" not in given:
        found["http"] = _http_option("PIDONE_HTTP", env["PIDONE_HTTP"])
    if "PIDONE_HTTP_MODE" in env and "http_mode" not in given:
        found["http_mode"] = _mode_option("PIDONE_HTTP_MODE", env["PIDONE_HTTP_MODE"])
    if "token" not in given:
        token = token_from_environment(env)
        if token is not None:
            found["token"] = token
    for key, name in (("grace", "PIDONE_GRACE"), ("term_delay", "PIDONE_TERM_DELAY"),
                      ("stop_timeout", "PIDONE_STOP_TIMEOUT")):
        if name in env and key not in given:
            found[key] = _seconds_option(name, env[name])
    if "PIDONE_LOG_FORMAT" in env and "log_format" not in given:
        found["log_format"] = _log_format_option("PIDONE_LOG_FORMAT", env["PIDONE_LOG_FORMAT"])
    if "PIDONE_RESTART" in env and "restart" not in given:
        found["restart"] = _restart_option("PIDONE_RESTART", env["PIDONE_RESTART"])
    if "PIDONE_RESTART_MAX" in env and "restart_max" not in given:
        found["restart_max"] = _restart_max_option("PIDONE_RESTART_MAX", env["PIDONE_RESTART_MAX"])
    return found


def token_from_environment(env: Mapping[str, str]) -> str | None:
    """The token PIDONE_TOKEN_FILE or PIDONE_TOKEN gives, None when neither is set."""
    if "PIDONE_TOKEN_FILE" in env:
        return read_token_file(env["PIDONE_TOKEN_FILE"])
    if "PIDONE_TOKEN" in env:
        return _token_value("PIDONE_TOKEN", env["PIDONE_TOKEN"])
    return None


def read_token_file(path: str) -> str:
    """The bearer token from a regular file of a few KiB at most (surrounding whitespace
    stripped); it must not be empty. Opened non-blocking, so that a FIFO without a writer
    cannot hang pidone before its child starts, and read no further than the limit."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as error:
        raise UsageError(f"cannot read token file {path!r}: {error.strerror}") from None
    try:
        kind = os.fstat(fd).st_mode
        if not stat.S_ISREG(kind):
            raise UsageError(f"token file {path!r} is {_file_kind(kind)}, not a regular file")
        content = os.read(fd, MAX_TOKEN_FILE_BYTES + 1)
    except OSError as error:
        raise UsageError(f"cannot read token file {path!r}: {error.strerror}") from None
    finally:
        os.close(fd)
    if len(content) > MAX_TOKEN_FILE_BYTES:
        raise UsageError(f"token file {path!r} is larger than {MAX_TOKEN_FILE_BYTES} bytes: "
                         "a token is one word")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"cannot read token file {path!r}: not valid UTF-8") from None
    return _token_value(f"token file {path!r}", text)


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def _token_value(origin: str, text: str) -> str:
    token = text.strip()
    if not token:
        raise UsageError(f"{origin} is empty: a token must have at least one character")
    if any(ch.isspace() or not ch.isprintable() for ch in token):
        raise UsageError(f"{origin} holds whitespace or control characters: one word is expected")
    return token


def _parsed(flag: str, parse: Callable[[str], T], value: str) -> T:
    """`parse(value)`, its ValueError (SignalNameError, AddressError) as a usage error."""
    try:
        return parse(value)
    except ValueError as error:
        raise UsageError(f"{flag}: {error}") from None


def _exit_code_option(flag: str, value: str) -> int:
    if not is_whole_number(value, 3) or not 0 <= int(value) <= 255:
        raise UsageError(f"{flag}: exit code must be a whole number from 0 to 255, not {excerpt(value)!r}")
    return int(value)


def _seconds_option(flag: str, value: str) -> float:
    """Zero or more, in plain ASCII decimals: a sign, an exponent, "inf" or "nan" is refused."""
    return _parsed(flag, parse_seconds, value)


def _mode_option(flag: str, value: str) -> int:
    """Permission bits in octal, as chmod takes them: 600, 0660; nothing beyond 777."""
    if not is_whole_number(value, 4) or any(digit in "89" for digit in value) \
            or int(value, 8) > 0o777:
        raise UsageError(f"{flag}: expected permissions in octal such as 600 or 660, not {excerpt(value)!r}")
    return int(value, 8)


def _http_option(flag: str, value: str) -> str:
    """The --http value, a relative unix socket path made absolute: pidone binds it only after
    it has moved to "/"."""
    from app.http.address import parse_address

    address = _parsed(flag, parse_address, value)
    if address.unix_path is not None and not os.path.isabs(address.unix_path):
        return f"unix:{os.path.abspath(address.unix_path)}"
    return value


def _log_format_option(flag: str, value: str) -> str:
    if value not in ("text", "json"):
        raise UsageError(f"{flag}: log format must be text or json, not {excerpt(value)!r}")
    return value


def _restart_option(flag: str, value: str) -> str:
    if value not in RESTART_POLICIES:
        raise UsageError(f"{flag}: restart policy must be never, on-failure or always, "
                         f"not {excerpt(value)!r}")
    return value


def _restart_max_option(flag: str, value: str) -> int:
    if not is_whole_number(value, 6) or int(value) < 1:
        raise UsageError(f"{flag}: expected a whole number of failures, 1 or more, not {excerpt(value)!r}")
    return int(value)
