"""Probes an HTTP path as a kubelet does, from its own process so the test's threads do not skew it.

usage: prober.py HOST PORT PATH PERIOD TIMEOUT
A new connection every PERIOD seconds, TIMEOUT for the whole exchange; prints one line per
probe, "ok SECONDS" for a 200 in time or "fail REASON", until stdin closes.
"""

from __future__ import annotations

import http.client
import select
import sys
import time


def probe(host: str, port: int, path: str, timeout: float) -> str:
    asked = time.monotonic()
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    step = "connect"
    try:
        connection.connect()
        step = "answer"
        connection.request("GET", path)
        status = connection.getresponse().status
    except OSError as failure:
        return f"fail {step}:{type(failure).__name__}"
    finally:
        connection.close()
    took = time.monotonic() - asked
    if status != 200:
        return f"fail status={status}"
    return f"ok {took:.4f}" if took <= timeout else f"fail slow={took:.4f}"


def main(host: str, port: str, path: str, period: str, timeout: str) -> None:
    while not select.select([sys.stdin], [], [], float(period))[0]:
        print(probe(host, int(port), path, float(timeout)), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
