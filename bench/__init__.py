"""Benchmarks: pidone side by side with tini, dumb-init and catatonit, each as PID 1."""
