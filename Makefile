# The two commands a newcomer needs: `make run` (install, start the dashboard) and `make test`
# (install everything, lint, run every test). Both work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Offline data beside the checkout, when there is some and MNIST_DATA_DIR is not set already.
ifeq ($(MNIST_DATA_DIR),)
ifneq ($(wildcard ../shared/data/mnist/.),)
export MNIST_DATA_DIR := $(abspath ../shared/data/mnist)
endif
endif

.PHONY: run share-check test install install-dev chromium postgresql lint bench

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

# `make run` listens on 127.0.0.1 only; `make run SHARE=1` on every interface, for a classroom, and only with a
# password hash configured (README: Classroom mode).
SHARED = $(filter-out 0 no false,$(SHARE))
run: $(if $(SHARED),share-check) install
	$(VENV)/bin/streamlit run dashboard.py $(if $(SHARED),--server.address 0.0.0.0)

share-check:
	@test -n "$$MNIST_STUDIO_PASSWORD_HASH" || grep -Eqs '^[[:space:]]*password_hash[[:space:]]*=' .streamlit/secrets.toml \
	  || { echo "make run SHARE=1 needs a password: run \`$(PY) -m mnist_core password\` and put its line in .streamlit/secrets.toml (README: Classroom mode)" >&2; exit 2; }

# Debian's Chromium for the browser tests, and an emoji font so screenshots show the page icons.
chromium:
	@test -x /usr/bin/chromium -a -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf || { \
	  SUDO=$$(command -v sudo >/dev/null && [ "$$(id -u)" != 0 ] && echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null; }

# Debian's PostgreSQL for the multi-machine sweep tests (the tests start and stop their own server).
postgresql:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
	  SUDO=$$(command -v sudo >/dev/null && [ "$$(id -u)" != 0 ] && echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq postgresql >/dev/null; }

lint: install-dev
	$(VENV)/bin/ruff check --output-format concise .
	$(VENV)/bin/ruff format --check .

test: install-dev chromium postgresql lint
	$(PY) -m pytest tests

bench: install-dev chromium
	$(PY) bench/run_all.py
