"""docs/openapi.yaml tells the truth: the same routes as the app, and a fuzzed live server keeps to it."""

from __future__ import annotations

import re
import signal
import time

import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import __version__
from app.config import Config
from app.core.loop import Core
from app.core.signals import SignalNameError, parse_signal
from app.core.state import ChildStatus, CoreState
from app.http.web import build_app
from conftest import ROOT, scrape, workload

DOCUMENT = ROOT / "docs" / "openapi.yaml"
EXAMPLES_PER_OPERATION = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
ENDS_THE_CHILD = {signal.SIGKILL, signal.SIGSTOP}
"""Signals the fuzzed child cannot trap: the fuzzer may not send them, or the server would go."""


def app_operations() -> set[tuple[str, str]]:
    state = CoreState(child=ChildStatus(("x",), 1, time.time(), True), is_pid1=False, is_subreaper=False)
    app = build_app(Core(Config(command=("x",)), state))
    found = set()
    for route in app.routes:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # {sig:path} is {sig} to the world
        found |= {(path, method.lower()) for method in route.methods}
    return found


def document_operations() -> set[tuple[str, str]]:
    document = yaml.safe_load(DOCUMENT.read_text())
    return {(path, method) for path, item in document["paths"].items() for method in item
            if method in ("get", "head", "post", "put", "patch", "delete", "options")}


def test_every_route_is_documented_and_every_documented_route_exists():
    assert app_operations() == document_operations()
    assert yaml.safe_load(DOCUMENT.read_text())["info"]["version"] == __version__


def test_every_error_answer_is_documented_as_json_error():
    document = yaml.safe_load(DOCUMENT.read_text())
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                if method != "head" and status.startswith("4"):
                    ref = answer.get("$ref") or answer["content"]["application/json"]["schema"]["$ref"]
                    assert ref.rsplit("/", 1)[1] in ("Unauthorized", "Forbidden", "Error"), (path, status)


def keeps_the_child(case) -> bool:
    sig = (case.path_parameters or {}).get("sig")
    if sig is None:
        return True
    try:
        return parse_signal(str(sig)) not in ENDS_THE_CHILD
    except SignalNameError:
        return True


def restarts_quickly(case):
    """A fuzzed restart kills the (TERM-trapping) child at once instead of after 10 s."""
    if case.operation.path == "/restart":
        case.query = {**(case.query or {}), "timeout": "0"}
    return case


def until_ready(running) -> None:
    """Past the signals the child reported, to the next child's "ready": a restarted child
    traps nothing until then."""
    while not running.read_report().startswith("ready "):
        pass


def test_fuzzed_requests_get_documented_answers_and_never_a_5xx(start_pidone):
    running = start_pidone(workload("trap=all"))
    running.expect_report("ready")
    schema = schemathesis.openapi.from_path(str(DOCUMENT))
    for result in schema.get_all_operations():
        operation = result.ok()
        # Only /signal/{sig} has an input to get wrong.
        negative = [GenerationMode.NEGATIVE] if "{" in operation.path else []
        for mode in (GenerationMode.POSITIVE, *negative):

            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode).filter(keeps_the_child)
                   .map(restarts_quickly))
            def fuzz(case) -> None:
                answer = case.call_and_validate(base_url=running.url, checks=CHECKS, timeout=20)
                if case.operation.path == "/restart" and answer.status_code == 200:
                    until_ready(running)

            fuzz()
            assert running.proc.poll() is None, f"pidone exited during {operation.label} ({mode})"
    assert running.http.get("/health").status_code == 200
    # The fuzzer's restarts went through: their answers were checked against the document too.
    assert scrape(running)[("pidone_child_restarts_total", (("reason", "api"),))] >= 1
