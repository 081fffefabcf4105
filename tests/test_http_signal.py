"""POST /signal/{sig}: names in every spelling reach the child, are counted, and bad ones get 4xx."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from conftest import LINGERER, forwarded, scrape, wait_for_core_turn_after, wait_for_status, workload

RT = signal.SIGRTMIN
SPELLINGS = [
    # (path segment, name pidone answers with, the workload's report, where it went)
    ("HUP", "SIGHUP", "SIGHUP", "child"),
    ("sigusr1", "SIGUSR1", "SIGUSR1", "child"),
    ("SIGUSR2", "SIGUSR2", "SIGUSR2", "child"),
    ("Int", "SIGINT", "SIGINT", "group"),
    ("quit", "SIGQUIT", "SIGQUIT", "group"),
    (str(int(signal.SIGWINCH)), "SIGWINCH", "SIGWINCH", "child"),
    ("RTMIN+3", "SIGRTMIN+3", "SIGRTMIN+3", "child"),
    ("sigrtmin", "SIGRTMIN", "SIGRTMIN+0", "child"),
    ("RTMAX-2", "SIGRTMAX-2", f"SIGRTMIN+{signal.SIGRTMAX - 2 - RT}", "child"),
    ("abrt", "SIGABRT", "SIGABRT", "child"),
]
UNKNOWN = ["FOO", "999", "-1", "0", "", "SIG", "RTMIN+99", "TERM%20KILL", "15.0", "%00", "TE%0ARM",
           "a/b", "%2F"]


def test_every_spelling_reaches_the_child(start_pidone):
    running = start_pidone(workload("trap=all"))
    child_pid = int(running.expect_report("ready").split()[1])
    for segment, name, report, target in SPELLINGS:
        answer = running.http.post(f"/signal/{segment}")
        assert answer.status_code == 200, (segment, answer.text)
        assert answer.json() == {"signal": name, "number": answer.json()["number"],
                                 "pid": child_pid, "target": target}
        assert running.read_report() == report, segment
        if target == "group":  # a stop, followed by SIGCONT for a stopped process
            assert running.read_report() == "SIGCONT"


def test_http_signals_are_counted_with_source_http(start_pidone):
    running = start_pidone(workload("trap=USR1,USR2,HUP"))
    running.expect_report("ready")
    for _ in range(3):
        assert running.http.post("/signal/USR1").status_code == 200
        assert running.read_report() == "SIGUSR1"
    for _ in range(2):
        running.send(signal.SIGUSR2)
        assert running.read_report() == "SIGUSR2"
    assert running.http.post("/signal/HUP").status_code == 200
    assert running.read_report() == "SIGHUP"
    samples = scrape(running)
    counted = {tuple(label for label in labels if label[0] != "target"): value
               for (name, labels), value in samples.items()
               if name == "pidone_signals_forwarded_total" and value}
    assert counted == {
        (("signal", "SIGUSR1"), ("source", "http")): 3,
        (("signal", "SIGUSR2"), ("source", "os")): 2,
        (("signal", "SIGHUP"), ("source", "http")): 1,
    }
    received = {labels: value for (name, labels), value in samples.items()
                if name == "pidone_signals_received_total" and value}
    assert received == {(("signal", "SIGUSR2"),): 2}
    # The usual signals are there from the start, at 0, so that rate() sees their first one.
    assert samples[("pidone_signals_received_total", (("signal", "SIGTERM"),))] == 0
    assert forwarded(samples, "SIGTERM", "os") == 0
    assert samples[("pidone_signal_forward_seconds_count", ())] == 6


@pytest.mark.parametrize("segment", UNKNOWN)
def test_unknown_signal_is_400(start_pidone, segment):
    running = start_pidone(workload())
    answer = running.http.post(f"/signal/{segment}")
    assert answer.status_code == 400
    assert "unknown signal" in answer.json()["error"]


NOT_ASCII_OR_NOT_BARE = [
    "%D9%A1%D9%A0",  # ١٠, Arabic-Indic digits: int() reads 10, SIGUSR1
    "%E2%91%A9",  # ⑩
    "s%C4%B1gusr2",  # a dotless ı, which upper() folds to I: SIGUSR2
    "%EF%BC%B4%EF%BC%A5%EF%BC%B2%EF%BC%AD",  # ＴＥＲＭ, full width
    "RTMIN%2B%D9%A3",  # RTMIN+٣
    "%20USR1", "USR1%20", "%09HUP", "HUP%0A",  # whitespace around a name
    "1_0", "+10", "%2010",  # what int() forgives
]


def test_only_plain_ascii_names_and_numbers_reach_the_child(start_pidone):
    """Finding 5 of issue 11: Unicode digits, Unicode case folding and whitespace named signals."""
    running = start_pidone(workload("trap=all"))
    running.expect_report("ready")
    for segment in NOT_ASCII_OR_NOT_BARE:
        answer = running.http.post(f"/signal/{segment}")
        assert answer.status_code == 400, (segment, answer.text)
        assert "unknown signal" in answer.json()["error"]
    assert running.http.post("/signal/WINCH").status_code == 200
    assert running.read_report() == "SIGWINCH"  # the first signal the child heard


def test_a_long_signal_name_is_not_echoed_whole(start_pidone):
    running = start_pidone(workload())
    answer = running.http.post("/signal/" + "X" * 10_000)
    assert answer.status_code == 400
    assert len(answer.content) < 300 and "..." in answer.json()["error"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(start_pidone, method):
    running = start_pidone(workload())
    answer = running.http.request(method, "/signal/TERM")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert "error" in answer.json()


def test_rewrites_do_not_apply_to_the_api(start_pidone):
    running = start_pidone(workload("trap=USR1,USR2"), "-r", "USR1:USR2")
    running.expect_report("ready")
    running.send(signal.SIGUSR1)
    assert running.read_report() == "SIGUSR2"  # an OS signal is rewritten
    assert running.http.post("/signal/USR1").json()["signal"] == "SIGUSR1"
    assert running.read_report() == "SIGUSR1"  # the caller's explicit choice is not


@pytest.mark.parametrize("flag, sig, target", [
    ("-c", "TERM", "child"), ("-c", "USR1", "child"), ("-g", "HUP", "group"), ("-g", "TERM", "group"),
])
def test_g_and_c_decide_the_target_of_every_signal(start_pidone, flag, sig, target):
    running = start_pidone(workload(f"trap={sig}"), flag)
    running.expect_report("ready")
    assert running.http.post(f"/signal/{sig}").json()["target"] == target
    assert running.read_report() == f"SIG{sig}"


def test_kill_is_allowed_and_ends_the_child(start_pidone):
    running = start_pidone(workload())
    running.expect_report("ready")
    assert running.http.post("/signal/KILL").status_code == 200
    assert running.wait() == 128 + signal.SIGKILL


def test_signal_after_the_child_exited_is_409(start_pidone):
    running = start_pidone(LINGERER, "--grace", "60")
    wait_for_status(running, "/health", 503)
    answer = running.http.post("/signal/TERM")
    assert answer.status_code == 409
    assert "exited" in answer.json()["error"]


def test_no_signal_reaches_a_newcomer_that_took_the_exited_childs_pid(start_pidone, init_hammer):
    """The PID-reuse race: /signal calls race the child's exit, and once it is reaped a
    newcomer takes the same PID and process group. Only the core thread reaps and signals, so
    "still running? then kill" cannot straddle a reap: every call made after the reap is a
    409 and the newcomer gets nothing."""
    running = start_pidone(workload("ignore=USR1", "recycle", "exit-on=USR2"), "--grace", "60",
                           stdin=subprocess.PIPE)
    child_pid = int(running.expect_report("ready").split()[1])
    with init_hammer(running.url, "/signal/USR1") as hammer:
        hammer.wait_for(20)
        running.send(signal.SIGUSR2)
        assert running.read_report() == "SIGUSR2"  # the child's last word
        newcomer = running.expect_report("newcomer")
        if newcomer.split()[1:] != [str(child_pid), str(child_pid)]:
            pytest.skip(f"the kernel gave the newcomer another PID: {newcomer}")
        newcomer_seen = time.monotonic()
        hammer.wait_for(len(hammer.statuses) + 200)  # calls made while the newcomer holds the PID
    running.proc.stdin.write(b"done\n")
    running.proc.stdin.flush()
    assert running.read_report() == "strays 0"
    assert set(hammer.statuses_asked_after(newcomer_seen)) == {409}
    assert hammer.statuses[0] == 200


def test_an_api_term_during_term_delay_goes_through_at_once_and_only_once(start_pidone):
    delay = 0.3
    running = start_pidone(workload("trap=TERM,USR1"), "--term-delay", str(delay))
    running.expect_report("ready")
    running.send(signal.SIGTERM)
    wait_for_status(running, "/readyz", 503)
    sent_at = time.time()
    assert running.http.post("/signal/TERM").status_code == 200
    assert running.read_report() == "SIGTERM"
    wait_for_core_turn_after(running, sent_at + delay)  # a held-back TERM would have gone by then
    running.send(signal.SIGUSR1)
    assert running.read_report() == "SIGUSR1"  # not a second, delayed SIGTERM
    samples = scrape(running)
    assert forwarded(samples, "SIGTERM", "http") == 1
    assert forwarded(samples, "SIGTERM", "os") == 0
