# Sourced by scripts/test.sh and scripts/main.sh: the environment both need.
#
# PyTensor installed from pip finds no BLAS (blas__ldflags is empty): its C backend then
# falls back to slow loops, and mode="C" cannot compile a matrix-vector product at all.
# Debian's OpenBLAS fixes that; install it when we can (root with apt-get), else warn.
if ! ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so '; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's OpenBLAS (libopenblas-dev) for PyTensor's C backend" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-dev) \
      >/dev/null 2>&1 || echo "warning: could not install libopenblas-dev" >&2
  fi
fi
if ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so '; then
  export PYTENSOR_FLAGS="blas__ldflags=-lopenblas${PYTENSOR_FLAGS:+,$PYTENSOR_FLAGS}"
else
  echo "warning: no OpenBLAS found; PyTensor's C backend will be slow and mode='C' may fail" >&2
fi
# Two processes compiling into one cold cache take turns at its lock, one module each, and
# the one that keeps losing gave up after PyTensor's 120 s (compile__timeout) in a cold
# run on 2 cores (a Timeout in a property test). The lock is an OS file lock, released
# when its holder dies, so a long wait cannot outlive a crashed compile.
export PYTENSOR_FLAGS="compile__timeout=1800${PYTENSOR_FLAGS:+,$PYTENSOR_FLAGS}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
PY=${PYTHON:-python3}
