# pidone: `make demo` runs it over a demo workload, `make test` runs the suite,
# `make bench` compares it with tini, dumb-init and catatonit (docs/benchmarks.md).
# Both set up what they need: a virtual environment in .venv, Debian packages when root.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := tini dumb-init util-linux procps iproute2 prometheus strace
# The benchmarks' peers, load and timing tools, and the compiler for their C probe
# (make bench, and its smoke test in make test). catatonit is also the kubelet stand-in's
# pause container (tests/kubelet.py).
APT_PACKAGES += catatonit wrk hyperfine gcc libc6-dev
# A container engine of our own for the image tests (tests/engine.py starts a private dockerd),
# compose 1.29 for compose.yaml, and mmdebstrap for a local base image: no registry is reachable.
APT_PACKAGES += docker.io docker-compose mmdebstrap
# nginx-light: a real pre-fork server in C as pidone's child (tests/test_prefork_servers.py).
APT_PACKAGES += nginx-light
# patchelf builds the self-contained bundle (bundle/build.py); Debian's Python with pip builds
# the benchmarks' one.
APT_PACKAGES += patchelf python3-pip

.PHONY: test soak demo bench venv system-packages clean dashboard-preview

venv: $(VENV)/.installed

# pip drops bin/pidone's -I when it writes the venv's interpreter into its #! line: put it back.
$(VENV)/.installed: pyproject.toml constraints.txt bin/pidone
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	sed -i '1s/^\(#!.*python[0-9.]*\)$$/\1 -I/' $(VENV)/bin/pidone
	touch $@

# Debian packages the tests and benchmarks use (the peers to compare against, unshare, ps,
# ip for network namespaces, prometheus and its promtool, the container engine).
system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		else echo "make: missing Debian packages:$$missing (run as root to install them)" >&2; fi; \
	fi

test: venv system-packages
	$(PY) -m pytest -q

# The reliability scenarios at their big sizes (100,000 orphans, a minute of each HTTP abuse and
# of each attack of issue 22, three minutes of 600 clients that never read...): about 20 minutes
# on 2 cores. The figures each survived are printed at the end.
SOAK_TESTS := tests/test_probe_first.py tests/test_fork_storm.py tests/test_signal_storm.py tests/test_pid_exhaustion.py \
	tests/test_core_faults.py \
	tests/test_log_faults.py tests/test_http_abuse.py

soak: venv system-packages
	PIDONE_SOAK=1 $(PY) -m pytest -q $(SOAK_TESTS)

# Takes about 15 minutes; writes docs/benchmarks.md and docs/benchmarks.png.
bench: venv system-packages
	$(PY) -m bench.run --out docs

# The demo needs only unshare and Prometheus of the Debian packages.
DEMO_APT_PACKAGES := util-linux prometheus

demo: venv
	@$(MAKE) --no-print-directory system-packages APT_PACKAGES="$(DEMO_APT_PACKAGES)"
	$(PY) examples/demo.py

# docs/dashboard.png: the Grafana dashboard's queries, plotted from the e2e test's Prometheus.
dashboard-preview: venv system-packages
	PIDONE_DASHBOARD_DATA=build/dashboard-data.json $(PY) -m pytest -q tests/test_prometheus_e2e.py
	$(PY) grafana/plot_preview.py build/dashboard-data.json docs/dashboard.png

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
