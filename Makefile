# Two commands do all the set-up: `make demo` and `make test`.
# Without DATABASE_URL both use an embedded PostgreSQL (pgserver) with its data under .data/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)

.PHONY: install setup demo test clean-data

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

setup: install
	$(BIN)/python manage.py setup_platform

demo: setup
	$(BIN)/python manage.py rundemo

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean-data:
	rm -rf .data
