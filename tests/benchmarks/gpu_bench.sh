#!/usr/bin/env bash
# Issue #18's measurements on the GPU machine, in about 4 minutes, every part under a hard
# timeout; results (one JSON line per part + a text summary) go to $OUT (default ./gpu_bench_out).
#
#   bash tests/benchmarks/gpu_bench.sh            # on the H200 machine (paper preset, 800 px, batch 16)
#   GPU_BENCH_SMOKE=1 bash tests/benchmarks/gpu_bench.sh   # CPU smoke run of the same parts (tiny settings)
#
# Parts: stage 1 and stage 2 step time of the reference path (per-image matching/losses, read-back
# every step) and the optimised one (+ channels_last + fused AdamW), each with a torch.profiler count
# of three steps and the synchronising calls of one step; the data loader at 12 and 16 workers with
# the paper's augmentation on noisy 640 x 480 JPEGs; torch.compile of the network (graph breaks via
# torch._dynamo.explain, then the compiled step) last, as it may take longest.
# Missing packages (pydantic & co.) are installed from .whl/ at the repository root when present.
set -u
cd "$(dirname "$0")/../.."
OUT="${OUT:-$PWD/gpu_bench_out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
if [ -d .whl ] && ! "$PY" -c "import pydantic" 2>/dev/null; then
  pip install --quiet --no-index --no-deps --target /tmp/site .whl/*.whl >"$OUT/pip.log" 2>&1
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}"

if [ "${GPU_BENCH_SMOKE:-0}" = "1" ]; then
  COMMON=(--preset demo --device cpu --threads 1 --batch 4 --iterations 2 --jpeg
          --image-size 96 72 --train-size 64 --max-size 96 --size-jitter 0.25)
  LOADER=(--preset demo --device cpu --threads 1 --batch 4 --jpeg --image-size 96 72 --train-size 64
          --max-size 96 --jitter 0.4 --crop 0.5 --loader-only --compare-float)
  WORKERS=(1 2); T_STAGE=300; T_LOADER=120; T_COMPILE=300; COMPILE_PATHS=""  # inductor on 1 CPU: minutes
else
  COMMON=(--preset paper --device cuda --amp --threads 4 --batch 16 --iterations 10 --jpeg
          --image-size 640 480 --train-size 800 --max-size 1333 --size-jitter 0.25)
  LOADER=(--preset paper --device cuda --threads 4 --batch 16 --jpeg --image-size 640 480 --train-size 800
          --max-size 1333 --size-jitter 0.25 --jitter 0.4 --crop 0.5 --loader-only --compare-float)
  WORKERS=(12 16); T_STAGE=75; T_LOADER=30; T_COMPILE=150; COMPILE_PATHS=fast+cl+fused+compile
fi
BENCH=tests/benchmarks/bench_train.py

part() {  # name, timeout seconds, bench arguments...
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  timeout -k 5 "$limit" "$PY" "$BENCH" "$@" --json-out "$OUT/$name.json" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name: rc $rc, $((SECONDS - start)) s" | tee -a "$OUT/summary.txt"
}

: >"$OUT/summary.txt"
{ nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU"
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; } >>"$OUT/summary.txt" 2>&1
part stage1 "$T_STAGE" "${COMMON[@]}" --stage 1 --paths ref,fast,fast+cl+fused --profile --skip-loader
part stage2 "$T_STAGE" "${COMMON[@]}" --stage 2 --paths ref,fast,fast+cl+fused --profile --skip-loader
for w in "${WORKERS[@]}"; do
  part "loader_w$w" "$T_LOADER" "${LOADER[@]}" --stage 1 --workers "$w" --loader-batches $((3 * w))
done
part compile_stage1 "$T_COMPILE" "${COMMON[@]}" --stage 1 --paths "$COMPILE_PATHS" --explain --skip-loader

"$PY" - "$OUT" >>"$OUT/summary.txt" 2>&1 <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
for f in sorted(out.glob("*.json")):
    d = json.loads(f.read_text())
    print(f"\n== {f.stem}: {d['preset']} stage {d['stage']} batch {d['batch']} input {d['input_hw']} "
          f"decode {d['decode_ms']} ms, item {d['item_ms']} ms, collate {d['collate_ms_per_image']} ms per image")
    for path, r in d.get("paths", {}).items():
        prof = r.get("profile_per_step", {})
        a = prof.get("all", {})
        print(f"  {path:24s} {r['step_s']:.4f} s/step  {r['images_per_s']:7.1f} img/s  peak {r.get('peak_gpu_mem_gib')} GiB"
              f"  syncs/step {r.get('syncs_per_step')}  h2d {a.get('h2d')}  d2h {a.get('d2h')}"
              f"  items {a.get('item_readbacks')}  launches {a.get('kernel_launches')}  gpu busy {prof.get('gpu_busy_ms')} ms")
    if "speedup_fast_vs_ref" in d:
        print(f"  speed-up fast vs ref: {d['speedup_fast_vs_ref']}x")
    if "explain" in d:
        print(f"  torch.compile: {d['explain']}")
    if "loader_images_per_s" in d:
        print(f"  loader: {d['loader_images_per_s']} img/s with {d['loader_workers']} workers "
              f"(projection {d['loader_projection_images_per_s']} img/s)")
    if "loader_float_images_per_s" in d:
        print(f"  loader with float32 transport (before): {d['loader_float_images_per_s']} img/s; "
              f"uint8 / float {d['loader_speedup_uint8_vs_float']}x")
EOF
cat "$OUT/summary.txt"
