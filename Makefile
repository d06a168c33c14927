# xjepa-kit: `make demo` runs the kit on the embedded data, `make test` runs every test.
# Each target creates .venv (Python 3.10+) when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv demo test test-slow test-browser notebooks lab bench clean

# The install is about 7.5 GB on x86_64 Linux (PyPI's torch is a CUDA build): say so before pip fails midway.
$(STAMP): pyproject.toml
	@df -Pk . | awk 'NR == 2 && $$4 < 8 * 1024 * 1024 { printf "warning: %.1f GB free here; installing .venv needs about 7.5 GB (torch, CUDA build)\n", $$4 / 1024 / 1024 }'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/xjepa demo

test: $(STAMP)
	XJEPA_FAST=1 $(BIN)/python -m pytest -q tests notebooks --nbval-lax

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow tests

test-browser: $(STAMP)
	bash scripts/check_explorer_browser.sh

# Re-run every notebook in full mode on the embedded default and store its outputs (no widget state).
notebooks: $(STAMP)
	$(BIN)/python scripts/build_notebooks.py
	cd notebooks && ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=3600 *.ipynb
	$(BIN)/python scripts/build_notebooks.py --strip-widget-state

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_data.py

clean:
	rm -rf $(VENV) .pytest_cache
