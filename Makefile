# `make demo` and `make test` set everything up on a fresh clone, then run.
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test serve

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

/usr/bin/chromium /usr/bin/prometheus &:
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium prometheus

demo: $(VENV)/.installed
	$(VENV)/bin/watchtower demo

test: $(VENV)/.installed /usr/bin/chromium /usr/bin/prometheus
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy watchtower detectors postmortems alerts
	$(VENV)/bin/pytest

serve: $(VENV)/.installed
	$(VENV)/bin/watchtower serve
