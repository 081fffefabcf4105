"""The Starlette app: the routes of SPEC.md's HTTP API, token/loopback access, JSON errors."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from email.utils import formatdate
from typing import Any

from starlette.applications import Starlette
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app.http import costly, health, metrics, reports
from app.http.access import check_access
from app.core.child import ExecError
from app.core.loop import (LAST_REAP_TIMEOUT, ChildNotRunning, Core, RestartRefused, SignalRefused,
                      restart_stop_wait)
from app.excerpt import excerpt
from app.log import ERROR, log
from app.core.procfs import ProcUnavailable
from app.numbers import parse_seconds
from app.core.signals import TARGETS, SignalNameError, parse_signal, signal_name


Handler = Callable[[Request], Awaitable[Response]]

CORE_ANSWER_TIMEOUT = 5.0
"""Seconds /signal waits for the core thread to deliver; it answers within a millisecond unless
it is stalled, which /livez reports too (the same 5 s)."""


class AnyText(PathConvertor):
    """Whatever follows /signal/, empty, slashed or with a newline, so that a bad name gets
    400 "unknown signal" rather than a bare 404 (:path stops at a newline)."""

    regex = r"[\s\S]*"


register_url_convertor("any", AnyText())


def build_app(core: Core, *, unix_socket: bool = False, drops: metrics.Drops | None = None) -> Starlette:
    """The app over `core`; `unix_socket` says every client is local (the socket file's
    permissions chose them); `drops` counts what the server cut off, by reason. The probe
    routes are here too, for a client the front door hands over (a probe with a body, say)."""
    routes = [
        Route("/health", probe(health.health), methods=["GET", "HEAD"]),
        Route("/livez", probe(health.liveness), methods=["GET", "HEAD"]),
        Route("/readyz", probe(health.readiness), methods=["GET", "HEAD"]),
        Route("/metrics", serve_metrics, methods=["GET", "HEAD"]),
        Route("/status", protected(serve_status), methods=["GET", "HEAD"]),
        Route("/processes", protected(serve_processes), methods=["GET", "HEAD"]),
        Route("/signal/{sig:any}", protected(send_signal), methods=["POST"]),
        Route("/restart", protected(restart_child), methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: answer_http_exception},
        middleware=[Middleware(DateHeader),
                    Middleware(AccessLog, enabled=core.config.verbosity >= 2),
                    Middleware(AnswerCrashes)],
    )
    app.router.redirect_slashes = False  # one spelling per route: /signal is a 404, not a 307
    app.state.core = core
    app.state.unix_socket = unix_socket
    registry = metrics.build_registry(core.snapshot, drops)
    app.state.scrapes = costly.Shared(lambda: metrics.Scrape(registry), "scrapes")
    app.state.processes = costly.Shared(
        lambda: render_json(reports.processes_document(core.snapshot())), "processes")
    return app


def render_json(document: Any) -> bytes:
    """`document` as JSONResponse renders it, so that a worker thread can do it."""
    return JSONResponse(document).body


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


# -- access ---------------------------------------------------------------------------------


def protected(handler: Handler) -> Handler:
    """`handler` behind the token (when configured) or the loopback rule (when not)."""

    async def guarded(request: Request) -> Response:
        core: Core = request.app.state.core
        denial = check_access(request.scope, core.config.token, unix_socket=request.app.state.unix_socket)
        if denial is None:
            return await handler(request)
        headers = {"WWW-Authenticate": 'Bearer realm="pidone"'} if denial.status == 401 else None
        return error(denial.status, denial.message, headers)

    guarded.__name__ = handler.__name__
    return guarded


# -- handlers -------------------------------------------------------------------------------


def probe(decide: Callable[..., health.Verdict]) -> Handler:
    """A probe route: 200 when `decide` says ok, 503 with the reason otherwise."""

    async def answer_probe(request: Request) -> Response:
        snapshot = request.app.state.core.snapshot()
        now = time.time()
        verdict = decide(snapshot, now)
        return JSONResponse(reports.probe_document(verdict, snapshot, now),
                            status_code=200 if verdict.ok else 503)

    answer_probe.__name__ = f"answer_{decide.__name__}"
    return answer_probe


async def serve_metrics(request: Request) -> Response:
    """A collection begun after this request came (app/http/costly.py: shared with every scrape
    waiting meanwhile), encoded as asked, outside the event loop."""
    content_type, gzipped = metrics.variant(request.headers.get("accept", ""),
                                            request.headers.get("accept-encoding", ""))
    scrapes: costly.Shared[metrics.Scrape] = request.app.state.scrapes
    scrape = await scrapes.get()
    body = scrape.bodies.get((content_type, gzipped))
    if body is None:
        body = await scrapes.run(scrape.body, content_type, gzipped)
    return Response(body, headers=metrics.headers(content_type, gzipped))


async def serve_status(request: Request) -> Response:
    core: Core = request.app.state.core
    return JSONResponse(reports.status_document(core.snapshot(), core.config, time.time()))


async def serve_processes(request: Request) -> Response:
    """A scan as old as its cost allows at most (app/http/costly.py), shared and outside the loop."""
    processes: costly.Shared[bytes] = request.app.state.processes
    try:
        body = await processes.get(max_age=processes.refresh_interval())
    except ProcUnavailable as trouble:
        return error(503, str(trouble))
    return Response(body, media_type="application/json")


class BadParameter(ValueError):
    """A query parameter with a value the route does not take: 400."""


def query_value(request: Request, name: str, read: Callable[[str], Any]) -> Any:
    """`read(value)` of the query parameter `name`, None when absent; BadParameter otherwise."""
    value = request.query_params.get(name)
    if value is None:
        return None
    try:
        return read(value)
    except ValueError as bad:
        raise BadParameter(f"{name}: {bad}") from None


def read_target(text: str) -> str:
    if text not in TARGETS:
        raise ValueError(f"unknown target {excerpt(text)!r}: use child, group or all")
    return text


def read_signal(text: str) -> int:
    try:
        return parse_signal(text)
    except SignalNameError as bad:
        raise ValueError(f"{bad}: use a name such as TERM, SIGHUP, RTMIN+3, or a number") from None


REFUSALS: tuple[tuple[type[Exception], int], ...] = (
    (ChildNotRunning, 409), (RestartRefused, 409), (SignalRefused, 403), (ExecError, 500))
"""What the core answers instead of doing what was asked, and the HTTP status for it."""


async def ask_core(asked: Future[Any], within: float, too_late: str) -> Any:
    """The core's answer to a request, or the error response for its refusal (REFUSALS), or
    503 `too_late` when it has not answered within `within` seconds."""
    try:
        return await asyncio.wait_for(asyncio.wrap_future(asked), within)
    except tuple(kind for kind, _ in REFUSALS) as refused:
        return error(next(status for kind, status in REFUSALS if isinstance(refused, kind)),
                     str(refused))
    except asyncio.TimeoutError:
        return error(503, too_late)


async def send_signal(request: Request) -> Response:
    """Forward the named signal now, to ?target= or the configured target. -r rewrites do not
    apply: the caller named the signal it wants, where a rewrite adapts signals that an
    orchestrator sends without asking."""
    core: Core = request.app.state.core
    try:
        signo = read_signal(request.path_params["sig"])
        target = query_value(request, "target", read_target)
    except ValueError as bad:
        return error(400, str(bad))
    delivery = await ask_core(core.send(signo, target), CORE_ANSWER_TIMEOUT,
                              f"pidone's core loop did not answer within {CORE_ANSWER_TIMEOUT:g}s: "
                              "the signal was not sent (see /livez)")
    if isinstance(delivery, Response):
        return delivery
    answer = {"signal": signal_name(delivery.signo), "number": delivery.signo,
              "pid": delivery.pid, "target": delivery.target}
    if delivery.processes is not None:
        answer["processes"] = delivery.processes
    return JSONResponse(answer)


async def restart_child(request: Request) -> Response:
    """Stop the child and start the command again; answer once the new child runs."""
    core: Core = request.app.state.core
    try:
        signo = query_value(request, "signal", read_signal) or signal.SIGTERM
        timeout = query_value(request, "timeout", parse_seconds)
    except ValueError as bad:
        return error(400, str(bad))
    # The stop, the --grace rule for the group (and its last SIGKILL), then the exec.
    answer_within = (restart_stop_wait(core.config, timeout) + core.config.grace
                     + LAST_REAP_TIMEOUT + CORE_ANSWER_TIMEOUT)
    restarted = await ask_core(core.restart(signo, timeout), answer_within,
                               f"no new child runs after {answer_within:g}s (see /livez and /status)")
    if isinstance(restarted, Response):
        return restarted
    previous = restarted.previous
    return JSONResponse({
        "previous": {"pid": previous.pid, "exit_code": previous.exit_code,
                     "signal": signal_name(previous.exit_signal) if previous.exit_signal else None},
        "pid": restarted.pid,
    })


# -- errors ---------------------------------------------------------------------------------


async def answer_http_exception(request: Request, exc: Exception) -> Response:
    """404, 405 and the like as JSON, keeping Starlette's headers (Allow on a 405)."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    # Never the whole path: answers that echo a 15 KB path pile up for clients that never read.
    path = excerpt(request.url.path)
    if exc.status_code == 404:
        message = f"no such route: {path} (see docs/openapi.yaml)"
    elif exc.status_code == 405:
        message = f"{excerpt(request.method)} is not allowed on {path}: use {headers.get('Allow', '')}"
    else:
        message = exc.detail
    return error(exc.status_code, message, headers)


class AnswerCrashes:
    """A handler that raises answers 500 JSON and one log line; the core never sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as failure:
            # A client chose the method and path, and perhaps the failure's text: excerpts only.
            log.about_client(ERROR, "%s %s failed: %s: %s", excerpt(str(scope.get("method"))),
                             excerpt(str(scope.get("path")), 200), type(failure).__name__,
                             excerpt(str(failure), 200))
            if not started:
                await error(500, f"internal error: {type(failure).__name__}")(scope, receive, send)


class AccessLog:
    """At -vv, one line per request: client, method, path and status. Never the query string,
    where a careless client may put a token, and never more of the path than an excerpt."""

    def __init__(self, app: ASGIApp, enabled: bool) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.enabled or scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def logging_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                host, port = scope.get("client") or ("-", 0)
                log.info('%s:%d - "%s %s HTTP/%s" %d', host, port, excerpt(scope["method"]),
                         excerpt(scope["path"], 200), scope["http_version"], message["status"])
            await send(message)

        await self.app(scope, receive, logging_send)


class DateHeader:
    """Every answer's Date header (RFC 9110: a server with a clock sends one), added here
    rather than by uvicorn, whose copy stays current only while its loop wakes every second
    (app/http/quiet_server.py)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._second = -1
        self._date = b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def dated_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"date", self._now())]
            await send(message)

        await self.app(scope, receive, dated_send)

    def _now(self) -> bytes:
        """The date as IMF-fixdate, formatted once a second at most."""
        second = int(time.time())
        if second != self._second:
            self._second, self._date = second, formatdate(second, usegmt=True).encode()
        return self._date
