# Set-up and the two everyday commands. Everything installs into ./.venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: venv demo test benchmark clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) demo.py $(DEMO_ARGS)

test: venv
	$(PY) -m pytest -q tests $(TEST_ARGS)

benchmark: venv
	$(PY) -m scripts.benchmark $(BENCH_ARGS)

clean:
	rm -rf $(VENV)
