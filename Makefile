# pidone: `make demo` runs it over a demo workload, `make test` runs the suite.
# Both set up what they need: a virtual environment in .venv, Debian packages when root.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := tini dumb-init util-linux procps iproute2

.PHONY: test soak demo venv system-packages clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

# Debian packages the tests use (the peers to compare against, unshare, ps, ip for network namespaces).
system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else echo "make: missing Debian packages:$$missing (run as root to install them)" >&2; fi; \
	fi

test: venv system-packages
	$(PY) -m pytest -q

# The reliability scenarios at their big sizes (100,000 orphans, a minute of each HTTP abuse...):
# a quarter of an hour on 2 cores. The figures each survived are printed at the end.
SOAK_TESTS := tests/test_fork_storm.py tests/test_signal_storm.py tests/test_pid_exhaustion.py \
	tests/test_log_faults.py tests/test_http_abuse.py

soak: venv system-packages
	PIDONE_SOAK=1 $(PY) -m pytest -q $(SOAK_TESTS)

demo: venv
	$(PY) examples/demo.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
