# Set-up and the two everyday commands. Everything installs into ./.venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: venv demo test test-fast lint benchmark gpu-check mutation-check clean

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-export.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -r requirements-export.txt -c constraints.txt
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) demo.py $(DEMO_ARGS)

test: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q tests $(TEST_ARGS)

test-fast: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q -m "not slow and not cuda" tests $(TEST_ARGS)

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

benchmark: venv
	$(PY) -m scripts.benchmark $(BENCH_ARGS)

# Plants a change of each scoring rule and checks that the scorer tests fail (scripts/mutation_check.py)
mutation-check: venv
	$(PY) -m scripts.mutation_check $(MUTATION_ARGS)

# On a GPU machine: its own python3 and packages (nothing is installed); report in output/gpu_check/
gpu-check:
	$(PYTHON) -m scripts.gpu_check $(GPU_CHECK_ARGS)

clean:
	rm -rf $(VENV)
