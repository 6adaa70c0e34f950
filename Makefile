# The two commands of the README: `make test` and `make demo`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo lint bench thorough golden clean evidence evidence-methods evidence-adaptive evidence-transfer

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check optax_warmup tests benchmarks tools

test: $(STAMP) lint
	$(PY) -m pytest -q -n 2

demo: $(STAMP)
	$(PY) -m optax_warmup sweep

bench: $(STAMP)
	$(PY) -m benchmarks

# The experiments of docs/evidence.md, one command each (about ten minutes each on two idle CPU cores); outputs in
# runs/evidence/NAME, figures copied to docs/img/evidence. SIZE=quick for a few minutes each.
SIZE ?= full
evidence-methods evidence-adaptive evidence-transfer: evidence-%: $(STAMP)
	$(PY) -m optax_warmup evidence $* --size $(SIZE) --figures docs/img/evidence

evidence: evidence-methods evidence-adaptive evidence-transfer

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
