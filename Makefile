# Two commands work on a fresh clone: `make lab` and `make test`.
PYTHON  ?= python3
# Pythons 3.12 and 3.13 for the cross-version scenario tests: pyenv's, else one on PATH
PY312   ?= $(or $(lastword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12)),$(shell command -v python3.12))
PY313   ?= $(or $(lastword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13)),$(shell command -v python3.13))
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
STAMP312:= .venv-3.12/.installed
STAMP313:= .venv-3.13/.installed

.PHONY: lab test check install venv-3.12 venv-3.13 chromium go java hub bench datasets datasets-fleet clean

# setup.py builds the GC tracer's optional C callback for each venv's Python (editable too)
$(STAMP): pyproject.toml setup.py labkit/capture/_gcevents.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# .venv-3.12, .venv-3.13: the package (without its test extra) under $(PY312), $(PY313),
# installed by uv (from .venv's test extra): the same resolution as pip's, in seconds, not minutes
.venv-3.%/.installed: pyproject.toml setup.py labkit/capture/_gcevents.c $(STAMP)
	@test -n "$(PY3$*)" || { echo "Python 3.$* not found: install it or pass PY3$*=/path/to/python3.$*"; exit 2; }
	$(VENV)/bin/uv venv -q --clear --python $(PY3$*) .venv-3.$*
	$(VENV)/bin/uv pip install -q --python .venv-3.$*/bin/python -e .
	touch $@

install: $(STAMP)

venv-3.12: $(STAMP312)

venv-3.13: $(STAMP313)

# Debian's Chromium for the browser test (no browser download)
chromium:
	scripts/install-chromium

# Debian's Go, whose `go tool pprof` reads labkit's pprof exports in the tests
go:
	scripts/install-go

# Debian's Java (17+), under pyspark (test extra) in the test that runs the fleet on Spark
java:
	scripts/install-java
# JupyterHub's proxy (configurable-http-proxy, pinned) from npm into .hub-proxy/, for
# `labkit hub` and tests/test_hub*.py (jupyterhub itself comes with the test extra); the
# folders above the venv's Python opened for the learners to pass through (o+x only)
hub: install
	scripts/install-hub-proxy
	scripts/open-hub-paths

# Install, check the machine, then execute every notebook (each runs its scenario's quick
# preset live, every variant or setting) into offline HTML reports and reports/index.html.
lab: install
	$(VENV)/bin/labkit doctor || true
	$(VENV)/bin/labkit report --all --out reports
	@echo "open reports/index.html"

test: install venv-3.12 venv-3.13 chromium go java hub
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

# The edit loop: lint, the layers contract (pyproject.toml) and the tests not marked slow.
check: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -m "not slow" -x

bench: install
	$(PY) bench/gctrace_overhead.py
	$(PY) bench/load_memray.py

# Record every scenario's quick run (each variant or setting) as the reference datasets:
# datasets/<scenario>/<variant>/, each a run directory with its manifest.
SCENARIOS = pool-misuse buffer-growth gc-tuning thread-leak fd-leak gateway-load
datasets: install
	rm -rf .datasets.new
	for s in $(SCENARIOS); do \
	  $(VENV)/bin/labkit run $$s --quick --out .datasets.new/$$s > /dev/null || exit 1; done
	$(PY) -c 'import pathlib, labkit.rundir as r; \
	  [r.pack_run(m.parent) for m in pathlib.Path(".datasets.new").glob("*/*/manifest.json")]'
	for s in $(SCENARIOS); do rm -rf datasets/$$s && mv .datasets.new/$$s datasets/$$s; done
	rm -rf .datasets.new
	$(MAKE) datasets-fleet
	du -sh datasets

# A recorded fleet for notebooks/95-fleet: 20 pods serving 1000 to 5000 requests each,
# release 1.4.2 (pool-misuse fixed) on 16 of them and 1.5.0 (leaky) on FLEET_CANARIES;
# datasets/fleet/pod-NN/<variant>, labelled host, release and requests.
FLEET_CANARIES = 03 06 12 20
datasets-fleet: install
	rm -rf .fleet.new
	for i in $$(seq -w 1 20); do \
	  v=fixed; rel=1.4.2; case " $(FLEET_CANARIES) " in *" $$i "*) v=leaky; rel=1.5.0;; esac; \
	  n=$$(( ($${i#0} - 1) % 5 * 1000 + 1000 )); \
	  $(VENV)/bin/labkit run pool-misuse --quick --variant $$v --param requests=$$n \
	    --label host=pod-$$i --label release=$$rel --label requests=$$n \
	    --out .fleet.new/pod-$$i > /dev/null || exit 1; done
	$(PY) -c 'import pathlib, labkit.rundir as r; \
	  [r.pack_run(m.parent) for m in pathlib.Path(".fleet.new").glob("*/*/manifest.json")]'
	rm -rf datasets/fleet && mv .fleet.new datasets/fleet

clean:
	rm -rf $(VENV) .venv-3.12 .venv-3.13 runs reports .pytest_cache
