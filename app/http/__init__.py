"""The HTTP side: probes, metrics and the API. It reads the core through Core.snapshot() and
asks through Core.send() and Core.restart()."""
