#!/usr/bin/env bash
# `make run` and the fast subset of the suite on the other Pythons forge supports that this
# machine has: Debian's /usr/bin/python3, the newest Python found (pyenv's versions and
# python3.N on PATH) and the floor (requires-python in pyproject.toml), each where present,
# leaving out the interpreter the whole suite already ran on ($PYTHON, default python3).
# Each gets its own virtualenv (scripts/provision.sh: .venv-py<version>) and `make run` a
# fresh FORGE_HOME, as a new user would have. `make test` calls this after the whole suite;
# the services of `make test` must be up (.run/env.sh sourced).
#
#   scripts/test-pythons.sh          test each of them; non-zero if any failed
#   scripts/test-pythons.sh --list   print them, with why each was picked
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Fast: the unit tests (hostile tars included) and a real preparation failure on the real
# engines; `make run` is the real startup run.
FAST=(tests/unit
      tests/integration/test_startup.py::test_unwritable_bundle_leaves_runc_out_and_docker_measured)

FLOOR=$(sed -n 's/^requires-python = ">=\([0-9.]*\)".*/\1/p' pyproject.toml)
[ -n "$FLOOR" ] || { echo "test-pythons: error: no requires-python in pyproject.toml" >&2; exit 1; }

# "VERSION REALPATH" of a final-release interpreter, nothing for anything else.
describe() {
    "$1" -c 'import os, sys; v = sys.version_info
if v.releaselevel == "final": print("%d.%d.%d" % v[:3], os.path.realpath(sys.executable))' \
        2>/dev/null || true
}

candidates() {
    local c root=${PYENV_ROOT:-$HOME/.pyenv}
    echo /usr/bin/python3
    for c in "$root"/versions/*/bin/python3; do echo "$c"; done
    compgen -c python3. | grep -E '^python3\.[0-9]+$' | sort -u || true
}

at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

default=$(describe "${PYTHON:-python3}")
declare -A seen=()
[ -z "$default" ] || seen[${default#* }]=1
known=()  # "VERSION PATH", supported ones, one per interpreter
while read -r c; do
    [ -x "$c" ] || c=$(command -v "$c" 2>/dev/null) || continue
    d=$(describe "$c")
    [ -n "$d" ] || continue
    version=${d%% *} real=${d#* }
    if [ -z "${seen[$real]:-}" ] && at_least "$version" "$FLOOR"; then
        known+=("$version $c")
        seen[$real]=1
    fi
done < <(candidates)

picked=()  # "PATH WHY"
pick() {
    local p
    for p in "${picked[@]}"; do [ "${p%% *}" != "$1" ] || return 0; done
    picked+=("$1 $2")
}
for k in "${known[@]}"; do
    [ "${k#* }" != /usr/bin/python3 ] || pick /usr/bin/python3 "${k%% *}, the system's"
done
if [ ${#known[@]} -gt 0 ]; then
    newest=$(printf '%s\n' "${known[@]}" | sort -V | tail -n1)
    pick "${newest#* }" "${newest%% *}, the newest"
    floor=$(printf '%s\n' "${known[@]}" | grep "^$FLOOR\." | sort -V | head -n1 || true)
    [ -z "$floor" ] || pick "${floor#* }" "${floor%% *}, the floor"
fi

if [ "${1:-}" = --list ]; then
    for p in "${picked[@]}"; do echo "${p%% *}  (${p#* })"; done
    exit 0
fi

failed=()
for p in "${picked[@]}"; do
    py=${p%% *}
    # its own virtualenv: not the VENV `make test` exports for the default interpreter
    venv=$(env -u VENV PYTHON="$py" scripts/provision.sh venv-dir)
    echo "test-pythons: $py (${p#* }) in $venv"
    t0=$SECONDS
    home=$(mktemp -d)
    ok=1
    FORGE_HOME=$home make --no-print-directory run PYTHON="$py" VENV="$venv" || ok=0
    rm -rf "$home"
    t1=$SECONDS
    if [ $ok = 1 ]; then
        # `make run` installed '.[dev]'; the fast subset also draws icons (Pillow), and needs
        # none of the rest of '.[gui,dist]' (Qt, PyInstaller: most of a venv's install time)
        "$venv/bin/python" -m pip install -q "Pillow>=10" \
            && "$venv/bin/pytest" -q -p no:cacheprovider "${FAST[@]}" || ok=0
    fi
    verdict=$([ $ok = 1 ] && echo ok || echo FAILED)
    echo "test-pythons: $py: make run $((t1 - t0)) s, fast subset $((SECONDS - t1)) s: $verdict"
    [ $ok = 1 ] || failed+=("$py")
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "test-pythons: failed on ${failed[*]}" >&2
    exit 1
fi
