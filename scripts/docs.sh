#!/usr/bin/env bash
# The documentation: Sphinx (numpydoc, autodoc, autosummary) into docs/_build/html, with
# every warning an error. Run from anywhere: `bash scripts/docs.sh`; extra arguments go to
# sphinx-build (e.g. -E to rebuild every page).
#
# Python: $DOCS_PYTHON when set (an environment that has symopt's docs extra), else
# .venv, created if missing and given symopt with the docs extra. MathJax: Debian's
# libjs-mathjax, installed when we can (root with apt-get), so the pages' equations
# render without a network; without it the pages load MathJax from its CDN.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ ! -f /usr/share/javascript/mathjax/MathJax.js ] && [ "$(id -u)" = 0 ] \
    && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's MathJax (libjs-mathjax) for offline equations" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libjs-mathjax) \
    >/dev/null 2>&1 || echo "warning: could not install libjs-mathjax; MathJax from its CDN" >&2
fi

if [ -n "${DOCS_PYTHON:-}" ]; then
  PY=$DOCS_PYTHON
else
  if [ ! -x .venv/bin/python ]; then "${PYTHON:-python3}" -m venv .venv; fi
  .venv/bin/pip install -q -e ".[docs]" 2> >(grep -v "is ignored: it is neither" >&2)
  PY=.venv/bin/python
fi

# -W: warnings are errors; --keep-going: report all of them before failing; -n: nitpicky
# off (references to outside projects are plain text offline); -j 1: two shared cores.
exec "$PY" -m sphinx -b html -W --keep-going -q docs docs/_build/html "$@"
