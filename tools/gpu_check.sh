#!/bin/bash
# One GPU check for an H200 machine (its own PyTorch 2.11 + CUDA 13, no package registry):
# build mamba-ssm for sm_90, run the GPU tests, run the GPU benchmark, write everything under $OUT.
#
#   prepare  (on the development machine, repo root, needs the package registry; ~1 minute):
#            fills .gpu-cache/ (ignored by git, ~7 MB, must travel with the repo copy: name it in the
#            device run's `carry`):
#              .gpu-cache/mamba_ssm-<ver>.tar.gz   mamba-ssm sdist      (by ../shared/tools/mamba_ssm_gpu.sh)
#              .gpu-cache/mamba_ssm_gpu.sh         a copy of that build script (../shared does not travel)
#              .gpu-cache/wheels/*.whl             nbdev + execnb + IPython (absent on the GPU image)
#   run      (on the GPU machine, repo root; OUT must be set; ~10 minutes in all):
#              1. environment      (30 s)   -> $OUT/env.txt
#              2. mamba-ssm build  (240 s)  -> $OUT/mamba_build.log
#              3. GPU tests        (170 s)  -> $OUT/tests.log    run_tests.py --flags "slow gpu"
#              4. GPU benchmark    (300 s)  -> $OUT/bench_gpu.log, $OUT/bench_gpu/results.{json,csv}, .png
#            Each stage has its own time limit (STAGE_BUILD_S, STAGE_TESTS_S, STAGE_BENCH_S), cut to what
#            is left of TOTAL_S (570 s) so the whole run ends inside a 600 s device call; a failed stage
#            is recorded in $OUT/summary.txt and the next stage still runs. The benchmark saves its
#            results after every section, so a cut-off run still returns the sections it finished.
#   check    (anywhere): the non-GPU parts: argument handling, the cache contents, the stage runner.
#
# Device call (one command, carry [".gpu-cache"], timeout_s 600), after `prepare` in the checkout that
# the call sends:
#   bash tools/gpu_check.sh run
# Then copy $OUT/bench_gpu/* to reports/bench_gpu_h200/ and read $OUT/summary.txt and $OUT/tests.log.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${GPU_CACHE:-$ROOT/.gpu-cache}
SITE=${GPU_SITE:-/tmp/site}   # where the carried wheels are installed
# the shared build script: beside the checkout (../shared), or beside a worktree's parent (../../shared)
BUILD_SCRIPT_SRC=${MAMBA_BUILD_SCRIPT:-}
for cand in "$ROOT/../shared/tools/mamba_ssm_gpu.sh" "$ROOT/../../shared/tools/mamba_ssm_gpu.sh"; do
  [ -z "$BUILD_SCRIPT_SRC" ] && [ -f "$cand" ] && BUILD_SCRIPT_SRC=$cand
done
TESTS_ONLY=${TESTS_ONLY:-03a_ops|04a_ssm|05_models}
# versions as in settings.ini's dev_requirements and their dependencies on the development machine
WHEELS="nbdev==2.4.14 execnb==0.1.18 fastcore==1.12.4 fastgit==0.0.6 ghapi==1.0.11 asttokens==3.0.1
astunparse==1.6.3 watchdog==7.1.0 ipython==8.12.3 backcall==0.2.0 decorator==5.2.1 jedi==0.20.0
parso==0.8.7 matplotlib-inline==0.2.2 pexpect==4.8.0 ptyprocess==0.7.0 pickleshare==0.7.5
prompt_toolkit==3.0.52 wcwidth==0.7.0 stack-data==0.6.3 executing==2.2.1 pure_eval==0.2.3
traitlets==5.15.0"

prepare() {
  mkdir -p "$CACHE/wheels"
  [ -f "$BUILD_SCRIPT_SRC" ] || { echo "no mamba_ssm_gpu.sh found: set MAMBA_BUILD_SCRIPT" >&2; exit 1; }
  cp "$BUILD_SCRIPT_SRC" "$CACHE/mamba_ssm_gpu.sh"
  (cd "$ROOT" && GPU_CACHE="$CACHE" bash "$CACHE/mamba_ssm_gpu.sh" prepare) || exit 1
  # shellcheck disable=SC2086
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$CACHE/wheels" $WHEELS || exit 1
  du -sh "$CACHE"; ls "$CACHE" "$CACHE/wheels"
}

# stage NAME SECONDS LOG CMD...: run CMD under a time limit, log to LOG, record the outcome in summary.txt
stage() {
  local name=$1 limit=$2 log=$3; shift 3
  local start=$SECONDS
  local left=$(( ${TOTAL_S:-570} - SECONDS - 5 ))   # the whole run stays inside the device call
  if [ "$left" -lt 10 ]; then
    echo "== $name: skipped, the run's ${TOTAL_S:-570} s are spent" | tee -a "$OUT/summary.txt"
    return 124
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "== $name (limit ${limit}s)" | tee -a "$OUT/summary.txt"
  # through bash -c so that exported shell functions run as well as commands
  timeout --kill-after=10 "$limit" bash -c '"$@"' stage "$@" > "$log" 2>&1
  local rc=$?
  local verdict=ok
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then verdict="timed out"; elif [ $rc -ne 0 ]; then verdict="failed"; fi
  echo "   $name: $verdict (rc $rc, $((SECONDS - start)) s)" | tee -a "$OUT/summary.txt"
  tail -5 "$log" | sed 's/^/   | /' | tee -a "$OUT/summary.txt"
  return $rc
}

environment() {
  nvidia-smi || true
  python3 -c "import torch, sys; print(sys.version); print('torch', torch.__version__, 'cuda', \
torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name(0))"
  nproc
}

install_wheels() {
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "$CACHE"/wheels/*.whl
}

run_all() {
  : "${OUT:?set OUT to the folder the results go to}"
  export -f environment install_wheels
  export CACHE SITE
  mkdir -p "$OUT"
  : > "$OUT/summary.txt"
  export PYTHONUNBUFFERED=1 PYTHONPATH="$ROOT:$SITE" PATH="$SITE/bin:$PATH"
  stage environment "${STAGE_ENV_S:-30}" "$OUT/env.txt" environment
  stage wheels 60 "$OUT/wheels.log" install_wheels
  stage mamba_build "${STAGE_BUILD_S:-240}" "$OUT/mamba_build.log" \
    env GPU_CACHE="$CACHE" bash "$CACHE/mamba_ssm_gpu.sh" build
  cp /tmp/mamba_ssm_build.log "$OUT/mamba_build_full.log" 2>/dev/null
  stage tests "${STAGE_TESTS_S:-170}" "$OUT/tests.log" \
    python3 "$ROOT/tools/run_tests.py" --flags "slow gpu" --only "$TESTS_ONLY" --no-experiments
  stage bench "${STAGE_BENCH_S:-300}" "$OUT/bench_gpu.log" \
    python3 "$ROOT/benchmarks/bench_gpu.py" --device cuda --out "$OUT/bench_gpu"
  echo "files:" >> "$OUT/summary.txt"
  (cd "$OUT" && find . -type f | sort) >> "$OUT/summary.txt"
  cat "$OUT/summary.txt"
}

check() {
  # the parts that need no GPU: the stage runner's verdicts and the cache layout
  local tmp
  tmp=$(mktemp -d)
  OUT=$tmp
  : > "$OUT/summary.txt"
  stage pass 5 "$tmp/a.log" true > /dev/null; [ $? -eq 0 ] || { echo "stage ok: wrong rc"; exit 1; }
  stage fail 5 "$tmp/b.log" false > /dev/null; [ $? -eq 1 ] || { echo "stage fail: wrong rc"; exit 1; }
  stage slow 1 "$tmp/c.log" sleep 5 > /dev/null; [ $? -eq 124 ] || { echo "stage timeout: wrong rc"; exit 1; }
  grep -q "pass: ok" "$OUT/summary.txt" && grep -q "fail: failed" "$OUT/summary.txt" \
    && grep -q "slow: timed out" "$OUT/summary.txt" || { echo "summary wrong"; cat "$OUT/summary.txt"; exit 1; }
  local missing=0
  ls "$CACHE"/mamba_ssm-*.tar.gz > /dev/null 2>&1 || { echo "missing: mamba-ssm sdist"; missing=1; }
  [ -f "$CACHE/mamba_ssm_gpu.sh" ] || { echo "missing: $CACHE/mamba_ssm_gpu.sh"; missing=1; }
  for w in $WHEELS; do
    local stem=${w%%==*}
    stem=${stem//-/_}
    compgen -G "$CACHE/wheels/${stem,,}-*.whl" > /dev/null || { echo "missing wheel: $w"; missing=1; }
  done
  rm -rf "$tmp"
  [ $missing -eq 0 ] && echo "gpu_check: stage runner and cache OK" || exit 1
}

case "${1:-}" in
  prepare) prepare ;;
  run) run_all ;;
  check) check ;;
  *) echo "usage: $0 prepare|run|check" >&2; exit 2 ;;
esac
