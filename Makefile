# `make run` starts the explorer, `make test` runs every check, `make serve`
# starts a lecture hall (several processes behind HAProxy); each creates .venv
# and installs the pinned requirements first when they have changed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# make serve: the public port, and how many processes (one per core if unset).
PORT ?= 8501
REPLICAS ?=

.PHONY: run test lint browser haproxy serve clean

$(VENV)/.app-installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.app-installed $@

run: $(VENV)/.app-installed
	$(PY) -m streamlit run app.py

lint: $(VENV)/.dev-installed
	$(PY) -m ruff check .

# The browser tests drive Debian's chromium; install it where we may (CI runs
# as root). Without it they are skipped, and say so.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed: browser tests will be skipped"; \
	  else echo "chromium missing (apt-get install chromium): browser tests will be skipped"; fi; }

# `make serve` and the lecture-hall test need Debian's HAProxy; installed the
# way chromium is.
haproxy:
	@command -v haproxy >/dev/null 2>&1 || test -x /usr/sbin/haproxy || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq haproxy >/dev/null) \
	      || echo "haproxy could not be installed: the lecture-hall test will be skipped"; \
	  else echo "haproxy missing (apt-get install haproxy): the lecture-hall test will be skipped"; fi; }

test: lint browser haproxy
	$(PY) -m pytest

# REPLICAS processes (default: one per core) behind HAProxy on PORT; Ctrl-C
# stops them all. See README.md, "Serving a class".
serve: $(VENV)/.app-installed haproxy
	$(PY) deploy/serve.py --port $(PORT) $(if $(REPLICAS),--replicas $(REPLICAS))

clean:
	rm -rf $(VENV)
