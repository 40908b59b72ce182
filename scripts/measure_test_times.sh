#!/usr/bin/env bash
# Times the README's test command cold and warm, as a fresh machine runs it, and writes
# docs/results/test-times.md.
#
#   bash scripts/measure_test_times.sh            # the default command, then with --runslow
#   bash scripts/measure_test_times.sh --quick    # the default command only
#   bash scripts/measure_test_times.sh --ci       # CI's command cold, then the default warm
#
# Cold: a fresh clone of HEAD (so fresh .venv and .venv-pymc: every package installed
# again, from pip's cache), an empty PyTensor compile directory and an empty Numba
# cache. Warm: the same command again in the same clone. Run it on an idle machine: the
# numbers are wall clock.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
quick=${1:-}
work=$(mktemp -d /tmp/symopt-test-times.XXXXXX)
out="$repo/docs/results/test-times.md"

run() {  # run LABEL ARGS...: one timed run of scripts/test.sh in the clone, its summary kept
  local label=$1 start status
  shift
  start=$(date +%s)
  (cd "$work/clone" && PYTENSOR_FLAGS="base_compiledir=$work/cache" \
     NUMBA_CACHE_DIR="$work/cache/numba" bash scripts/test.sh "$@") > "$work/$label.log" 2>&1
  status=$?
  local seconds=$(( $(date +%s) - start ))
  {
    echo "### $label: \`bash scripts/test.sh $*\`"
    echo
    echo "Wall clock $((seconds / 60)) min $((seconds % 60)) s, exit status $status. Stages:"
    echo
    sed -n '/^=== summary/,$p' "$work/$label.log" | tail -n +2 | sed 's/^  /- /'
    echo
    grep -E "^[0-9]+ (passed|failed)|^=+ .*(passed|failed)" "$work/$label.log" | sed 's/^=* *//; s/ *=*$//; s/^/    /'
    echo
  } >> "$work/report.md"
}

git clone -q "$repo" "$work/clone"
mkdir -p "$work/cache/numba"
{
  echo "# Test times"
  echo
  echo "Measured by \`bash scripts/measure_test_times.sh\` on $(date -u +%Y-%m-%d), commit"
  echo "$(git rev-parse --short HEAD), on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "($(grep -o -m1 -w avx512f /proc/cpuinfo >/dev/null && echo AVX-512 || echo AVX2)), $(free -g | awk '/Mem:/{print $2}') GiB."
  echo "Cold: a fresh clone (fresh venvs), empty PyTensor and Numba caches. Warm: the same"
  echo "command again."
  echo
} > "$work/report.md"
if [ "$quick" = "--ci" ]; then
  run cold-runslow --runslow
  run warm
  quick=--quick
else
  run cold
  run warm
fi
if [ "$quick" != "--quick" ]; then
  rm -rf "$work/cache" && mkdir -p "$work/cache/numba"
  rm -rf "$work/clone/.venv" "$work/clone/.venv-pymc"
  run cold-runslow --runslow
  run warm-runslow --runslow
fi
mkdir -p "$(dirname "$out")"
cp "$work/report.md" "$out"
echo "wrote $out (logs in $work)"
