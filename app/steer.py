"""`pidone signal` and `pidone restart`: ask the local pidone's API, as `pidone health` does.

For `kubectl exec POD -- pidone restart` and `docker exec C pidone signal HUP --target all`:
the same address discovery as `pidone health` (app/probe.py), the token from the same
variables pidone reads, the standard library only. One line of output; the exit status says
which failure it was (docs/SPEC.md, "Command line").
"""

from __future__ import annotations

import getopt
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from app.numbers import parse_seconds
from app.probe import Unreachable, ask, default_base_url
from app.core.signals import TARGETS, SignalNameError, parse_signal, signal_name

DONE, FAILED, USAGE_ERROR, UNREACHABLE, NOT_ALLOWED, NOT_NOW = 0, 1, 2, 3, 4, 5
EXIT_FOR_STATUS = {400: USAGE_ERROR, 401: NOT_ALLOWED, 403: NOT_ALLOWED, 409: NOT_NOW}
"""pidone's error answers as exit statuses; any other error is FAILED."""
USAGES = {
    "signal": "usage: pidone signal SIG [--target child|group|all] [--url URL]",
    "restart": "usage: pidone restart [--timeout SECONDS] [--url URL]",
}
SIGNAL_WAIT = 10.0
"""Seconds to wait for /signal's answer: pidone's core takes it within milliseconds."""
RESTART_WAIT = 120.0
"""Seconds to wait for /restart's answer beyond the stop timeout asked for: pidone answers
once the new child runs, after the --grace rule for what was left of the old one."""


class SteerUsageError(Exception):
    pass


class Request(NamedTuple):
    """One request to pidone's API."""

    base_url: str
    path: str
    wait: float


def main(command: str, args: Sequence[str]) -> int:
    """`command` is "signal" or "restart"."""
    try:
        request = parse_args(command, args, os.environ)
        token = _token(os.environ)
    except SteerUsageError as error:
        print(f"pidone {command}: {error}", file=sys.stderr)
        return USAGE_ERROR
    status, line = call(request, token)
    print(f"pidone {command}: {line}", file=sys.stdout if status == DONE else sys.stderr)
    return status


def parse_args(command: str, args: Sequence[str], env: Mapping[str, str]) -> Request:
    usage = USAGES[command]
    longs = ["url=", "help", "target=" if command == "signal" else "timeout="]
    try:
        options, rest = getopt.gnu_getopt(list(args), "h", longs)
    except getopt.GetoptError as error:
        raise SteerUsageError(f"{error.msg}: {usage}") from None
    url = None
    query = ""
    for flag, value in options:
        if flag in ("-h", "--help"):
            raise SteerUsageError(usage)
        if flag == "--url":
            url = value.rstrip("/")
        elif flag == "--target":
            if value not in TARGETS:
                raise SteerUsageError(f"--target: unknown target {value!r}: use child, group or all")
            query = f"?target={value}"
        elif flag == "--timeout":
            try:
                parse_seconds(value)
            except ValueError as error:
                raise SteerUsageError(f"--timeout: {error}") from None
            query = f"?timeout={value}"
    base_url = url or default_base_url(env.get("PIDONE_HTTP", ""))
    if command == "restart":
        if rest:
            raise SteerUsageError(f"unexpected argument {rest[0]!r}: {usage}")
        timeout = float(query.partition("=")[2] or 10)
        return Request(base_url, f"/restart{query}", timeout + RESTART_WAIT)
    if len(rest) != 1:
        raise SteerUsageError(f"name one signal: {usage}")
    try:
        signo = parse_signal(rest[0])
    except SignalNameError as error:
        raise SteerUsageError(str(error)) from None
    return Request(base_url, f"/signal/{signal_name(signo)}{query}", SIGNAL_WAIT)


def _token(env: Mapping[str, str]) -> str | None:
    """The token pidone itself reads from this environment (its file, or the variable)."""
    from app.cli import UsageError, token_from_environment

    try:
        return token_from_environment(env)
    except UsageError as error:
        raise SteerUsageError(str(error)) from None


def call(request: Request, token: str | None) -> tuple[int, str]:
    """(exit status, one line saying what was done or why not) for POST request.path."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else None
    try:
        status, document = ask(request.base_url, "POST", request.path, request.wait, headers)
    except ValueError as error:
        return USAGE_ERROR, f"bad URL {request.base_url!r}: {error}"
    except Unreachable as reason:
        return UNREACHABLE, f"cannot reach pidone at {request.base_url}: {reason}"
    if not isinstance(document, dict):
        return FAILED, f"{request.base_url} answered {status}, not as pidone"
    if status != 200:
        return EXIT_FOR_STATUS.get(status, FAILED), f"pidone answered {status}: {document.get('error')}"
    return DONE, _describe(document)


def _describe(done: dict[str, Any]) -> str:
    if "previous" in done:
        previous = done["previous"]
        how = (f"killed by {previous.get('signal')}" if previous.get("signal")
               else f"exit status {previous.get('exit_code')}")
        return f"restarted: child {previous.get('pid')} ended ({how}), child {done.get('pid')} runs"
    if done.get("target") == "all":
        count = done.get("processes")
        return f"sent {done.get('signal')} to {count} process{'' if count == 1 else 'es'}"
    whom = "the child" if done.get("target") == "child" else "the child's process group"
    return f"sent {done.get('signal')} to {whom} (pid {done.get('pid')})"
