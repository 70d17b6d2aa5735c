# The two commands of the README: `make demo` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Tests are independent: one xdist worker per core (`make test PYTEST_ARGS=` runs them in one).
PYTEST_ARGS ?= -n auto

.PHONY: demo test compose-test lint format bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	@# python-ldap (the LDAP sign-in and its tests) has no wheels: it builds against these headers.
	@[ -e /usr/include/ldap.h ] && [ -e /usr/include/sasl/sasl.h ] || { \
	  echo "python-ldap needs its build headers: apt-get install -y libldap2-dev libsasl2-dev"; \
	  exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	@touch $@

## Start a real local registry with sample images and serve the UI on http://127.0.0.1:8000
## (other addresses: make demo DEMO_REGISTRY_PORT=5001 DEMO_BIND=127.0.0.1:8001)
demo: $(STAMP)
	$(PY) -m registryui.devtools.demo

## Run the whole suite (against SQLite, or DATABASE_URL when set)
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## Build the image and run docker-compose.yml for real with podman (needs root, podman,
## podman-compose, debootstrap, caddy; CI runs it after the suite). deploy/ci/compose_test.py
compose-test: $(STAMP)
	$(PY) deploy/ci/compose_test.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## Benchmarks (not tests): results and how to read them in docs/BENCHMARKS.md
bench: $(STAMP)
	@set -e; for script in bench/*.py; do echo "== $$script"; $(PY) $$script; done

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache
