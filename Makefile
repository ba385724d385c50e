# The two set-up commands: `make run` and `make test`. Both install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench lint system-deps hub-deps sandbox clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

system-deps:
	bash scripts/system-deps.sh

hub-deps: $(STAMP)
	bash scripts/hub-deps.sh $(VENV)

test: $(STAMP) system-deps hub-deps
	$(PY) -m ruff check weaviate_auth_widget tests bench
	$(PY) -m mypy
	$(PY) -m pytest -p no:cacheprovider -ra

bench: $(STAMP)
	@for f in bench/bench_*.py; do $(PY) $$f || exit 1; done

lint: $(STAMP)
	$(PY) -m ruff check weaviate_auth_widget tests bench
	$(PY) -m ruff format --check weaviate_auth_widget tests bench
	$(PY) -m mypy

sandbox: $(STAMP)
	$(PY) -m weaviate_auth_widget.sandbox

run: $(STAMP)
	bash scripts/run.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
