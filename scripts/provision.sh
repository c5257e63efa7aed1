#!/usr/bin/env bash
# Provision this machine for forge-desktop.
#
#   scripts/provision.sh [run|test]      (default: run)
#   scripts/provision.sh venv-dir        print the virtualenv directory for $PYTHON
#
#   PYTHON=/usr/bin/python3 picks the interpreter (default: python3; 3.10 or newer). Each
#   interpreter gets its own virtualenv: .venv for the default python3, .venv-py<version>
#   for another (.venv-py3.11.2); VENV=DIR overrides.
#
#   run   Debian packages for the container engines, the podman fix for machines with a low
#         hard RLIMIT_NOFILE, and the virtualenv (.venv, see PYTHON above) with '.[dev]'.
#   test  The same plus what the test suite uses (registry, Xvfb, tray host, D-Bus, Qt
#         libraries...), and '.[dev,gui]'.
#
# Idempotent: installs only what is missing, and re-runs pip only when pyproject.toml is
# newer than $VENV/.installed-<set>. Quiet when there is nothing to do.
set -euo pipefail

SET=${1:-run}
case $SET in
    run | test | venv-dir) ;;
    *)
        echo "usage: $0 [run|test|venv-dir]" >&2
        exit 2
        ;;
esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

say() { printf 'provision: %s\n' "$*"; }
warn() { printf 'provision: WARNING: %s\n' "$*" >&2; }
die() {
    printf 'provision: error: %s\n' "$*" >&2
    exit 1
}

PYTHON=${PYTHON:-python3}
if [ -z "${VENV:-}" ]; then
    if [ "$PYTHON" = python3 ]; then
        VENV=.venv
    else
        py_version=$("$PYTHON" -c 'import platform; print(platform.python_version())' \
            2>/dev/null) || die "cannot run PYTHON=$PYTHON; point it at a Python 3.10 or newer"
        VENV=.venv-py$py_version
    fi
fi
if [ "$SET" = venv-dir ]; then
    echo "$VENV"
    exit 0
fi

# containerd (and its ctr) also comes with docker.io; named because the cri runtime starts
# a private one with the CRI plugin (docs/ENGINES.md); grpcio and protobuf come from pyproject
RUN_PKGS=(podman runc crun docker.io containerd busybox-static curl)
TEST_PKGS=(
    "${RUN_PKGS[@]}"
    docker-registry hyperfine
    xvfb trayer xdotool x11-utils imagemagick
    dbus desktop-file-utils appstream chromium
    libegl1 libgl1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0
    libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0
    libxcb-xkb1 libfontconfig1 libdbus-1-3 fonts-dejavu-core dunst
    # rootless podman for the non-root user tests/integration/test_nonroot.py creates:
    # newuidmap/newgidmap (podman only recommends them; useradd and setpriv are essential)
    uidmap
    # sshd test hosts on loopback (tests/fleet): the server and the client forge runs
    openssh-server openssh-client
    libglib2.0-bin # gio: tests/faults/test_hostile.py opens files the way a desktop does
)
if [ "$SET" = test ]; then
    PKGS=("${TEST_PKGS[@]}")
else
    PKGS=("${RUN_PKGS[@]}")
fi

IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1

# ---------------------------------------------------------------- Debian packages

pkg_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

pkg_installable() {
    local cand
    cand=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2; exit }')
    [ -n "$cand" ] && [ "$cand" != "(none)" ]
}

APT_LOG=${TMPDIR:-/tmp}/forge-provision-apt.log

apt_quiet() {
    # Runs apt-get with its output in $APT_LOG; shows the end of it when apt-get fails.
    if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 "$@" \
        >>"$APT_LOG" 2>&1; then
        tail -n 15 "$APT_LOG" | sed 's/^/    /' >&2
        return 1
    fi
}

install_debian_packages() {
    local missing=() p
    for p in "${PKGS[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    # python3 -m venv needs ensurepip, which Debian's python ships in python3-venv.
    if [ ! -x "$VENV/bin/python" ] && ! "$PYTHON" -c 'import ensurepip' >/dev/null 2>&1; then
        pkg_installed python3-venv || missing+=(python3-venv)
    fi
    [ ${#missing[@]} -eq 0 ] && return 0

    : >"$APT_LOG"
    say "missing Debian packages (set '$SET'): ${missing[*]}; installing with apt-get (log: $APT_LOG)"

    # Keep package scripts from starting system daemons (dockerd, docker-registry, dbus):
    # services.sh starts what the project needs, with the options it needs.
    local policy_rc=/usr/sbin/policy-rc.d policy_added=0
    if [ ! -e "$policy_rc" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy_rc"
        chmod 755 "$policy_rc"
        policy_added=1
        # shellcheck disable=SC2064 # expand now: the path is fixed
        trap "rm -f '$policy_rc'" EXIT
    fi

    apt_quiet update || warn "apt-get update failed; trying with the package lists already present"

    # Every package here is needed (by forge or by the suite, which fails rather than skips
    # when one is missing): one that cannot be installed stops provisioning, named.
    for p in "${missing[@]}"; do
        pkg_installable "$p" \
            || die "Debian package '$p' is not installable here (no candidate in the apt sources); set '$SET' needs it"
    done

    if ! apt_quiet install -y -q "${missing[@]}"; then
        warn "installing all at once failed; installing one package at a time"
        for p in "${missing[@]}"; do
            apt_quiet install -y -q "$p" \
                || die "could not install Debian package '$p' (log: $APT_LOG); set '$SET' needs it"
        done
    fi
    local done_pkgs=()
    for p in "${missing[@]}"; do
        pkg_installed "$p" || die "Debian package '$p' is still not installed after apt-get install (log: $APT_LOG)"
        done_pkgs+=("$p")
    done

    if [ "$policy_added" = 1 ]; then
        rm -f "$policy_rc"
        trap - EXIT
    fi
    [ ${#done_pkgs[@]} -eq 0 ] || say "installed Debian packages: ${done_pkgs[*]}"
}

report_missing_commands() {
    local missing=() c
    for c in docker podman runc crun busybox; do
        command -v "$c" >/dev/null 2>&1 || missing+=("$c")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        warn "missing commands: ${missing[*]} (install them as root, e.g. on Debian: scripts/provision.sh $SET)"
    fi
}

if [ "$IS_ROOT" = 1 ] && command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then
    install_debian_packages
else
    if [ "$IS_ROOT" = 0 ]; then
        say "not root: not installing system packages"
    else
        say "no apt-get: not installing system packages"
    fi
fi
report_missing_commands

# ---------------------------------------------------------------- podman on a low RLIMIT_NOFILE
# Podman's default container ulimit is nofile=1048576; raising a limit above the hard limit
# needs CAP_SYS_RESOURCE, which root lacks on these VMs, so every `podman run` fails with
# "setrlimit RLIMIT_NOFILE: Operation not permitted". crun does not work on their cgroup v1
# hybrid setup either, so use runc when it exists.

PODMAN_DROPIN_DIR=/etc/containers/containers.conf.d
PODMAN_DROPIN=$PODMAN_DROPIN_DIR/50-forge.conf

hard_nofile=$(ulimit -Hn)
if [ "$hard_nofile" != unlimited ] && [ "$hard_nofile" -lt 1048576 ] \
    && command -v podman >/dev/null 2>&1 \
    && ! compgen -G "$PODMAN_DROPIN_DIR/*forge*" >/dev/null; then
    if [ "$IS_ROOT" = 1 ]; then
        mkdir -p "$PODMAN_DROPIN_DIR"
        {
            echo '# Written by forge-desktop scripts/provision.sh: the hard RLIMIT_NOFILE here is'
            echo "# $hard_nofile, below podman's default container nofile=1048576."
            echo '[containers]'
            echo 'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]'
            if command -v runc >/dev/null 2>&1; then
                echo '[engine]'
                echo 'runtime = "runc"'
            fi
        } >"$PODMAN_DROPIN"
        say "wrote $PODMAN_DROPIN: hard RLIMIT_NOFILE is $hard_nofile (< 1048576, podman's default), so containers get nofile=1024$(command -v runc >/dev/null 2>&1 && echo ' and runtime runc')"
    else
        warn "hard RLIMIT_NOFILE is $hard_nofile (< 1048576): podman containers will fail; as root run scripts/provision.sh to write $PODMAN_DROPIN"
    fi
fi

# ---------------------------------------------------------------- virtualenv

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null \
    || die "forge needs Python 3.10 or newer; PYTHON=$PYTHON is $("$PYTHON" -V 2>&1)"
if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtualenv $VENV ($PYTHON -m venv)"
    if ! "$PYTHON" -m venv "$VENV"; then
        rm -rf "$VENV" # half made (no pip): the next run starts over
        die "could not create the virtualenv $VENV with $PYTHON (on Debian: apt-get install python3-venv)"
    fi
fi

if [ "$SET" = test ]; then
    EXTRAS=dev,gui,dist
else
    EXTRAS=dev
fi
STAMP=$VENV/.installed-$SET

up_to_date() { [ -e "$1" ] && ! [ pyproject.toml -nt "$1" ]; }

if [ ! -f pyproject.toml ]; then
    warn "no pyproject.toml yet: skipping pip install"
elif up_to_date "$STAMP" || { [ "$SET" = run ] && up_to_date "$VENV/.installed-test"; }; then
    : # '.[dev,gui,dist]' (test) includes everything 'run' needs
else
    say "pip install -e '.[$EXTRAS]' into $VENV"
    "$VENV/bin/python" -m pip install -q -e ".[$EXTRAS]" \
        || die "pip could not install '.[$EXTRAS]' into $VENV with $PYTHON (pip's output is above)"
    touch "$STAMP"
fi
