# forge-desktop: `make run` benchmarks the container engines of this machine,
# `make test` runs the test suite against real engines, a registry, Xvfb + trayer and a
# private D-Bus session bus. scripts/provision.sh installs what is missing (Debian packages
# when root, the .venv); scripts/services.sh starts and stops the daemons (state in .run/).

SHELL := /bin/bash

.PHONY: run test lint clean dist

# Leaves the engines running: the user wants them.
run:
	scripts/provision.sh run
	scripts/services.sh start docker podman
	.venv/bin/forge image prepare
	.venv/bin/forge benchmark startup

# Afterwards stops registry, X and D-Bus, and the engines only if this start started them
# (engines already up, e.g. from `make run`, are left alone); exits with pytest's status.
test:
	scripts/provision.sh test
	status=0; \
	scripts/services.sh start docker podman registry x dbus \
	  && { . .run/env.sh && .venv/bin/pytest -q tests; } || status=$$?; \
	scripts/services.sh stop --last-start registry x dbus; \
	exit $$status

lint:
	.venv/bin/ruff check forge_desktop shortcut_module scripts packaging tests benchmarks
	.venv/bin/mypy forge_desktop shortcut_module scripts/make_icons.py benchmarks

# The release artifacts in dist/: sdist and wheel (python -m build), the PyInstaller bundle
# dist/forge/ (forge, forge-shortcut), then the bundle's smoke commands. packaging/dist.sh.
dist:
	scripts/provision.sh run
	packaging/dist.sh dist

clean:
	scripts/services.sh stop
	rm -rf .run
