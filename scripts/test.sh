#!/usr/bin/env bash
# Runs symopt's whole test suite on a fresh machine, installing everything it needs.
#
# Stages (each runs even when an earlier one failed; a summary at the end; the exit
# status is non-zero if any stage failed):
#   1. pytensor3 : .venv      symopt with PyTensor 3.x, the test extras and the peers
#                             (torch, jax, optax); every test but the PyMC ones, on all
#                             cores (pytest-xdist).
#   2. pymc      : .venv-pymc symopt with PyMC 5 (which pins PyTensor 2.38): the core
#                             tests again on PyTensor 2.38, and the PyMC tests.
#   3. checks    : .venv      ruff over the repository, mypy over the library and
#                             tests/typing (pyproject's [tool.mypy]), and the documentation
#                             built with every Sphinx warning an error (scripts/docs.sh).
#
# Extra arguments go to stage 1's pytest, e.g. `bash scripts/test.sh --runslow` (adds the
# image problems' recorded curves) or `bash scripts/test.sh -x -k adam`.
# TEST_WORKERS sets the number of pytest-xdist workers (default: one per core, nproc).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/_env.sh

WORKERS=${TEST_WORKERS:-$(nproc 2>/dev/null || echo 2)}
XDIST=(-n "$WORKERS" --dist loadgroup)
summary=()
failed=0

stage() {  # stage NAME COMMAND...: run it, time it, remember how it went
  local name=$1 start=$SECONDS status
  shift
  echo "=== stage $name" >&2
  "$@"
  status=$?
  if [ "$status" -eq 0 ]; then
    summary+=("$name: passed in $((SECONDS - start)) s")
  else
    summary+=("$name: FAILED (exit $status) after $((SECONDS - start)) s")
    failed=1
  fi
}

venv() {  # venv DIR EXTRAS [REQUIREMENT...]: create DIR if missing, install symopt[EXTRAS]
  if [ ! -x "$1/bin/python" ]; then "$PY" -m venv "$1" || return; fi
  # (pip's notes about this machine's local package indexes are not worth showing)
  "$1/bin/pip" install -q -e ".[$2]" "${@:3}" 2> >(grep -v "is ignored: it is neither" >&2)
}

# The peers extra asks for torch>=2.1; the tests pin the CPU wheel they were checked with
# (a bare `pip install torch` on Linux pulls the multi-gigabyte CUDA build).
TORCH=${TEST_TORCH:-torch==2.13.0}

pytensor3() {
  venv .venv test,peers,docs "$TORCH" && .venv/bin/python -m pytest -q "${XDIST[@]}" "$@"
}

pymc() {
  venv .venv-pymc pymc && .venv-pymc/bin/python -m pytest -q "${XDIST[@]}" tests/core tests/with_pymc
}

checks() {
  venv .venv test,peers,docs "$TORCH" && .venv/bin/ruff check . && .venv/bin/mypy \
    && DOCS_PYTHON=.venv/bin/python bash scripts/docs.sh
}

stage pytensor3 pytensor3 "$@"
stage pymc pymc
stage checks checks

echo >&2
echo "=== summary" >&2
printf '  %s\n' "${summary[@]}" >&2
exit "$failed"
