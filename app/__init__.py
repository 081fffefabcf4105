"""pidone: a PID 1 for containers that reaps, forwards signals and answers over HTTP."""

__version__ = "0.1.0"
