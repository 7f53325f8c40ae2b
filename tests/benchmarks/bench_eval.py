"""HICO-DET-sized evaluation benchmark: ours (vectorised) vs a straightforward per-image
Python implementation of the same protocol, in the same run.

    .venv/bin/python tests/benchmarks/bench_eval.py [--images 9546] [--per-image 100]

Synthetic data: 9,546 test images, 33,405 ground-truth pairs over the 600 HOI classes (each
class at least twice; scaled down with --images), and detections shaped like a DETR-style model's after top-k: 64 query
pairs x 117 verbs per image, masked to valid verb-object pairs, top ``--per-image`` triplets
kept. Prints the time of Default + Known Object for both and checks they agree.

Optional extra timings (ours only): ``--interactiveness`` (9,546 x 64 stage-1 pairs),
``--vcoco`` (4,946 images x 100 detections, agent + both role scenarios) and ``--postprocess``
(raw outputs of 9,546 images x 64 queries x 117 verbs -> NIS, pair NMS, top-100).

The naive implementation (``naive_hico``) is also the test oracle of tests/metrics/test_hico.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from model.common import labels  # noqa: E402
from pipeline.metrics.hico import HoiDetections, evaluate_hico, hoi_object_column, known_object_table  # noqa: E402
from pipeline.metrics.inputs import PairGroundTruth  # noqa: E402


def _iou(a: tuple, b: tuple, plus_one: bool) -> float:
    one = 1.0 if plus_one else 0.0
    iw = min(a[2], b[2]) - max(a[0], b[0]) + one
    ih = min(a[3], b[3]) - max(a[1], b[1]) + one
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0] + one) * (a[3] - a[1] + one) + (b[2] - b[0] + one) * (b[3] - b[1] + one) - inter
    return inter / union if union > 0 else 0.0


def naive_hico(dets: HoiDetections, gt: PairGroundTruth, ko: np.ndarray | None, plus_one: bool = True,
               classes: list[int] | None = None, ties: str = "input_order",
               thresholds: np.ndarray | None = None) -> dict[int, tuple[float, float]]:
    """{hoi_id: (AP, final recall)} with ho-rcnn's loop: per class, detections sorted by score
    (ties: "input_order" = the order of ``dets``, as MATLAB's stable sort; "image_box" = image
    code, then human and object coordinates), best GT by min IoU in the same image, >= 0.5 and
    unmatched -> TP, 11-point AP at ``thresholds`` (default k * 0.1, as ho-rcnn; TIN/BPM:
    k / 10). ``ko`` [I, 80] keeps only known-object images."""
    obj_col = hoi_object_column()
    gts: dict[tuple[int, int], list[tuple[tuple, tuple]]] = defaultdict(list)
    npos: dict[int, int] = defaultdict(int)
    for i in range(len(gt.image)):
        gts[(int(gt.label[i]), int(gt.image[i]))].append((tuple(gt.human[i]), tuple(gt.obj[i])))
        npos[int(gt.label[i])] += 1
    by_class: dict[int, list] = defaultdict(list)
    for i in range(len(dets.image)):
        h, img = int(dets.hoi[i]), int(dets.image[i])
        if ko is not None and not ko[img, obj_col[h]]:
            continue
        tie = i if ties == "input_order" else (img, tuple(dets.human[i]), tuple(dets.obj[i]))
        by_class[h].append((-dets.score[i], tie, img, tuple(dets.human[i]), tuple(dets.obj[i])))
    out = {}
    for c in classes if classes is not None else sorted(npos):
        tp = []
        used: set[tuple[int, int]] = set()
        for _, _, img, hb, ob in sorted(by_class.get(c, [])):
            best, jbest = -np.inf, -1
            for j, (gh, go) in enumerate(gts.get((c, img), [])):
                ov = min(_iou(hb, gh, plus_one), _iou(ob, go, plus_one))
                if ov > best:
                    best, jbest = ov, j
            ok = best >= 0.5 and (img, jbest) not in used
            if ok:
                used.add((img, jbest))
            tp.append(ok)
        out[c] = _naive_ap(tp, npos.get(c, 0), thresholds)
    return out


def _naive_ap(tp: list[bool], npos: int, thresholds: np.ndarray | None = None) -> tuple[float, float]:
    """11-point AP and final recall, written as the MATLAB loop."""
    if npos == 0:
        return float("nan"), float("nan")
    ctp = np.cumsum(tp, dtype=np.float64)
    rec = ctp / npos
    prec = ctp / np.arange(1, len(tp) + 1)
    ap = 0.0
    for t in np.arange(0.0, 1.1, 0.1) if thresholds is None else thresholds:
        sel = prec[rec >= t]
        ap += (sel.max() if len(sel) else 0.0) / 11
    return ap, (float(rec[-1]) if len(rec) else 0.0)


def synthetic(n_images: int, per_image: int, seed: int = 0) -> tuple[HoiDetections, PairGroundTruth]:
    """HICO-DET-shaped ground truth and top-k detections (see module docstring)."""
    rng = np.random.default_rng(seed)
    lab = labels.hico()
    hois = np.array(sorted(lab.hoi_verb))
    n_gt = max(int(round(33_405 * n_images / 9546)), 1)
    gt_cls = rng.choice(hois, n_gt, p=_zipf(len(hois), rng))
    if n_gt >= 2 * len(hois):  # every class at least twice, as in the real test split
        gt_cls[: 2 * len(hois)] = np.repeat(hois, 2)
    gt_img = rng.integers(0, n_images, n_gt)
    gt_h, gt_o = _boxes(rng, n_gt), _boxes(rng, n_gt)
    gt = PairGroundTruth(gt_img, gt_h, gt_o, gt_cls, np.array([lab.hoi_verb[h] for h in gt_cls]))
    # detections, as a DETR-style model's top-k look: most sit on one of the image's annotated
    # pairs (jittered boxes) with a verb valid for that pair's object (the right one 30% of the
    # time); the rest are background pairs
    n = n_images * per_image
    image = np.repeat(np.arange(n_images), per_image)
    order = np.argsort(gt_img, kind="stable")
    count = np.bincount(gt_img, minlength=n_images)
    first = np.cumsum(count) - count
    on_gt = (count[image] > 0) & (rng.random(n) < 0.85)
    src = order[np.clip(first[image] + (rng.random(n) * count[image]).astype(np.int64), 0, n_gt - 1)]
    same_obj = _random_hoi_with_object(rng, gt_cls[src])
    cls = np.where(rng.random(n) < 0.3, gt_cls[src], same_obj)
    det = HoiDetections(
        image=image,
        human=np.where(on_gt[:, None], _jitter(rng, gt_h[src]), _boxes(rng, n)),
        obj=np.where(on_gt[:, None], _jitter(rng, gt_o[src]), _boxes(rng, n)),
        score=np.where(on_gt, rng.uniform(0.1, 1.0, n), rng.uniform(0.0, 0.5, n)).astype(np.float32).astype(np.float64),
        hoi=np.where(on_gt, cls, rng.choice(hois, n, p=_zipf(len(hois), rng))),
    )
    return det, gt


def _random_hoi_with_object(rng: np.random.Generator, hoi: np.ndarray) -> np.ndarray:
    """For each HOI id, a random HOI id with the same object."""
    obj = hoi_object_column()
    by_obj = np.argsort(obj[1:], kind="stable") + 1  # HOI ids grouped by object column
    count = np.bincount(obj[1:])
    first = np.cumsum(count) - count
    o = obj[hoi]
    return by_obj[first[o] + (rng.random(len(hoi)) * count[o]).astype(np.int64)]


def _zipf(n: int, rng: np.random.Generator) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1) ** 1.1
    return rng.permutation(p / p.sum())


def _boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    xy = rng.uniform(1, 500, (n, 2))
    wh = rng.uniform(20, 300, (n, 2))
    return np.round(np.concatenate([xy, xy + wh], axis=1))


def _jitter(rng: np.random.Generator, boxes: np.ndarray) -> np.ndarray:
    return boxes + rng.normal(0, 6, boxes.shape)


def bench_interactiveness(n_images: int, gt: PairGroundTruth) -> None:
    from pipeline.metrics.interactiveness_ap import PairScores, evaluate_interactiveness

    rng = np.random.default_rng(1)
    n = n_images * 64
    src = rng.integers(0, len(gt.image), n)
    real = rng.random(n) < 0.5
    dets = PairScores(np.where(real, gt.image[src], rng.integers(0, n_images, n)),
                      np.where(real[:, None], _jitter(rng, gt.human[src]), _boxes(rng, n)),
                      np.where(real[:, None], _jitter(rng, gt.obj[src]), _boxes(rng, n)), rng.random(n), rng.random((n, 6)))
    splits = {"crowded": rng.random(n_images) < 0.3, "tiny": rng.random(n_images) < 0.2, "occluded": rng.random(n_images) < 0.4}
    t0 = time.perf_counter()
    out = evaluate_interactiveness(dets, gt, n_images, splits, ("foot", "leg", "hip", "hand", "arm", "head"))
    print(f"ours  interactiveness AP, {n} pairs, all + 6 split subsets + 6 parts: {time.perf_counter() - t0:6.2f} s"
          f"   (AP {out['all'].ap:.4f})")


def bench_vcoco(n_images: int = 4946, per_image: int = 100) -> None:
    from pipeline.metrics.vcoco import evaluate_vcoco
    from pipeline.metrics.vcoco_data import VcocoDetections, VcocoGroundTruth, role_slot

    rng = np.random.default_rng(2)
    v = labels.vcoco()
    actions = tuple(v.actions[i] for i in sorted(v.actions))
    roles = tuple(tuple(v.action_roles[a][1:]) for a in actions)
    n_p = 2 * n_images
    p_img = rng.integers(0, n_images, n_p)
    acts = (rng.random((n_p, 26)) < 0.1).astype(np.int8)
    acts[rng.random(n_p) < 0.15] = -1  # persons not in V-COCO
    rbox = np.where(rng.random((n_p, 26, 2, 1)) < 0.8, _boxes(rng, n_p * 52).reshape(n_p, 26, 2, 4), np.nan).astype(np.float32)
    gt = VcocoGroundTruth(np.arange(n_images), {}, actions, roles, p_img, _boxes(rng, n_p).astype(np.float32), acts, rbox, 0)
    n = n_images * per_image
    src = rng.integers(0, n_p, n)
    person = _jitter(rng, gt.person_box[src]).astype(np.float32)
    per = 5  # (action, role) entries per detection, as a top-k predictions table gives
    e_det = np.repeat(np.arange(n), per)
    a = rng.integers(0, 26, len(e_det))
    r = np.array([rng.integers(0, max(len(roles[k]), 1)) for k in range(26)])[a]
    slot = np.where([len(roles[k]) > 0 for k in a], role_slot(26, a, r), a)
    box = _jitter(rng, np.nan_to_num(rbox[src[e_det], a, np.minimum(r, 1)], nan=0.0)).astype(np.float32)
    dets = VcocoDetections(p_img[src], person, e_det, slot, box, rng.random(len(e_det)).astype(np.float32))
    t0 = time.perf_counter()
    res = evaluate_vcoco(dets, gt)
    print(f"ours  V-COCO agent + role AP (both scenarios), {n} detections, {len(e_det)} entries: "
          f"{time.perf_counter() - t0:6.2f} s   (S1 role mAP {res.means()['scenario1/role_map_25']:.4f})")


def bench_postprocess(n_images: int, queries: int = 64, batch: int = 64) -> None:
    import torch

    from model.label_space import for_format
    from model.postprocess import OutputSpace, PostprocessConfig, postprocess

    torch.manual_seed(0)
    space = OutputSpace.of(for_format("hico-det"))
    cfg = PostprocessConfig(nis="threshold", nis_threshold=0.2)
    total, rows = 0.0, 0
    for start in range(0, n_images, batch):
        b = min(batch, n_images - start)
        cxcy = torch.rand(b, queries, 2) * 0.6 + 0.2
        s2 = {"pred_obj_logits": torch.randn(b, queries, 81) * 3, "pred_verb_logits": torch.randn(b, queries, 117) * 2 - 2,
              "pred_sub_boxes": torch.cat([cxcy, torch.rand(b, queries, 2) * 0.3 + 0.05], -1),
              "pred_obj_boxes": torch.cat([cxcy + 0.05, torch.rand(b, queries, 2) * 0.3 + 0.05], -1)}
        s1 = {"pred_sub_boxes": s2["pred_sub_boxes"], "pred_obj_boxes": s2["pred_obj_boxes"],
              "pred_int_logits": torch.randn(b, queries), "pred_part_scores": torch.rand(b, queries, 6)}
        sizes = torch.tensor([[480, 640]] * b)
        t0 = time.perf_counter()
        rows += len(postprocess(s2, s1, sizes, [str(start + i) for i in range(b)], space, cfg))
        total += time.perf_counter() - t0
    print(f"ours  post-processing {n_images} x {queries} queries x 117 verbs -> {rows} triplets: {total:6.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=9546)
    ap.add_argument("--per-image", type=int, default=100)
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--interactiveness", action="store_true")
    ap.add_argument("--vcoco", action="store_true")
    ap.add_argument("--postprocess", action="store_true")
    args = ap.parse_args()
    det, gt = synthetic(args.images, args.per_image)
    if args.interactiveness:
        bench_interactiveness(args.images, gt)
    if args.vcoco:
        bench_vcoco()
    if args.postprocess:
        bench_postprocess(args.images)
    print(f"{args.images} images, {len(gt.image)} GT pairs, {len(det.image)} detections")
    t0 = time.perf_counter()
    ko = known_object_table(args.images, gt)
    ours = evaluate_hico(det, gt, args.images, ko_table=ko)
    t_ours = time.perf_counter() - t0
    print(f"ours  Default + Known Object: {t_ours:7.2f} s   "
          f"mAP {ours['default'].means['full_map']:.4f} / KO {ours['known_object'].means['full_map']:.4f}")
    if args.skip_naive:
        return
    t0 = time.perf_counter()
    naive = {"default": naive_hico(det, gt, None), "known_object": naive_hico(det, gt, ko)}
    t_naive = time.perf_counter() - t0
    for mode, res in naive.items():
        mine = ours[mode].per_class.set_index("hoi_id")["ap"]
        diff = max(abs(mine[c] - res[c][0]) for c in res)
        print(f"naive {mode:13s} mAP {np.mean([v[0] for v in res.values()]):.4f}  max |AP diff| {diff:.2e}")
    print(f"naive Default + Known Object: {t_naive:7.2f} s   speed-up x{t_naive / t_ours:.1f}")


if __name__ == "__main__":
    main()
