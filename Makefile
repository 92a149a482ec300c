# Set-up and entry points. `make demo` runs the main job on the bundled example; `make test` runs the tests.
# Both create .venv and install what they need on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SPEC ?= examples/digits/deploy.yaml

.PHONY: venv demo build test test-fast bench schema docs clean

$(VENV)/.installed-%: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$*]'
	touch $@

venv: $(VENV)/.installed-runtime,search,storage,test

demo: $(VENV)/.installed-runtime
	$(VENV)/bin/tfspec build $(SPEC)
	$(VENV)/bin/tfspec run $(SPEC)

build: $(VENV)/.installed-runtime
	$(VENV)/bin/tfspec build $(SPEC)

test: $(VENV)/.installed-runtime,search,storage,test
	bash .ci/system-deps
	$(PY) -m pytest -q --durations=10

test-fast: $(VENV)/.installed-runtime,search,storage,test
	$(PY) -m pytest -q -m "not slow"

bench: $(VENV)/.installed-runtime,search,storage,test
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

schema: $(VENV)/.installed-runtime
	$(VENV)/bin/tfspec schema > tfspec.schema.json

docs: $(VENV)/.installed-runtime
	$(PY) -m tfspec.compiler.docs --out docs/reference/spec.md

clean:
	rm -rf build dist .tfspec .pytest_cache examples/*/.tfspec
