#!/usr/bin/env bash
# Issue #13's ablation runs and issue #18's step benchmark in ONE call on the lent GPU machine
# (one H200, 16 CPU cores), everything under hard time limits; results come back in $OUT.
#
#   bash tests/benchmarks/gpu_ablation.sh        # needs data/raw/synthetic/... + data/processed
#   ABL_LENGTH=4 ABL_VAL=2 ABL_SEEDS=1 ABL_BENCH=0 ABL_CORES=0-1 bash tests/benchmarks/gpu_ablation.sh  # CPU smoke
#
# Stage-1 runs (python cli.py ablate, one process and one CPU thread each, on CPU cores
# ABL_CORES): arms ABL_ARMS x ABL_SEEDS seeds. Several CUDA processes on one GPU time-slice
# (measured: two demo runs side by side reached 3.6 it/s each), so the small demo model trains
# on the CPU cores and the GPU serves the benchmark on BENCH_CORES at the same time. The
# schedule is the largest multiple of 100 iterations (lr drop at 79 %, as 1,900 / 2,400) that
# fits ABL_TIME seconds at the step time measured first with every core busy; it is printed and
# recorded in every run's params.yaml. ABL_LENGTH fixes it instead.
set -u
cd "$(dirname "$0")/../.."
OUT="${OUT:-$PWD/gpu_ablation_out}"; mkdir -p "$OUT"
PY="${PYTHON:-python3}"
if [ -d .whl ] && ! "$PY" -c "import pydantic" 2>/dev/null; then
  pip install --quiet --no-index --no-deps --target /tmp/site .whl/*.whl >"$OUT/pip.log" 2>&1
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 DVC_NO_ANALYTICS=1 OMP_NUM_THREADS=1
ARMS=(${ABL_ARMS:-full no_saliency no_parts part_supervised})
SEEDS=${ABL_SEEDS:-3}; CORES=${ABL_CORES:-4-15}; BENCH_CORES=${BENCH_CORES:-0-3}
ABL_TIME=${ABL_TIME:-450}; W=${ABL_WORK:-/tmp/abl}
N=$(( ${#ARMS[@]} * SEEDS ))
rm -rf "$W" && mkdir -p "$W/log"
LOG="$W/log/summary.txt"; : >"$LOG"
start=$SECONDS

if [ -z "${ABL_LENGTH:-}" ]; then  # step time of the demo preset with N single-thread processes at once
  for i in $(seq 1 "$N"); do
    taskset -c "$CORES" timeout 90 "$PY" tests/benchmarks/bench_train.py --preset demo --device cpu --threads 1 \
      --batch 16 --iterations 6 --paths fast --skip-loader --json-out "$W/log/cal_$i.json" >"$W/log/cal_$i.log" 2>&1 &
  done
  wait
  ABL_LENGTH=$("$PY" - "$W/log" "$ABL_TIME" "$((SECONDS - start))" <<'EOF'
import json, statistics, sys
from pathlib import Path
steps = [json.loads(p.read_text())["paths"]["fast"]["step_s"] for p in Path(sys.argv[1]).glob("cal_*.json")]
left = float(sys.argv[2]) - float(sys.argv[3]) - 75  # start-up, validations, test evaluation, saves
step = statistics.median(steps) * 1.3  # + in-process data loading
print(max(200, min(2400, int(left / step) // 100 * 100)))
print(f"calibration: {len(steps)} processes, median step {statistics.median(steps):.3f} s", file=sys.stderr)
EOF
  )
fi
ABL_DROP=${ABL_DROP:-$(( ABL_LENGTH * 79 / 100 ))}; ABL_VAL=${ABL_VAL:-$(( ABL_LENGTH / 2 ))}
echo "schedule: $ABL_LENGTH iterations, drop at $ABL_DROP, validation every $ABL_VAL; $N runs; $((SECONDS - start)) s" | tee -a "$LOG"

taskset -c "$CORES" timeout -k 5 $((ABL_TIME - (SECONDS - start))) "$PY" cli.py ablate \
  $(printf -- '--arm %s ' "${ARMS[@]}") --seeds "$SEEDS" --jobs "$N" --threads 1 --device cpu \
  --set "train.stage1.length=$ABL_LENGTH" --set "train.stage1.lr_drop=$ABL_DROP" \
  --set "train.val_every=$ABL_VAL" --set "train.checkpoint_every=$ABL_VAL" \
  --out "$W/runs" --reports "$W/log" >"$W/log/ablate.log" 2>&1 &
abl=$!

bench() {  # name, seconds, bench arguments (paper preset, batch 16, 800 px, bf16)
  local name=$1 limit=$2; shift 2
  taskset -c "$BENCH_CORES" timeout -k 5 "$limit" "$PY" tests/benchmarks/bench_train.py --preset paper \
    --device cuda --amp --threads 4 --batch 16 --iterations 10 --jpeg --image-size 640 480 --train-size 800 \
    --max-size 1333 --size-jitter 0.25 --json-out "$W/log/$name.json" "$@" >"$W/log/$name.log" 2>&1
  echo "bench $name: rc $?" >>"$LOG"
}
if [ "${ABL_BENCH:-1}" = "1" ]; then
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader >>"$LOG" 2>&1
  bench stage1 80 --stage 1 --paths ref,fast,fast+cl+fused --profile --skip-loader
  bench stage2 80 --stage 2 --paths ref,fast,fast+cl+fused --skip-loader
  bench compile1 150 --stage 1 --paths fast+cl+fused+compile --explain --skip-loader
fi
(uptime; free -g) >"$W/log/load.txt" 2>&1
wait "$abl"; echo "ablate: rc $?, $((SECONDS - start)) s" | tee -a "$LOG"
pkill -f "pipeline.ablations" 2>/dev/null
if [ "${ABL_BENCH:-1}" = "1" ] && [ $((SECONDS - start)) -lt 520 ]; then  # loader, all cores free now
  bench loader16 40 --stage 1 --workers 16 --loader-batches 48 --jitter 0.4 --crop 0.5 --loader-only
fi
cat "$W/log/ablations.md" >>"$LOG" 2>/dev/null
for s in $(seq 0 $((SEEDS - 1))); do  # the full arm's networks (control experiment, evaluated at home)
  cp "$W/runs/runs/full-s$s/models/stage1.pt" "$OUT/full-s$s.pt" 2>/dev/null
done
tar -czf "$OUT/ablation.tgz" -C "$W" --exclude='*.pt' --exclude='*.parquet' runs log 2>/dev/null
cp "$LOG" "$OUT/summary.txt"
cat "$LOG"
