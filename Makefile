# Set-up and the two everyday commands. Everything installs into ./.venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: venv browser demo test test-fast lint benchmark gpu-check mutation-check clean

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-export.txt requirements-app.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -r requirements-export.txt -r requirements-app.txt -c constraints.txt
	touch $@

venv: $(VENV)/.installed

# The web app's browser test drives Debian's chromium through chromedriver; installed when missing
# (needs root, as in CI). Elsewhere the browser test is skipped, saying why.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then echo "chromium and chromedriver present"; \
	else apt-get update -q && apt-get install -y -q --no-install-recommends chromium chromium-driver; fi

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
