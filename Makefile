# `make demo` and `make test` set everything up on a fresh clone, then run.
VENV ?= .venv
ALIBI_VENV ?= .venv-alibi
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test serve

# `make test` runs the suite on two workers (pytest-xdist; tests that share a server or a port stay on one worker
# by their xdist_group), each with its own PostgreSQL database (<name>_gwN; tests/conftest.py): about 11 min of
# pytest here instead of 25 serial. `make test PYTEST_ARGS=` runs it serially.
PYTEST_ARGS ?= -n 2 --dist loadgroup

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,spark]'
	touch $@

# alibi-detect (BSL 1.1, an optional extra) caps numpy below 2: its tests get a venv of their own, with the CPU
# torch that lies on this machine's disk (for MMD). --no-compile: byte-compiling its deps took minutes.
$(ALIBI_VENV)/.installed: pyproject.toml
	python3 -m venv $(ALIBI_VENV)
	$(ALIBI_VENV)/bin/python -m pip install -q --upgrade pip
	$(ALIBI_VENV)/bin/python -m pip install -q --no-compile -e '.[test,alibi]' torch==2.13.0
	touch $@

/usr/bin/chromium /usr/bin/prometheus /usr/bin/prometheus-alertmanager &:
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium prometheus prometheus-alertmanager

# Spark (the lake tests, `watchtower profile`) needs a Java runtime: Debian's default, 17 on bookworm.
/usr/bin/java:
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q default-jre-headless

demo: $(VENV)/.installed
	$(VENV)/bin/watchtower demo

test: $(VENV)/.installed $(ALIBI_VENV)/.installed /usr/bin/chromium /usr/bin/prometheus /usr/bin/prometheus-alertmanager \
      /usr/bin/java
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy watchtower detectors postmortems alerts
	$(VENV)/bin/pytest $(PYTEST_ARGS)
	$(ALIBI_VENV)/bin/pytest -m alibi tests/detectors/test_alibi_drift.py

serve: $(VENV)/.installed
	$(VENV)/bin/watchtower serve
