#!/usr/bin/env bash
# A larger cross-person test set for issue #13's Table 5 (the default data's test split has 64
# cross-person images: paired intervals of +-35 AP points), and its control.
#
#   bash tests/benchmarks/cross_person_testset.sh DEST [N] [control]
#
# Builds DEST from the committed code (git archive HEAD) with params.yaml changed as follows, and
# runs the stages synth, ingest, pose, parts and scenes there: N HICO-DET test images (default
# 600), every one a `cross_person` scene, drawn with another seed (seed + 1000) than the default
# data so that no image repeats; 40 training images (ingest and scenes need a train split; nobody
# trains on them); no V-COCO images; `control` sets synth.cross_person_control (R's hand empty).
# Score finished ablation runs on it with:
#   python cli.py ablate --arm full --arm no_saliency --seeds 3 --out RUNS --collect-only \
#     --data DEST/data/processed --eval-images DEST/data/raw/synthetic/hico_20160224_det --reports R
set -euo pipefail
DEST=${1:?usage: cross_person_testset.sh DEST [N] [control]}; N=${2:-600}; CONTROL=${3:-}
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${PYTHON:-python}"
rm -rf "$DEST" && mkdir -p "$DEST"
git -C "$REPO" archive HEAD | tar -x -C "$DEST"
cd "$DEST"
"$PY" - "$N" "$CONTROL" <<'PYEOF'
import sys, yaml
n, control = int(sys.argv[1]), sys.argv[2] == "control"
p = yaml.safe_load(open("params.yaml"))
s = p["synth"]
s.update(hico_train=40, hico_test=n, vcoco_train=0, vcoco_test=0, hico_unannotated_test_rate=0.0,
         cross_person_control=control)
s["mix"] = {k: (1.0 if k == "cross_person" else 0.0) for k in s["mix"]}
p["seed"] = int(p.get("seed", 0)) + 1000
yaml.safe_dump(p, open("params.yaml", "w"), sort_keys=False)
PYEOF
export DVC_NO_ANALYTICS=1
for stage in synth ingest pose parts scenes; do
  "$PY" -m pipeline.stage "$stage"
done
echo "cross-person test set: $DEST/data/processed, images under $DEST/data/raw/synthetic/hico_20160224_det"
