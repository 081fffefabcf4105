"""`python -m app`: the developer's way in (a checkout on PYTHONPATH), running pidone as the
installed `pidone` command does, but not isolated from the environment: that is the command's
`#!python -I` (bin/pidone), which images use."""

# First of all, as in bin/pidone: what is not blocked yet is lost by a namespace's init.
from _signal import SIG_BLOCK, pthread_sigmask, valid_signals

pthread_sigmask(SIG_BLOCK, valid_signals())

from app.cli import main  # noqa: E402

raise SystemExit(main())
