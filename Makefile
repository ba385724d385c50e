# The two set-up commands: `make run` and `make test`. Both install what they need:
# `make run` only the demo (the package with its sandbox and client extras, JupyterLab),
# `make test` everything else too. Each has its own stamp, so `make test` after
# `make run` still installs the test extra.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test bench lint system-deps hub-deps browser-deps sandbox clean

# uv (from PyPI, into the venv) installs the environment in seconds where pip takes about
# a minute; where uv cannot be had, pip does it (editable installs need pip >= 21.3).
$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q uv || $(PY) -m pip install -q 'pip>=21.3'

define install
	if [ -x $(VENV)/bin/uv ]; then $(VENV)/bin/uv pip install -q --python $(PY) -e '$(1)'; \
	else $(PY) -m pip install -q -e '$(1)'; fi
endef

$(DEMO_STAMP): pyproject.toml | $(PY)
	$(call install,.[demo])
	touch $@

# the test extra includes the demo one, so it stamps both
$(TEST_STAMP): pyproject.toml | $(PY)
	$(call install,.[test])
	touch $@ $(DEMO_STAMP)

system-deps:
	bash scripts/system-deps.sh

hub-deps: $(TEST_STAMP)
	bash scripts/hub-deps.sh $(VENV)

browser-deps:
	bash scripts/browser-deps.sh

test: $(TEST_STAMP) system-deps hub-deps browser-deps
	$(PY) -m ruff check weaviate_auth_widget tests bench
	$(PY) -m mypy
	$(PY) -m pytest -p no:cacheprovider -ra

bench: $(TEST_STAMP)
	@for f in bench/bench_*.py; do $(PY) $$f || exit 1; done

lint: $(TEST_STAMP)
	$(PY) -m ruff check weaviate_auth_widget tests bench
	$(PY) -m ruff format --check weaviate_auth_widget tests bench
	$(PY) -m mypy

sandbox: $(DEMO_STAMP)
	$(PY) -m weaviate_auth_widget.sandbox

run: $(DEMO_STAMP)
	bash scripts/run.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
