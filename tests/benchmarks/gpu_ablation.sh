#!/usr/bin/env bash
# Table 5 on the built-in data (issue #13) in one call on the lent GPU machine (one H200, 16 CPU
# cores), then the stage-1/stage-2 step benchmark of issue #18 in the time left.
#
#   bash tests/benchmarks/gpu_ablation.sh                 # needs data/raw/synthetic + data/processed
#   ABL_LENGTH=4 ABL_DROP=3 ABL_VAL=2 ABL_SEEDS=1 ABL_DEVICE=cpu ABL_BENCH=0 bash tests/benchmarks/gpu_ablation.sh  # CPU smoke run
#
# Three groups of stage-1 runs share the machine, every run one process with one CPU thread:
#   main     every Table-5 arm x ABL_SEEDS seeds on the default data (python cli.py ablate);
#   part     the full arm with body-part supervision (train.loss.part = 1);
#   control  the full arm on a copy of the data drawn with synth.cross_person_control: true
#            (R's hand empty, so nothing in a cross-person image decides A's label).
# All runs use the same shortened schedule (ABL_LENGTH iterations, drop at ABL_DROP) so that the
# 27 runs fit one call; finished runs' result.json, logs and params come back as ablation.tgz.
set -u
cd "$(dirname "$0")/../.."
OUT="${OUT:-$PWD/gpu_ablation_out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
if [ -d .whl ] && ! "$PY" -c "import pydantic" 2>/dev/null; then
  pip install --quiet --no-index --no-deps --target /tmp/site .whl/*.whl >"$OUT/pip.log" 2>&1
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 DVC_NO_ANALYTICS=1
L=${ABL_LENGTH:-1200}; D=${ABL_DROP:-950}; V=${ABL_VAL:-400}; T=${ABL_TIMEOUT:-420}
SEEDS=${ABL_SEEDS:-3}; DEV=${ABL_DEVICE:-cuda}; W=${ABL_WORK:-/tmp/abl}
SETS=(--set "train.stage1.length=$L" --set "train.stage1.lr_drop=$D" --set "train.val_every=$V"
      --set "train.checkpoint_every=$V")
COMMON=(--seeds "$SEEDS" --threads 1 --device "$DEV" "${SETS[@]}")
rm -rf "$W" && mkdir -p "$W"
start=$SECONDS

timeout -k 5 "$T" "$PY" cli.py ablate --jobs 64 "${COMMON[@]}" --out "$W/main" --reports "$W/main" \
  >"$OUT/main.log" 2>&1 &
timeout -k 5 "$T" "$PY" cli.py ablate --arm full --jobs 8 "${COMMON[@]}" --set train.loss.part=1.0 \
  --out "$W/part" --reports "$W/part" >"$OUT/part.log" 2>&1 &
(  # the control data: the same tree and params, R neutral
  C="$W/control_tree"; mkdir -p "$C"
  tar --exclude=./data/raw --exclude=./data/processed --exclude=./.whl --exclude=./.git -cf - . | tar -xf - -C "$C"
  cd "$C" && "$PY" - <<'EOF'
import yaml
p = yaml.safe_load(open("params.yaml"))
p["synth"]["cross_person_control"] = True
yaml.safe_dump(p, open("params.yaml", "w"), sort_keys=False)
EOF
  for s in synth ingest pose parts scenes; do "$PY" cli.py "$s" >>"$OUT/control.log" 2>&1 || exit 1; done
  timeout -k 5 $((T - (SECONDS - start))) "$PY" cli.py ablate --arm full --jobs 8 "${COMMON[@]}" \
    --out "$W/control" --reports "$W/control" >>"$OUT/control.log" 2>&1
) &
(sleep $((T / 2)); nvidia-smi; uptime; free -g) >"$OUT/load.txt" 2>&1 &
wait
pkill -f "pipeline.ablations" 2>/dev/null
echo "ablation: $((SECONDS - start)) s" | tee "$OUT/summary.txt"
tar -czf "$OUT/ablation.tgz" -C "$W" --exclude='*.pt' --exclude='*.parquet' --exclude=control_tree \
  --exclude=synthetic main part control 2>/dev/null
for g in main part control; do [ -f "$W/$g/ablations.md" ] && cat "$W/$g/ablations.md" >>"$OUT/summary.txt"; done

if [ "${ABL_BENCH:-1}" = "1" ]; then  # issue #18: step time, reference vs optimised path, paper preset
  for stage in 1 2; do
    timeout -k 5 "${BENCH_T:-70}" "$PY" tests/benchmarks/bench_train.py --preset paper --device cuda --amp \
      --threads 4 --batch 16 --iterations 10 --jpeg --image-size 640 480 --train-size 800 --max-size 1333 \
      --size-jitter 0.25 --stage "$stage" --paths ref,fast,fast+cl+fused --skip-loader \
      --json-out "$OUT/bench_stage$stage.json" >"$OUT/bench_stage$stage.log" 2>&1
    echo "bench stage $stage: rc $?" >>"$OUT/summary.txt"
  done
fi
cat "$OUT/summary.txt"
