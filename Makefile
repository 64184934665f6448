# Entry points for a fresh clone: `make demo`, `make test` and `make docs`. Each creates .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test docs docs-serve clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,docs]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/ferbench demo

# Adapter tests drive the real upstream code: fetch it first (GitHub, or your git insteadOf mirrors);
# when that is impossible the tests that need it skip and say why. Two pytest-xdist workers, a test file each at a
# time (module fixtures stay shared): many tests wait on worker subprocesses, so two cores finish the suite in
# 14 min instead of 20 for the same 916 tests (docs/benchmarks.md).
test: install
	$(VENV)/bin/ferbench fetch || echo "ferbench fetch failed: tests that need vendor/ will skip"
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=10

# The documentation site (docs/, mkdocs.yml); --strict turns every broken link or anchor into a failure.
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-serve: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

clean:
	rm -rf $(VENV) build site *.egg-info
