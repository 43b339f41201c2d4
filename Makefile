# The two commands a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install lint typecheck lock clean serve messages

demo: $(STAMP)
	$(BIN)/vafa demo

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy src
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)
	VAFA_TEST_DB=postgres $(BIN)/python -m pytest -n 2 --dist loadgroup -m db $(PYTEST_ARGS)

install: $(STAMP)

# Recreate the virtualenv's contents whenever the lock or the package metadata changes.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy src

# Re-resolve pinned dependencies (needs `uv`; newcomers never run this).
lock:
	uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements.lock

# Refresh the translation catalogues from the source, then compile them (needs gettext).
messages: $(STAMP)
	cd src/vafa && ../../$(BIN)/django-admin makemessages -l fa -l ar -l en --no-location --ignore "analytics/*" --settings vafa.settings
	cd src/vafa && ../../$(BIN)/django-admin compilemessages --settings vafa.settings

serve: $(STAMP)
	$(BIN)/vafa serve

clean:
	rm -rf $(VENV) var build *.egg-info src/*.egg-info
