# The two commands of the README: `make test` and `make demo`. `make test` runs ruff, mypy, the tests and the
# docstring examples.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo lint typecheck bench thorough golden clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check optax_warmup tests benchmarks tools

# mypy over the whole package (its settings are in pyproject.toml).
typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The tests, the docstring examples of the package (pyproject.toml's testpaths), after lint and typecheck.
test: $(STAMP) lint typecheck
	$(PY) -m pytest -q -n 2

demo: $(STAMP)
	$(PY) -m optax_warmup sweep

bench: $(STAMP)
	$(PY) -m benchmarks

# Thousands of hypothesis examples per property instead of the CI profile's hundreds.
thorough: $(STAMP)
	HYPOTHESIS_PROFILE=thorough $(PY) -m pytest -q -n 2 tests/test_properties.py

# Regenerate the peers' golden tables in a throwaway environment (needs the registries; about 4 minutes).
golden:
	$(PYTHON) -m venv /tmp/optax_warmup_peers
	/tmp/optax_warmup_peers/bin/pip install -q jax '.[peers]'
	KERAS_BACKEND=jax /tmp/optax_warmup_peers/bin/python tools/make_golden.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
