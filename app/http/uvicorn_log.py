"""uvicorn's and asyncio's log records as lines of pidone's log. Imported by the HTTP thread:
logging comes with uvicorn, and pidone's own log does without it (app/log.py)."""

from __future__ import annotations

import logging

from app.excerpt import excerpt
from app.log import DEBUG, ERROR, INFO, WARNING, log


class IntoPidoneLog(logging.Handler):
    """A record as one line of pidone's log, without traceback. uvicorn's and asyncio's lines
    are about clients (a request that failed, a connection): excerpted, so that nothing a
    client sent can forge a line, and rate-limited (Log.about_client)."""

    def emit(self, record: logging.LogRecord) -> None:
        level = (ERROR if record.levelno >= logging.ERROR else WARNING
                 if record.levelno >= logging.WARNING else INFO if record.levelno >= logging.INFO
                 else DEBUG)
        log.about_client(level, "%s", excerpt(record.getMessage(), 200))


def route_uvicorn_logs(verbose: bool) -> None:
    """uvicorn's and asyncio's own lines go through pidone's log (one line each, no
    tracebacks); a client's garbage is not worth a warning unless -vv asked for detail."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = False
    for name in ("uvicorn", "asyncio"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [IntoPidoneLog()]
        logger.propagate = False
        logger.setLevel(logging.DEBUG if verbose else logging.ERROR)
    for name in ("uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).propagate = True
