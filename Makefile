# forge-desktop: `make run` benchmarks the container engines of this machine,
# `make test` runs the test suite against real engines, a registry, Xvfb + trayer and a
# private D-Bus session bus. scripts/provision.sh installs what is missing (Debian packages
# when root, the virtualenv); scripts/services.sh starts and stops the daemons (state in .run/).
#
# PYTHON=/usr/bin/python3 make run: another interpreter (3.10 or newer), in its own
# virtualenv (.venv-py<version>; the default python3 uses .venv).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= $(shell PYTHON='$(PYTHON)' scripts/provision.sh venv-dir)
export PYTHON VENV

.PHONY: run test test-pythons lint clean dist

# Leaves the engines running: the user wants them. The startup benchmark prepares the image
# itself, and a runtime it cannot prepare is left out with its reason, not the whole run.
run:
	scripts/provision.sh run
	scripts/services.sh start docker podman
	$(VENV)/bin/forge benchmark startup

# The whole suite on $(PYTHON), then `make run` and the fast subset on the machine's other
# supported Pythons (test-pythons). Afterwards stops registry, X and D-Bus, and the engines
# only if this start started them (engines already up, e.g. from `make run`, are left alone);
# exits non-zero if anything failed.
test:
	scripts/provision.sh test
	status=0; \
	scripts/services.sh start docker podman registry x dbus \
	  && { . .run/env.sh && $(VENV)/bin/pytest -q tests && scripts/test-pythons.sh; } \
	  || status=$$?; \
	scripts/services.sh stop --last-start registry x dbus; \
	exit $$status

# `make run` and the fast subset (tests/unit and a real startup run) on Debian's
# /usr/bin/python3, the newest Python and the floor (3.10), each where present; the services
# of `make test` must be up (scripts/test-pythons.sh).
test-pythons:
	. .run/env.sh && scripts/test-pythons.sh

lint:
	$(VENV)/bin/ruff check forge_desktop shortcut_module scripts packaging tests benchmarks
	$(VENV)/bin/mypy forge_desktop shortcut_module scripts/make_icons.py benchmarks tests

# The release artifacts in dist/: sdist and wheel (python -m build), the PyInstaller bundle
# dist/forge/ (forge, forge-shortcut), then the bundle's smoke commands. packaging/dist.sh.
dist:
	scripts/provision.sh run
	PYTHON=$(VENV)/bin/python packaging/dist.sh dist

clean:
	scripts/services.sh stop
	rm -rf .run
