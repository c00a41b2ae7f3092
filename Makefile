# The two commands a newcomer needs:  make run   and   make test
PY := .venv/bin/python
PIP := .venv/bin/pip
SYSTEM_PACKAGES := chromium redis-server nginx podman runc debootstrap curl

.PHONY: run test setup setup-test system-packages bench

run: setup
	$(PY) -m app

test: setup-test
	$(PY) -m pytest

setup: .venv/.installed node_modules/.package-lock.json

.venv/.installed: requirements.txt
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q -r requirements.txt
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

setup-test: setup system-packages .venv/.installed-dev

.venv/.installed-dev: requirements-dev.txt .venv/.installed
	$(PIP) install -q -r requirements-dev.txt
	touch $@

# Debian packages: Chromium for the browser tests, Redis and nginx for the scale-out test,
# podman (with runc, debootstrap, curl) to build and run the Docker image.
system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

bench: setup-test
	$(PY) bench/engine.py
