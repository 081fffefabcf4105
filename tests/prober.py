"""Probes an HTTP path as a kubelet does, from its own process so the test's threads do not skew it.

usage: prober.py HOST PORT PATH PERIOD TIMEOUT [SOURCE]
A new connection every PERIOD seconds, TIMEOUT for the whole exchange, from the address SOURCE
if given (127.0.0.2: another peer than an attacker on 127.0.0.1); prints one line per probe,
"ok SECONDS" for a 200 in time or "fail REASON", until stdin closes.
"""

from __future__ import annotations

import http.client
import select
import sys
import time


def probe(host: str, port: int, path: str, timeout: float, source: str | None = None) -> str:
    asked = time.monotonic()
    connection = http.client.HTTPConnection(host, port, timeout=timeout,
                                            source_address=(source, 0) if source else None)
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


def main(host: str, port: str, path: str, period: str, timeout: str, source: str = "") -> None:
    while not select.select([sys.stdin], [], [], float(period))[0]:
        print(probe(host, int(port), path, float(timeout), source or None), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
