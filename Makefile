# The two commands: `make demo` (quickstart, offline) and `make test` (the suite CI runs).
# `make test-fast`: the tests that train nothing for long, for each edit (about a minute on 2 cores).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench screenshots install clean

demo: $(STAMP)
	$(VENV)/bin/workbench train recipes/quickstart.yaml

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not notebook and not browser"

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: $(STAMP)
	$(PY) bench/quickstart.py | tee bench/results/quickstart.txt
	$(PY) bench/overhead.py --method sft | tee bench/results/sft_overhead.txt
	$(PY) bench/overhead.py --method dpo | tee bench/results/dpo_overhead.txt
	$(PY) bench/alignment.py | tee bench/results/alignment.txt
	$(PY) bench/app.py | tee bench/results/app.txt
	$(PY) bench/slow_loader.py | tee bench/results/slow_loader.txt
	$(PY) bench/profiling.py | tee bench/results/profiling.txt
	$(PY) bench/bad_inputs.py | tee bench/results/bad_inputs.txt

# The README's pictures of the app: the browser tests, copying their screenshots into docs/.
screenshots: $(STAMP)
	WB_SCREENSHOTS=docs $(PY) -m pytest tests/test_browser.py -m browser

install: $(STAMP)

# torch is pinned and installed first: the CPU wheel here; an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
