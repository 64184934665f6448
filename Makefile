# Two entry points for a fresh clone: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/ferbench demo

# Adapter tests drive the real upstream code: fetch it first (GitHub, or your git insteadOf mirrors);
# when that is impossible the tests that need it skip and say why.
test: install
	$(VENV)/bin/ferbench fetch || echo "ferbench fetch failed: tests that need vendor/ will skip"
	$(PY) -m pytest -q --durations=10

clean:
	rm -rf $(VENV) build *.egg-info
