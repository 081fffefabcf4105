"""The core: signals, the child, reaping and leaving. Nothing here imports the HTTP side."""
