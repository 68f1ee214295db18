# `make demo` and `make test` set up .venv on first use (exact versions from constraints.txt), then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Quiet, offline Ray and a headless matplotlib. Ray's authentication stays as users get it (token auth on a
# local instance); lightrecipe keeps its own Ray on 127.0.0.1.
export RAY_USAGE_STATS_ENABLED := 0
export MPLBACKEND := Agg

.PHONY: install demo test test-fast stress bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lightrecipe demo --out demo

# The system packages (apt) install while pip installs the Python ones: a fresh machine waits for the slower only.
test:
	bash tests/ensure_system_packages.sh & apt=$$!; $(MAKE) --no-print-directory install && wait $$apt
	$(BIN)/python -m pytest

# Everything not marked slow (no training, Ray, browser or subprocess; tests/slow_guard.py holds to it).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# The slow tests STRESS_ROUNDS times in a row, stopping at the first failure: run it before calling a
# change to sweeps, training or the report done (a race shows up as one failed round in five).
STRESS_ROUNDS ?= 5
stress:
	bash tests/ensure_system_packages.sh & apt=$$!; $(MAKE) --no-print-directory install && wait $$apt
	@for round in $$(seq 1 $(STRESS_ROUNDS)); do \
		echo "stress: round $$round of $(STRESS_ROUNDS)"; \
		$(BIN)/python -m pytest -m slow -x -q || { echo "stress: round $$round of $(STRESS_ROUNDS) failed"; exit 1; }; \
	done; echo "stress: all $(STRESS_ROUNDS) rounds passed"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_trainer.py
	$(BIN)/python benchmarks/bench_sweep.py

clean:
	rm -rf $(VENV) demo *.egg-info
