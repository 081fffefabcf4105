"""What SECURITY.md promises about the HTTP side, held to: the token never shows, refusals say
nothing about it, only POST /signal changes anything, and no CORS or server-banner headers."""

from __future__ import annotations

import signal

import pytest

from conftest import scrape, workload

TOKEN = "Tok3n-that-must-not-leak"
ROUTES = ["/health", "/livez", "/readyz", "/metrics", "/status", "/processes"]


@pytest.fixture
def guarded(start_pidone, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    running = start_pidone(workload("trap=TERM", "exit-on=USR2"), "-vv", "--token-file",
                           str(token_file))
    running.expect_report("ready")
    return running


def test_the_token_shows_nowhere(guarded):
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    bodies = [guarded.http.get(path, headers=bearer).text for path in ROUTES]
    bodies.append(guarded.http.post("/signal/TERM", headers={"Authorization": "Bearer wrong"}).text)
    assert not [body for body in bodies if TOKEN in body]
    assert guarded.http.post("/signal/TERM", headers=bearer).status_code == 200
    guarded.expect_report("SIGTERM")
    guarded.send(signal.SIGUSR2)  # the child leaves, and pidone with it, its log flushed
    assert guarded.wait() == 0
    assert '"POST /signal/TERM HTTP/1.1" 200' in guarded.stderr
    assert TOKEN not in guarded.stderr


def test_refusals_say_nothing_about_the_token(guarded):
    missing = guarded.http.post("/signal/TERM")
    wrong_start = guarded.http.post("/signal/TERM", headers={"Authorization": "Bearer X" + TOKEN[1:]})
    wrong_end = guarded.http.post("/signal/TERM", headers={"Authorization": f"Bearer {TOKEN[:-1]}X"})
    other_scheme = guarded.http.post("/signal/TERM", headers={"Authorization": f"Basic {TOKEN}"})
    answers = [missing, wrong_start, wrong_end, other_scheme]
    assert {answer.status_code for answer in answers} == {401}
    assert len({answer.content for answer in answers}) == 1  # the same words, whatever was sent
    assert TOKEN[1:-1] not in missing.text


def test_only_post_signal_changes_anything(guarded):
    before = scrape(guarded)
    for path in ROUTES:
        for method in ("GET", "HEAD"):
            assert guarded.http.request(method, path).status_code in (200, 401)
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            assert guarded.http.request(method, path).status_code == 405
    after = scrape(guarded)
    forwarded = {key: value for key, value in after.items() if key[0] == "pidone_signals_forwarded_total"}
    assert sum(forwarded.values()) == 0
    assert forwarded == {key: value for key, value in before.items() if key in forwarded}
    assert after[("pidone_child_running", ())] == 1


def test_no_cors_and_no_server_banner(guarded):
    preflight = guarded.http.options("/signal/TERM", headers={
        "Origin": "http://elsewhere.example", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 405
    answers = [preflight] + [guarded.http.get(path, headers={"Origin": "http://elsewhere.example"})
                             for path in ROUTES]
    for answer in answers:
        assert "server" not in answer.headers
        assert not [name for name in answer.headers if name.lower().startswith("access-control-")]
