"""``predict``: any image(s) -> pose -> HAKE part boxes -> both networks of the bundle -> NIS and
pair NMS -> HOI triplets, drawn (ARCHITECTURE "Flow", decisions 1 and 2).

Writes under OUT: ``predictions.parquet`` (the ``predictions`` schema), ``predictions.json``
(one entry per input file: status, message, conversions applied, persons found, detections
with names), ``images/<image_id>.png`` (the top triplets) and, with ``attention``,
``attention/<image_id>.png`` (Fig. 4: the six body-part saliency maps and the attention of
the three masked decoder layers for the top pairs).

Frames: every image is opened, EXIF-transposed (the displayed frame, before anything else)
and converted to 8-bit RGB. An image whose longer side exceeds ``max_side`` is reduced to a
working copy for pose and model; every box written is in pixels of the displayed original.
Pose result files must hold boxes and keypoints in that displayed original frame, as AlphaPose
and most tools that read images with OpenCV write them.

Bad input never stops a folder: unreadable files are listed with the reason and counted; an
image without a person gets no detections, a PNG saying so and an entry with that status.

This module selects the pose source, runs both networks and orchestrates the run; finding and
loading the inputs lives in :mod:`pipeline.inputs.images`, drawings and JSON records in
:mod:`pipeline.predict.render`.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm import tqdm

from model.postprocess import PostProcess
from model.transforms import AugmentConfig, part_box_valid
from pipeline import tables
from model.common.errors import UserError
from pipeline.inputs.images import ImageError, LoadedImage, Source, discover, load_image
from pipeline.parts import PartsConfig
from model.common.progress import bar
from pipeline.runlog import note, run_log
from pipeline.predict.select import check_filters, run_folder, select_triplets
from pipeline.pose_backends.persons import PersonArrays, to_persons
from pipeline.predict.render import Attention, ImageResult, attention_png, detection_png, result_entry, save_png

PoseBackend = Literal["ultralytics", "alphapose-file", "coco-file", "persons-table"]


@dataclass(frozen=True)
class PredictOptions:
    """What ``predict`` runs. ``pose_file``: result file of the file backends; ``pose_weights``:
    ultralytics weights (default params pose.ultralytics.weights); ``device``: auto | cpu |
    cuda | cuda:N | mps (pose and model); ``top``: triplets drawn per image (the files keep
    every post-processed triplet, the bundle's top-K); ``batch``: images per forward pass;
    ``max_side``: longer side (px) of the working copy given to pose and model; ``conf``:
    triplets scored below are dropped; ``verbs`` / ``objects``: keep only triplets with one
    of these verb / object names (empty: all); both applied before drawing and writing."""

    pose_backend: PoseBackend = "ultralytics"
    pose_file: Path | None = None
    pose_weights: str | None = None
    device: str = "auto"
    top: int = 10
    attention: bool = False
    batch: int = 4
    max_side: int = 2048
    trust_weights: bool = False  # load a pose .pt that is not a known official file (it can run code)
    conf: float = 0.0
    verbs: tuple[str, ...] = ()
    objects: tuple[str, ...] = ()


# ----------------------------------------------------------------------------- pose

PoseFn = Callable[[list[LoadedImage], Counter], PersonArrays]  # raw persons, working px


def ultralytics_pose(weights: str | None, device: str, params_path: Path | None, trust: bool = False) -> PoseFn:
    """YOLO pose on the working copies (settings from params pose.ultralytics; ``trust``: the
    user vouches for a weight file that is not a known official one)."""
    from pipeline.pose_backends import yolo

    cfg = _pose_params(params_path).ultralytics
    cfg = cfg.model_copy(update={"weights": weights or cfg.weights, "device": device,
                                 "trust_weights": trust or cfg.trust_weights})
    if str(cfg.weights).endswith((".yaml", ".yml")):
        warn_untrained(cfg.weights)
    try:
        model, dev = yolo.load_model(cfg)
    except UserError as exc:
        raise UserError(f"{exc}; or skip the pose model: --pose-backend alphapose-file | coco-file | "
                        "persons-table --pose-file PATH (persons from a result file)") from None

    def detect(images: list[LoadedImage], counts: Counter) -> PersonArrays:
        # ultralytics takes numpy images as OpenCV gives them: BGR, contiguous
        bgr = [np.ascontiguousarray(np.asarray(li.image)[..., ::-1]) for li in images]
        return yolo.predict_arrays(model, dev, bgr, [li.source.image_id for li in images], cfg, counts)

    return detect


def warn_untrained(weights: str) -> None:
    """A model .yaml builds the pose network with random weights: say so, loudly (stderr)."""
    bar = "!" * 78
    tqdm.write(f"{bar}\nWARNING: pose weights {weights!r} are a model definition (.yaml): the pose network is\n"
               f"UNTRAINED (random weights). Persons, keypoints and every triplet below are meaningless.\n"
               f"Give trained weights (.pt) with --pose-weights, or a pose file (--pose-backend ...-file).\n{bar}",
               file=sys.stderr)


UNMATCHED = "unmatched: pose-file entries matching no input"


def file_pose(kind: PoseBackend, path: Path | None, sources: list[Source], counts: Counter) -> PoseFn:
    """Persons from a result file (original px), matched to the inputs by file name (COCO:
    integer ids by the number ending the file stem), scaled to the working copies; what the
    file holds that matches no input is counted in ``counts``."""
    if path is None:
        raise UserError(f"--pose-backend {kind} needs --pose-file PATH")
    raw = _file_arrays(kind, path, sources, counts)
    if "skipped: unknown image id" in counts:  # the json readers' name for it
        counts[UNMATCHED] += counts.pop("skipped: unknown image id")

    def detect(images: list[LoadedImage], counts: Counter) -> PersonArrays:
        wanted = {li.source.image_id: li.scale for li in images}
        rows = np.flatnonzero(np.isin(raw.image_id.astype(str), list(wanted)))
        sel = raw.select(rows)
        scale = np.stack([wanted[i] for i in sel.image_id]) if len(rows) else np.ones((0, 2), np.float32)
        return _rescaled(sel, 1.0 / scale)

    return detect


def _file_arrays(kind: PoseBackend, path: Path, sources: list[Source], counts: Counter) -> PersonArrays:
    from pipeline.parts import fixed_list
    from pipeline.pose_backends.alphapose import detector_score
    from pipeline.pose_backends.jsonfile import entries_to_arrays, read_entries
    from pipeline.pose_backends.persons import ImageIndex

    ids = [s.image_id for s in sources]
    if kind == "persons-table":
        t = tables.read_arrow(path, "persons")
        keep = pd.Series(t.column("image_id").to_pylist()).isin(ids).to_numpy()
        if (~keep).sum():
            counts[UNMATCHED] += int((~keep).sum())
        t = t.filter(keep)
        raw = PersonArrays.empty(t.num_rows)
        raw.image_id[:] = t.column("image_id").to_pylist()
        raw.box[:] = np.stack([t.column(c).to_numpy() for c in ("x1", "y1", "x2", "y2")], 1) if t.num_rows else raw.box
        raw.score[:] = t.column("score").to_numpy()
        raw.keypoints[:] = fixed_list(t.column("keypoints")).reshape(-1, 17, 3)
        raw.part_boxes[:] = fixed_list(t.column("part_boxes")).reshape(-1, 10, 4)
        return raw
    index = ImageIndex(pd.DataFrame({"image_id": ids, "file": [s.path.name for s in sources]}), source=str(path))

    def image_of(key: object) -> str | None:
        try:  # COCO files name images by integer id: the number ending the file stem
            return index.lookup(key, "int" if isinstance(key, int) else "file")
        except UserError:  # two inputs share that file name (or number): the entry is ambiguous
            counts["skipped: entry matches several input files"] += 1
            return None

    if kind == "alphapose-file":
        return entries_to_arrays(read_entries(path), image_of, "box", 1, counts, detector_score, str(path))
    return entries_to_arrays(read_entries(path), image_of, "bbox", 1, counts, source=str(path))


def _rescaled(raw: PersonArrays, k: np.ndarray) -> PersonArrays:
    """Coordinates of ``raw`` multiplied by per-row ``k`` [N, 2] = (kx, ky)."""
    out = PersonArrays(raw.image_id, raw.box.copy(), raw.score, raw.keypoints.copy(), raw.part_boxes.copy())
    k4 = np.tile(k, 2)  # [N, 4]
    out.box *= k4
    out.part_boxes *= k4[:, None, :]
    out.keypoints[..., :2] *= k[:, None, :]
    return out


def _pose_params(params_path: Path | None):  # -> pipeline.pose.PoseConfig (imports every backend)
    from pipeline.params import section
    from pipeline.pose import PoseConfig

    return section("pose", PoseConfig, params_path) if params_path and Path(params_path).exists() else PoseConfig()


def _parts_params(params_path: Path | None) -> PartsConfig:
    from pipeline.params import section

    return section("parts", PartsConfig, params_path) if params_path and Path(params_path).exists() else PartsConfig()


@dataclass
class Persons:
    """Persons of one image in working px: boxes [P, 4], keypoints [P, 17, 3] (NaN: none),
    HAKE part boxes [P, 10, 4]."""

    boxes: np.ndarray
    keypoints: np.ndarray
    part_boxes: np.ndarray


def persons_and_parts(raw: PersonArrays, images: list[LoadedImage], parts_cfg: PartsConfig, backend: str,
                      counts: Counter) -> dict[str, Persons]:
    """Clean raw persons (clip, drop unusable; records.to_persons) and add the ten part boxes
    (pipeline.parts core), vectorised over every person of the batch."""
    from pipeline.parts import PersonArrays as PartInput
    from pipeline.parts import person_parts

    frame = pd.DataFrame({"image_id": [li.source.image_id for li in images],
                          "width": [li.image.width for li in images], "height": [li.image.height for li in images]})
    persons = to_persons(raw, frame, backend, counts)
    p = PartInput.from_frame(persons)
    ids = np.asarray(p.names.to_pylist(), dtype=object)[p.image] if len(p.image) else np.zeros(0, object)
    wh = frame.set_index("image_id").reindex(ids)[["width", "height"]].to_numpy(np.float32)
    boxes, _ = person_parts(p.keypoints, p.given, p.body, wh[:, 0], wh[:, 1], parts_cfg)
    out = {}
    for li in images:
        rows = ids == li.source.image_id
        out[li.source.image_id] = Persons(p.body[rows], p.keypoints[rows], boxes[rows])
    return out


# ----------------------------------------------------------------------------- model


@dataclass
class Networks:
    """Both networks of a bundle and what inference needs around them."""

    stage1: torch.nn.Module
    stage2: torch.nn.Module
    fmt: str
    post: PostProcess  # the bundle's label space and NIS settings
    augment: AugmentConfig  # evaluation sizes of training
    stride: int
    rule: str
    device: torch.device


def resolve_device(device: str) -> torch.device:
    """``--device`` checked (pipeline.params.check_device) and resolved (cuda:N honoured)."""
    from model.distributed import pick_device
    from pipeline.params import check_device

    try:
        check_device(device)
    except ValueError as exc:
        raise UserError(f"--device: {exc}") from None
    return pick_device(device)


def load_networks(path: Path, device: torch.device) -> Networks:
    """The bundle's two networks in eval mode on ``device``, its label space, NIS settings
    (decision 2) and the evaluation transform sizes of training."""
    from model.bundle_file import load_bundle, network, postprocess_config
    from model.label_space import LabelSpace

    b = load_bundle(path)
    ck1, ck2 = b["stage1"], b["stage2"]
    labels = LabelSpace.from_dict(ck1["labels"])
    mcfg = ck1.get("model_config") or ck1["model_spec"]["config"]
    augment = AugmentConfig.model_validate((ck2.get("train_config") or {}).get("augment", {}))
    return Networks(network(ck1).to(device), network(ck2).to(device), labels.format,
                    PostProcess(labels, postprocess_config(b)), augment, int(mcfg.get("stride", 32)),
                    str(mcfg.get("mask_rule", "touch")), device)


def model_sample(image: Image.Image, part_boxes: np.ndarray, transforms: Callable,
                 num_verbs: int) -> tuple[torch.Tensor, dict]:
    """(input tensor, target) of one image through the evaluation transforms: no pairs, the
    persons' part boxes (working px) moved with the resize."""
    valid = part_box_valid(part_boxes, image.width, image.height)
    target = {"sub_boxes": np.zeros((0, 4), np.float32), "obj_boxes": np.zeros((0, 4), np.float32),
              "has_obj": np.zeros(0, bool), "obj_labels": np.zeros(0, np.int64),
              "verbs": np.zeros((0, num_verbs), np.float32), "interactive": np.zeros(0, np.float32),
              "part_boxes": part_boxes.astype(np.float32), "part_valid": valid, "size": (image.height, image.width)}
    return transforms(image, target, np.random.default_rng(0))  # evaluation chain: no randomness


@torch.no_grad()
def infer(nets: Networks, images: list[LoadedImage], persons: dict[str, Persons],
          attention: bool) -> tuple[pd.DataFrame, dict[str, Attention]]:
    """Both networks on a batch, post-processed (NIS, pair NMS, top-K) -> predictions rows
    with boxes in original px, and (with ``attention``) the Fig. 4 material per image."""
    from model.collate import Collate
    from model.transforms import make_transforms

    transforms = make_transforms(nets.augment, train=False)
    samples = [model_sample(li.image, persons[li.source.image_id].part_boxes, transforms, len(nets.post.space.verb_ids))
               for li in images]
    batch = Collate(nets.stride, nets.rule)(samples).to(nets.device)
    o1 = nets.stage1(batch.images, batch.pixel_mask, batch.part_masks, return_attention=attention)
    o2 = nets.stage2(batch.images, batch.pixel_mask, None)
    ids = [li.source.image_id for li in images]
    sizes = torch.tensor([[li.image.height, li.image.width] for li in images], device=nets.device)
    frame = nets.post.finalize(nets.post.candidates(o2, o1, sizes, ids))
    frame = to_original_pixels(frame, {li.source.image_id: li.scale for li in images})
    att = attention_material(o1, o2, batch, sizes, ids, [s[1]["size"] for s in samples]) if attention else {}
    return frame, att


def to_original_pixels(frame: pd.DataFrame, scales: dict[str, np.ndarray]) -> pd.DataFrame:
    """Predictions boxes from working px to the displayed original's px."""
    if frame.empty:
        return frame
    k = np.stack([scales[i] for i in frame["image_id"]])  # [N, 2]
    for cols in (("hx1", "hy1", "hx2", "hy2"), ("ox1", "oy1", "ox2", "oy2")):
        frame[list(cols)] = (frame[list(cols)].to_numpy(np.float32) * np.tile(k, 2)).astype(np.float32)
    return frame


def attention_material(o1: dict, o2: dict, batch, sizes: torch.Tensor, ids: list[str],
                       input_sizes: list) -> dict[str, Attention]:
    """Split the stage-1 attention outputs per image (see :class:`Attention`)."""
    from model.postprocess import boxes_to_pixels, match_stage1

    if "attention" not in o1:
        return {}
    px = lambda out, key: boxes_to_pixels(out[key].float(), sizes)  # noqa: E731
    match = match_stage1(px(o2, "pred_sub_boxes"), px(o2, "pred_obj_boxes"), px(o1, "pred_sub_boxes"),
                         px(o1, "pred_obj_boxes")).cpu().numpy()
    np_ = lambda t: t.detach().float().cpu().numpy()  # noqa: E731
    w, v = np_(o1["attention"]["weights"]), o1["attention"]["visible"].cpu().numpy()
    parts, inter = np_(o1["pred_part_scores"]), np_(o1["pred_int_logits"].sigmoid())
    sel = o1["part_selected"].cpu().numpy() if "part_selected" in o1 else None
    masks = batch.part_masks.cpu().numpy()
    return {i: Attention(masks[b], w[:, b], v[:, b], match[b], parts[b], None if sel is None else sel[b], inter[b],
                         tuple(int(s) for s in input_sizes[b])) for b, i in enumerate(ids)}


# ----------------------------------------------------------------------------- run


@dataclass
class Context:
    """Everything a batch needs: networks, pose, parts params, options, output folder."""

    nets: Networks
    pose: PoseFn
    parts_cfg: PartsConfig
    options: PredictOptions
    out: Path
    pose_counts: Counter = field(default_factory=Counter)


def process(chunk: list[Source], ctx: Context) -> list[ImageResult]:
    """One batch: load, pose + parts, both networks on the images with persons, PNGs."""
    loaded: list[LoadedImage] = []
    results: dict[str, ImageResult] = {}
    for s in chunk:
        try:
            loaded.append(load_image(s, ctx.options.max_side))
        except ImageError as exc:
            results[s.image_id] = ImageResult(s, "error", str(exc))
            tqdm.write(f"predict: skipped {exc}")
    if loaded:
        raw = ctx.pose(loaded, ctx.pose_counts)
        in_file = set(raw.image_id.astype(str)) if ctx.options.pose_backend != "ultralytics" else None
        persons = persons_and_parts(raw, loaded, ctx.parts_cfg, ctx.options.pose_backend, ctx.pose_counts)
        busy = [li for li in loaded if len(persons[li.source.image_id].boxes)]
        frame, att = (tables.empty("predictions"), {})
        if busy:  # images without a person skip the networks: no detections by definition
            frame, att = infer(ctx.nets, busy, persons, ctx.options.attention)
            frame = select_triplets(frame, ctx.nets.fmt, ctx.options)
        by_image = dict(tuple(frame.groupby("image_id", sort=False))) if len(frame) else {}
        for li in loaded:
            missing = in_file is not None and li.source.image_id not in in_file
            results[li.source.image_id] = finish(li, persons[li.source.image_id], by_image, att, ctx, missing)
    return [results[s.image_id] for s in chunk]


def finish(li: LoadedImage, persons: Persons, by_image: dict, att: dict[str, Attention], ctx: Context,
           not_in_file: bool = False) -> ImageResult:
    """The result of one loaded image, and its PNG(s). ``not_in_file``: a pose file has no
    entry for the image (status ``no_pose_entry``, not ``no_person``)."""
    image_id = li.source.image_id
    n = len(persons.boxes)
    dets = by_image.get(image_id, tables.empty("predictions")).reset_index(drop=True)
    status = "ok" if n else "no_pose_entry" if not_in_file else "no_person"
    message = ("" if n else "the pose file has no entry for this image (names must match): no detections"
               if not_in_file else "no person found by the pose backend: no detections")
    res = ImageResult(li.source, status, message, li.orig_hw, li.notes, n, dets)
    fmt, top = ctx.nets.fmt, ctx.options.top
    save_png(detection_png(li, res, fmt, top), ctx.out / "images" / f"{image_id}.png")
    if image_id in att:
        save_png(attention_png(li, att[image_id], dets, fmt, top), ctx.out / "attention" / f"{image_id}.png")
    return res


def make_pose(options: PredictOptions, sources: list[Source], params_path: Path | None, counts: Counter) -> PoseFn:
    if options.pose_backend == "ultralytics":
        return ultralytics_pose(options.pose_weights, options.device, params_path, options.trust_weights)
    if options.pose_backend not in ("alphapose-file", "coco-file", "persons-table"):
        raise UserError(f"--pose-backend {options.pose_backend}: expected ultralytics, alphapose-file, "
                        "coco-file or persons-table")
    return file_pose(options.pose_backend, options.pose_file, sources, counts)


def chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def summarise(results: list[ImageResult], pose_counts: Counter) -> dict:
    """Counts for the JSON file and the console."""
    status = Counter(r.status for r in results)
    notes = [n for r in results for n in r.notes]
    return {"inputs": len(results), "ok": status["ok"], "no_person": status["no_person"],
            "no_pose_entry": status["no_pose_entry"],
            "unreadable": status["error"],
            "with_detections": sum(r.detections is not None and len(r.detections) > 0 for r in results),
            "triplets": sum(0 if r.detections is None else len(r.detections) for r in results),
            "persons": sum(r.persons for r in results),
            "exif_rotated": sum("EXIF" in n for n in notes), "reduced": sum(n.startswith("reduced") for n in notes),
            "converted_to_rgb": sum(not n.startswith(("EXIF", "reduced")) for n in notes),
            "pose": {k: int(v) for k, v in sorted(pose_counts.items())}}


def write_outputs(out: Path, results: list[ImageResult], nets: Networks, bundle: Path, options: PredictOptions,
                  pose_counts: Counter) -> dict:
    """OUT/predictions.parquet and OUT/predictions.json (atomic); returns the summary."""
    frames = [r.detections for r in results if r.detections is not None and len(r.detections)]
    preds = pd.concat(frames, ignore_index=True) if frames else tables.empty("predictions")
    tables.write(preds, "predictions", out / "predictions.parquet")
    summary = summarise(results, pose_counts)
    doc = {"bundle": str(bundle), "pose_backend": options.pose_backend, "nis": nets.post.cfg.model_dump(mode="json"),
           "filters": {"conf": options.conf, "verbs": list(options.verbs), "objects": list(options.objects)},
           "summary": summary, "images": [result_entry(r, nets.fmt) for r in results]}
    tables.atomic_write(out / "predictions.json", lambda tmp: tmp.write_text(json.dumps(doc, indent=1) + "\n"))
    return summary


def run(inputs: Sequence[Path], bundle: Path, out: Path, options: PredictOptions = PredictOptions(),
        params_path: Path | None = Path("params.yaml"), exist_ok: bool = False) -> dict:
    """Predict on ``inputs`` (files and/or folders) into a fresh run folder (:func:`run_folder`);
    returns the summary counts, with the folder under ``out``."""
    sources, missing = discover(inputs)
    if not sources:
        raise UserError("no image files found in " + ", ".join(map(str, inputs)))
    device = resolve_device(options.device)
    nets = load_networks(bundle, device)
    check_filters(options, nets.fmt, nets.post.space)
    pose_counts: Counter = Counter()
    pose = make_pose(options, sources, params_path, pose_counts)
    out = run_folder(Path(out), exist_ok)
    ctx = Context(nets, pose, _parts_params(params_path), options, out, pose_counts)
    results = [ImageResult(Source(m.stem, m), "error", f"{m}: no such file or folder") for m in missing]
    command = f"predict {' '.join(map(str, inputs))} --checkpoint {bundle} --out {out} ({options})"
    with run_log(out / "predict.log", [out], out / "predictions.json", command):
        note(f"{len(sources)} image file(s), bundle {bundle}, pose {options.pose_backend}, device {device}")
        with bar(total=len(sources), desc="predict", unit="img") as progress:
            for chunk in chunks(sources, options.batch):
                results += process(chunk, ctx)
                progress.update(len(chunk))
        summary = write_outputs(out, results, nets, bundle, options, ctx.pose_counts)
    report(summary, results, device, out)
    return {**summary, "out": str(out)}


def report(summary: dict, results: list[ImageResult], device: torch.device, out: Path) -> None:
    """The run's counts on the console (stdout)."""
    print(f"predict: {summary['inputs']} input(s) on {device} -> {out}: {summary['ok']} with persons "
          f"({summary['with_detections']} with detections, {summary['triplets']} triplets), "
          f"{summary['no_person']} without a person, {summary['unreadable']} unreadable")
    if summary["no_pose_entry"]:
        print(f"  inputs the pose file has no entry for: {summary['no_pose_entry']} (file names must match)")
    for key, n in summary["pose"].items():
        if key.startswith("unmatched"):
            print(f"  {key}: {n}")
    for key in ("exif_rotated", "converted_to_rgb", "reduced"):
        if summary[key]:
            print(f"  {key}: {summary[key]}")
    for r in results:
        if r.status == "error":
            print(f"  unreadable: {r.message}")
