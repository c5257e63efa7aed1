#!/usr/bin/env bash
# Build the release artifacts and smoke-test the bundle (`make dist` runs this).
#
#   packaging/dist.sh [OUTDIR]          (default: dist)
#
#   OUTDIR/forge_desktop-<version>.tar.gz       sdist          (python -m build)
#   OUTDIR/forge_desktop-<version>-py3-none-any.whl   wheel, built from the sdist
#   OUTDIR/forge/{forge,forge-shortcut,_internal/}   PyInstaller one-folder bundle
#
# Uses .venv (PYTHON overrides); installs the 'dist' extra (build, pyinstaller) when missing.
# The build backend comes from the venv (--no-isolation): no network needed. The smoke test
# runs the bundle's `forge --version`, `forge benchmark resources` and `forge-shortcut list`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=$(realpath -m "${1:-dist}")
WORK=$(realpath -m "${FORGE_DIST_WORK:-build/dist}")
PY=${PYTHON:-.venv/bin/python}

say() { printf 'dist: %s\n' "$*"; }

if ! "$PY" -c 'import build, PyInstaller' 2>/dev/null; then
    say "installing the dist extra (build, pyinstaller) into $PY"
    "$PY" -m pip install -q -e ".[dist]"
fi

rm -rf "$OUT/forge" "$WORK"
mkdir -p "$OUT" "$WORK"
start=$SECONDS
say "sdist and wheel -> $OUT"
"$PY" -m build --no-isolation --outdir "$OUT" . >"$WORK/build.log" 2>&1 \
    || { tail -n 30 "$WORK/build.log" >&2; exit 1; }
grep -E '^Successfully built' "$WORK/build.log" | sed 's/^/dist: /'

say "bundle -> $OUT/forge (log: $WORK/pyinstaller.log)"
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN --distpath "$OUT" \
    --workpath "$WORK/pyinstaller" packaging/forge.spec >"$WORK/pyinstaller.log" 2>&1 \
    || { tail -n 30 "$WORK/pyinstaller.log" >&2; exit 1; }

say "smoke test"
"$OUT/forge/forge" --version
"$OUT/forge/forge" benchmark resources >"$WORK/resources.txt"
"$OUT/forge/forge-shortcut" list >/dev/null
say "ok in $((SECONDS - start)) s: $(du -sh "$OUT/forge" | cut -f1) bundle"
