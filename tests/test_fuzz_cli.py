"""Fuzzing the command line and signal names: a Config or a documented error, never a traceback."""

from __future__ import annotations

import signal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli import EarlyExit, UsageError, parse_config
from app.config import Config
from app.numbers import parse_seconds
from app.core.signals import SignalNameError, parse_rewrite, parse_signal, signal_name

# What the OS can hand pidone in argv and the environment: any text but NUL, and the lone
# surrogates Python decodes undecodable bytes into.
OS_TEXT = st.text(
    st.one_of(st.characters(exclude_characters="\x00"),
              st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF)),
    max_size=20,
)
# Values that sit near the edges of what the parsers accept: tried with every flag, then mixed.
EDGES = [
    "", " ", "0", "-1", "15", "255", "256", "65535", "65536", "9" * 5000, "1e400", "nan", "inf",
    "³", "١٥", "sıgusr2", " TERM", "TERM\n", "1_0", "+1", ".5", "5.", "0600", "TERM", "sigterm", "RTMIN+3", "SIGRTMAX-2", "RTMIN+99", "RTMIN+³", "TERM:0",
    "USR1:QUIT", "KILL:TERM", ":", "[::1]:80", "[::1", ":³", "127.0.0.1:0", "unix:", "off",
    "debug", "json", "text", "\udcff",
]
TRICKY = st.sampled_from(EDGES)
VALUE = st.one_of(TRICKY, OS_TEXT)
FLAG_NAMES = [
    "-c", "-g", "-s", "-p", "-r", "-e", "-v", "-w", "-h", "-V", "--single-child", "--subreaper",
    "--pdeathsig", "--rewrite", "--remap-exit", "--verbose", "--warn-on-reap", "--http", "--http-mode",
    "--grace", "--term-delay", "--stop-timeout", "--log-format", "--", "--bogus", "-x",
]
FLAGS = st.sampled_from(FLAG_NAMES)
# --token-file opens its value, so it only ever gets names inside the test's own directory.
ENV_NAME_LIST = [
    "PIDONE_SINGLE_CHILD", "DUMB_INIT_SETSID", "TINI_KILL_PROCESS_GROUP", "PIDONE_SUBREAPER",
    "TINI_SUBREAPER",
    "PIDONE_LOG_LEVEL", "PIDONE_HTTP", "PIDONE_TOKEN", "PIDONE_GRACE", "PIDONE_TERM_DELAY",
    "PIDONE_STOP_TIMEOUT", "PIDONE_LOG_FORMAT", "PIDONE_HTTP_MODE",
]
ENV_NAMES = st.sampled_from(ENV_NAME_LIST)


def parse(args: list[str], env: dict[str, str]) -> Config | None:
    """parse_config, with the two documented ways of not returning a Config."""
    try:
        return parse_config(args, env)
    except (UsageError, EarlyExit):
        return None


@settings(max_examples=400, deadline=None)
@given(args=st.lists(st.one_of(FLAGS, VALUE), max_size=8),
       env=st.dictionaries(ENV_NAMES, VALUE, max_size=4))
def test_command_line_gives_config_or_usage_error(args, env):
    config = parse(args, env)
    if config is not None:
        assert config.command


@pytest.mark.parametrize("flag", FLAG_NAMES)
def test_every_flag_with_every_edge_value(flag):
    for value in EDGES:
        parse([flag, value, "true"], {})
        parse([f"{flag}={value}", "true"], {})


@pytest.mark.parametrize("name", ENV_NAME_LIST)
def test_every_variable_with_every_edge_value(name):
    for value in EDGES:
        parse(["true"], {name: value})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=40))
def test_token_file_of_any_bytes(tmp_path, content):
    token_file = tmp_path / "token"
    token_file.write_bytes(content)
    config = parse(["--token-file", str(token_file), "true"], {})
    if config is not None:
        assert config.token and config.token == config.token.strip()


@settings(max_examples=500, deadline=None)
@given(text=VALUE)
def test_signal_names_parse_or_raise_signal_name_error(text):
    try:
        signo = parse_signal(text)
    except SignalNameError:
        return
    assert signo in signal.valid_signals()
    assert text.isascii() and text == text.strip()  # only bare ASCII names a signal


@settings(max_examples=500, deadline=None)
@given(text=VALUE)
def test_only_bare_ascii_decimals_are_seconds(text):
    try:
        seconds = parse_seconds(text)
    except ValueError:
        return
    assert text.isascii() and text == text.strip() and 0 <= seconds < float("inf")


@settings(max_examples=300, deadline=None)
@given(source=VALUE, target=VALUE)
def test_rewrites_parse_or_raise_signal_name_error(source, target):
    try:
        parse_rewrite(f"{source}:{target}")
    except SignalNameError:
        pass


def test_every_signal_name_reads_back():
    for signo in signal.valid_signals():
        name = signal_name(signo)
        assert parse_signal(name) == signo
        assert parse_signal(name.removeprefix("SIG").lower()) == signo
        assert parse_signal(str(int(signo))) == signo
