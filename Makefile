# `make demo` and `make test` set up .venv on first use (exact versions from constraints.txt), then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Quiet, offline Ray and a headless matplotlib. Ray's authentication stays as users get it (token auth on a
# local instance); lightrecipe keeps its own Ray on 127.0.0.1.
export RAY_USAGE_STATS_ENABLED := 0
export MPLBACKEND := Agg

.PHONY: install demo test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lightrecipe demo --out demo

test: $(STAMP)
	bash tests/reports/ensure_chromium.sh
	bash tests/search/ensure_postgres.sh
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_trainer.py
	$(BIN)/python benchmarks/bench_sweep.py

clean:
	rm -rf $(VENV) demo *.egg-info
