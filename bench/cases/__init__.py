"""One module per benchmark case; each has `run(bench) -> CaseResult`."""
