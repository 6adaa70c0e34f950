# The two commands of the README: `make test` and `make demo`. `make test` runs ruff, mypy, the tests and the
# docstring examples. `make docs` builds the documentation site; `make docs-check` builds it as CI does.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo lint typecheck bench thorough golden dist-check test-min clean evidence evidence-methods \
	evidence-adaptive evidence-transfer docs docs-check docs-shots

$(STAMP): pyproject.toml optax_warmup/_version.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# The docs extra on top of the dev one, in the same venv.
DOCS_STAMP := $(VENV)/.installed-docs
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[dev,docs]'
	touch $(DOCS_STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check optax_warmup tests benchmarks tools docs/conf.py docs/_ext docs/examples

# mypy over the package (its settings are in pyproject.toml; the sweep package is excluded for now).
typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The tests, the docstring examples of the package (pyproject.toml's testpaths), after lint and typecheck.
test: $(STAMP) lint typecheck
	$(PY) -m pytest -q -n 2

demo: $(STAMP)
	$(PY) -m optax_warmup sweep

# The documentation site (docs/: Sphinx + MyST-NB) into docs/_build/html; rebuilds only the pages that changed.
# The API reference comes from the docstrings, the gallery's figures are drawn by the build (docs/_generated), and
# the tutorial notebook is executed (about 40 s) whenever its page is rebuilt.
docs: $(DOCS_STAMP)
	$(PY) -m sphinx -b html docs docs/_build/html

# The whole site from scratch with every warning an error (CI runs this), then the checks of the built pages
# (tools/check_docs.py): no code line past 88 columns, the tutorial's figures, a figure and a formula in every
# schedule entry, nothing loaded from the network, Optax's names linked. About 2 minutes on 2 cores.
docs-check: $(DOCS_STAMP)
	rm -rf docs/_build/check
	$(PY) -m sphinx -b html -E -W --keep-going docs docs/_build/check
	$(PY) tools/check_docs.py docs/_build/check

# Screenshots at 1280 px of the front page, the gallery, the tutorial and two more pages of the site `make docs`
# built, into docs/_build/shots (never committed): look before committing a change to the docs. Needs a Chromium
# (apt-get install chromium); without one it says so and does nothing.
docs-shots:
	$(PY) tools/docs_screenshots.py docs/_build/html docs/_build/shots

bench: $(STAMP)
	$(PY) -m benchmarks

# The experiments of docs/evidence.md, one command each (on two CPU cores: methods 47 min, adaptive 12 min,
# transfer 12 min); outputs in runs/evidence/NAME, figures copied to docs/img/evidence. SIZE=quick for minutes.
SIZE ?= full
evidence-methods evidence-adaptive evidence-transfer: evidence-%: $(STAMP)
	$(PY) -m optax_warmup evidence $* --size $(SIZE) --figures docs/img/evidence

evidence: evidence-methods evidence-adaptive evidence-transfer

# Thousands of hypothesis examples per property instead of the CI profile's hundreds.
thorough: $(STAMP)
	HYPOTHESIS_PROFILE=thorough $(PY) -m pytest -q -n 2 tests/test_properties.py

# The package as users get it: build the sdist and the wheel, twine check, install the wheel into a fresh venv
# (core dependencies only, then each extra) and run the CLI there (tools/check_dist.py; about 45 s with pip's cache).
dist-check: $(STAMP)
	$(PY) tools/check_dist.py

# The test suite on the lowest versions pyproject.toml allows (.ci/min-constraints.txt), on the oldest Python we
# support, 3.11 (numpy 2.0.0 has no wheels for 3.13): MIN_PYTHON=python3.11 if python3 is another version.
MIN_VENV   := .venv-min
MIN_PYTHON ?= $(PYTHON)
$(MIN_VENV)/.installed: pyproject.toml optax_warmup/_version.py .ci/min-constraints.txt
	$(MIN_PYTHON) -c 'import sys; v = sys.version_info[:2]; assert v == (3, 11), f"test-min runs on Python 3.11, $(MIN_PYTHON) is {v}: make test-min MIN_PYTHON=python3.11"'
	rm -rf $(MIN_VENV)
	$(MIN_PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install -q --upgrade pip
	$(MIN_VENV)/bin/python -m pip install -q -c .ci/min-constraints.txt -e '.[dev]'
	touch $@

test-min: $(MIN_VENV)/.installed
	$(MIN_VENV)/bin/python -m pip list 2>/dev/null | grep -E -i '^(jax|jaxlib|optax|numpy|flax|matplotlib|tqdm|orbax-checkpoint|scikit-learn) '
	$(MIN_VENV)/bin/python -m pytest -q -n 2

# Regenerate the peers' golden tables in a throwaway environment (needs the registries; about 4 minutes).
golden:
	$(PYTHON) -m venv /tmp/optax_warmup_peers
	/tmp/optax_warmup_peers/bin/pip install -q jax '.[peers]'
	KERAS_BACKEND=jax /tmp/optax_warmup_peers/bin/python tools/make_golden.py

clean:
	rm -rf $(VENV) $(MIN_VENV) build dist *.egg-info .pytest_cache docs/_build docs/_generated
