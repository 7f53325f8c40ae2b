"""Command line of the BPM pipeline: one command per DVC stage, plus inspection tools.

This module only parses arguments and calls the stage's ``run()``; the work lives in
``pipeline/`` and ``model/``. A user's data or configuration mistake (``UserError``) is printed
as one line and exits with status 2.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from pipeline.errors import UserError, one_line

app = typer.Typer(
    help="BPM: body-part interactiveness HOI detection, stage by stage (see README.md).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ParamsOpt = Annotated[Path, typer.Option("--params", help="params.yaml to read the stage's section from.")]
F = TypeVar("F", bound=Callable)


def user_errors(fn: F) -> F:
    """Turn a UserError into one line on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            typer.echo(f"error: {one_line(str(exc))}", err=True)  # exactly one line, whatever the data
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


@app.command()
@user_errors
def synth(
    params: ParamsOpt = Path("params.yaml"),
    out: Annotated[Path, typer.Option(help="Output folder of the synthetic dataset.")] = Path("data/raw/synthetic"),
) -> None:
    """Generate the built-in synthetic HOI dataset (params: seed, synth).

    Writes, deterministically from the seed, JPEG images and annotations in the exact on-disk
    formats of the real datasets: OUT/hico_20160224_det (PPDM/QPIC HICO-DET files),
    OUT/v-coco (QPIC V-COCO files plus the official V-COCO evaluation files), each with a
    simulated AlphaPose result file (alphapose-results.json).
    """
    from pipeline import synth as stage

    stage.run(params, out)


@app.command()
@user_errors
def ingest(
    params: ParamsOpt = Path("params.yaml"),
    out: Annotated[Path, typer.Option(help="Folder for the parquet tables.")] = Path("data/processed"),
    report: Annotated[Path, typer.Option(help="Summary JSON (DVC metrics).")] = Path("reports/ingest.json"),
) -> None:
    """Read the dataset named in params (dataset: format, root) into parquet tables.

    Inputs: a HICO-DET (PPDM/QPIC json) or V-COCO (QPIC json) directory, real or synthetic.
    Outputs: OUT/images.parquet, OUT/instances.parquet, OUT/pairs.parquet and REPORT
    (records read, written, skipped by reason). Params: dataset, ingest.
    """
    from pipeline import ingest as stage

    stage.run(params, out, report)


@app.command()
@user_errors
def scenes(
    params: ParamsOpt = Path("params.yaml"),
    data: Annotated[Path, typer.Option(help="Folder of the input tables.")] = Path("data/processed"),
    out: Annotated[Path, typer.Option(help="Scenes table to write.")] = Path("data/processed/scenes.parquet"),
    report: Annotated[Path, typer.Option(help="Summary JSON (DVC metrics).")] = Path("reports/scenes.json"),
) -> None:
    """Per-image scene statistics, the sparse/crowded, normal/tiny and less/more-occlusion
    splits, and the sparsity-adaptive sampling weights (params: scenes, train.alpha).

    Inputs: DATA/{images,instances,pairs,persons,parts}.parquet. Outputs: OUT (one row per
    image) and REPORT (counts and shares per split, flat keys like test/crowded/share).
    """
    from pipeline import scenes as stage

    stage.run(params, data, out, report)


class ReportFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


class ReportName(str, Enum):
    splits = "splits"
    distribution = "distribution"
    hoi = "hoi"


@app.command("inspect")
@user_errors
def inspect_scenes(
    scenes: Annotated[Path, typer.Option(help="Scenes table.")] = Path("data/processed/scenes.parquet"),
    pairs: Annotated[Path, typer.Option(help="Pairs table (for the hoi report).")] = Path("data/processed/pairs.parquet"),
    group_by: Annotated[list[str] | None, typer.Option("--group-by", help="Scenes column to group by (repeatable; default split).")] = None,
    query: Annotated[str | None, typer.Option(help="pandas query filtering the scenes rows, e.g. \"split == 'test' and persons >= 3\".")] = None,
    format: Annotated[ReportFormat, typer.Option("--format", help="Output format.")] = ReportFormat.table,
    hist: Annotated[Path | None, typer.Option(help="Folder to write PNG histograms to.")] = None,
    top: Annotated[int, typer.Option(min=1, help="HOI categories per group in the hoi report.")] = 10,
    report: Annotated[list[ReportName] | None, typer.Option("--report", help="Report to show (repeatable; default all).")] = None,
) -> None:
    """Statistics of the scenes table: crowded / tiny / occluded images per split, persons and
    interactive pairs per image in sparse vs crowded scenes, the most frequent HOI categories
    in crowded scenes. CSV with several reports: '# report: NAME' blocks."""
    from pipeline import scene_report

    names = [r.value for r in report] if report else None
    scene_report.run(scenes, pairs, group_by, query, format.value, hist, top, names)


@app.command()
@user_errors
def pose(
    params: ParamsOpt = Path("params.yaml"),
    images: Annotated[Path, typer.Option(help="Images table (from ingest).")] = Path("data/processed/images.parquet"),
    out: Annotated[Path, typer.Option(help="Persons table to write.")] = Path("data/processed/persons.parquet"),
    shards: Annotated[Path, typer.Option(help="Folder of resumable result shards (ultralytics).")] = Path("data/interim/pose_shards"),
    report: Annotated[Path, typer.Option(help="Summary JSON (DVC metrics).")] = Path("reports/pose.json"),
    limit: Annotated[int | None, typer.Option(min=1, help="Process at most this many new images (per rank), then stop; rerun to continue.")] = None,
) -> None:
    """Detect persons and their COCO-17 keypoints (params: dataset, pose).

    Backends (pose.backend): ultralytics (YOLO pose on the images; resumable, and sharded across
    ranks under torchrun), alphapose (alphapose-results.json), coco (COCO keypoint results),
    official (the authors' part-box pickles). Outputs: OUT (one row per person) and REPORT.
    """
    from pipeline import pose as stage

    stage.run(params, images, out, shards, report, limit)


@app.command()
@user_errors
def parts(
    params: ParamsOpt = Path("params.yaml"),
    persons: Annotated[Path, typer.Option(help="Persons table (from pose).")] = Path("data/processed/persons.parquet"),
    images: Annotated[Path, typer.Option(help="Images table (image sizes for clipping).")] = Path("data/processed/images.parquet"),
    out: Annotated[Path, typer.Option(help="Parts table to write.")] = Path("data/processed/parts.parquet"),
    report: Annotated[Path, typer.Option(help="Summary JSON (DVC metrics).")] = Path("reports/parts.json"),
) -> None:
    """Ten HAKE body-part boxes per person from its keypoints (params: parts).

    HAKE's rule: squares centred on joints, side = torso length x relative size; limb-length
    rule when the torso is unreliable; whole-body box as the fallback. Part boxes given by the
    pose source (official files) are kept. Outputs: OUT (ten rows per person) and REPORT.
    """
    from pipeline import parts as stage

    stage.run(params, persons, images, out, report)


@app.command()
@user_errors
def train(
    stage: Annotated[int, typer.Option("--stage", min=1, max=2, help="1: boxes + interactiveness; 2: boxes + verbs.")] = 1,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from models/stageN-last.pt (same params).")] = False,
    params: ParamsOpt = Path("params.yaml"),
    data: Annotated[Path, typer.Option(help="Folder of the input tables.")] = Path("data/processed"),
    models: Annotated[Path, typer.Option(help="Folder of the checkpoints.")] = Path("models"),
    reports: Annotated[Path, typer.Option(help="Folder of curves and summaries.")] = Path("reports"),
) -> None:
    """Train one stage of the network (params: train, model, dataset, seed).

    Inputs: DATA/{images,instances,pairs,parts,scenes}.parquet and the images under
    dataset.root (stage 2 with train.stage2_init=stage1 also MODELS/stage1.pt). Outputs:
    MODELS/stageN.pt (selected on a validation split carved from the training images),
    MODELS/stageN-last.pt (resume state), REPORTS/train/stageN/ (dvclive curves) and
    REPORTS/train_stageN.json. Several processes: torchrun --nproc_per_node K cli.py train.
    """
    from pipeline import train as stage_

    stage_.run(params, stage, resume, data, models, reports)


@app.command()
@user_errors
def bundle(
    params: ParamsOpt = Path("params.yaml"),
    models: Annotated[Path, typer.Option(help="Folder holding stage1.pt and stage2.pt.")] = Path("models"),
    data: Annotated[Path, typer.Option(help="Folder of the input tables.")] = Path("data/processed"),
    out: Annotated[Path | None, typer.Option(help="Bundle file (default MODELS/bundle.pt).")] = None,
    report: Annotated[Path, typer.Option(help="Summary JSON (DVC metrics).")] = Path("reports/bundle.json"),
) -> None:
    """Pack both trained networks and the NIS settings into one file (params: postprocess).

    NIS's threshold is chosen on the validation images carved from the training split (HICO-DET:
    best HOI mAP; V-COCO: best interactiveness F1). Inputs: MODELS/stage1.pt, MODELS/stage2.pt,
    DATA tables and images. Outputs: OUT and REPORT.
    """
    from pipeline import bundle as stage_

    stage_.run(params, models, data, out, report)


data_app = typer.Typer(
    help="Real datasets and other methods' files: verify, fetch, convert, export, import (README, 'Real data').",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")


class DataFormat(str, Enum):
    hico_det = "hico-det"
    v_coco = "v-coco"


class BoxShift(str, Enum):
    none = "none"
    minus_one = "minus-one"


class PredsFormat(str, Enum):
    qpic = "qpic"
    bpm_binary = "bpm-binary"
    vcoco_pickle = "vcoco-pickle"
    hico_mat = "hico-mat"


ImagesOpt = Annotated[Path, typer.Option(help="Images table whose test split lists the images (sorted).")]
ImageListOpt = Annotated[Path | None, typer.Option(help="Text file of test image ids or file names, one per line, in order.")]
AnnoMatOpt = Annotated[Path | None, typer.Option(help="HICO-DET anno.mat: its list_test gives the official image order.")]


@data_app.command("verify")
@user_errors
def data_verify(
    format: Annotated[DataFormat, typer.Argument(help="Dataset format.")],
    root: Annotated[Path, typer.Argument(help="Dataset folder, e.g. data/raw/hico_20160224_det or data/raw/v-coco.")],
    sample: Annotated[int, typer.Option(min=0, help="Images per split whose size is checked (0 = all).")] = 200,
    official: Annotated[bool, typer.Option(help="Compare counts and checksums with the official release; --no-official for subsets and the synthetic data.")] = True,
    decode: Annotated[bool, typer.Option(help="Decode the checked images fully (catches truncated files).")] = False,
) -> None:
    """Check a dataset folder against the official release; exit status 1 on problems.

    Expected files and folders, image counts per split against the annotations and the official
    figures, known checksums ('unknown, not checked' otherwise), image sizes against the
    annotations. Prints each problem with its fix; exit status 0 when all is in order."""
    from pipeline.interop import verify

    raise typer.Exit(verify.run(format.value, root, sample, official, decode))


@data_app.command("fetch")
@user_errors
def data_fetch(
    names: Annotated[list[str] | None, typer.Argument(help="Files to fetch (names from --list).")] = None,
    dataset: Annotated[str | None, typer.Option(help="Fetch every known file of hico-det | v-coco | models.")] = None,
    root: Annotated[Path | None, typer.Option(help="Dataset folder (default data/raw/hico_20160224_det or data/raw/v-coco).")] = None,
    list_files: Annotated[bool, typer.Option("--list", help="List the known files and their sources, then stop.")] = False,
    force: Annotated[bool, typer.Option(help="Replace a present file whose content does not match.")] = False,
    extract: Annotated[bool, typer.Option(help="Unpack archives (COCO zips) after download.")] = True,
) -> None:
    """Download the files that have stable public sources, checked and resumable.

    An interrupted download continues from its .part file; files are checked against
    data/labels/checksums.json; archives are unpacked. Files without such a source (HICO-DET)
    are explained instead."""
    from pipeline.interop import fetch

    if list_files:
        rows = fetch.listing()
        widths = [max(len(r[k]) for r in rows) + 2 for k in range(3)]
        for row in rows:
            typer.echo("".join(f"{v:<{w}}" for v, w in zip(row, widths, strict=False)) + row[3])
        return
    fetch.run(names or [], dataset, root, force, extract)


@data_app.command("convert-hico")
@user_errors
def data_convert_hico(
    root: Annotated[Path, typer.Argument(help="HICO-DET folder (hico_20160224_det) holding anno_bbox.mat and anno.mat.")],
    anno_bbox: Annotated[Path | None, typer.Option(help="anno_bbox.mat (default ROOT/anno_bbox.mat).")] = None,
    anno: Annotated[Path | None, typer.Option(help="anno.mat for the image-level labels (default ROOT/anno.mat when present).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default ROOT/annotations).")] = None,
) -> None:
    """HICO-DET's official .mat files -> the PPDM/QPIC annotation files ingest reads.

    anno_bbox.mat (+ anno.mat) -> annotations/trainval_hico.json, test_hico.json,
    corre_hico.npy and image_labels.parquet (image-level labels, Known Object)."""
    from pipeline.interop import hico_convert

    anno = anno if anno is not None else (root / "anno.mat" if (root / "anno.mat").exists() else None)
    hico_convert.run(anno_bbox or root / "anno_bbox.mat", anno, out or root / "annotations")


@data_app.command("build-vcoco")
@user_errors
def data_build_vcoco(
    root: Annotated[Path, typer.Argument(help="V-COCO folder holding data/vcoco/*.json and data/splits/*.ids.")],
    coco_annotations: Annotated[Path | None, typer.Option(help="Folder of COCO's instances_train2014.json and instances_val2014.json (default ROOT/coco/annotations).")] = None,
    prior: Annotated[Path | None, typer.Option(help="VSGNet's prior.pickle, for QPIC's exact corre_vcoco.npy (else derived from trainval).")] = None,
) -> None:
    """V-COCO's official files + COCO 2014 annotations -> what ingest and the evaluation read.

    Writes data/instances_vcoco_all_2014.json (as script_pick_annotations.py does),
    annotations/trainval_vcoco.json, test_vcoco.json and corre_vcoco.npy (QPIC's layout).
    Python 3 only, no compiled helpers."""
    from pipeline.interop import vcoco_build

    vcoco_build.run(root, coco_annotations, prior)


@data_app.command("export-hico-mat")
@user_errors
def data_export_hico_mat(
    predictions: Annotated[Path, typer.Argument(help="Predictions table (parquet).")],
    out: Annotated[Path, typer.Argument(help="Folder for detections_01.mat .. detections_80.mat.")],
    images: ImagesOpt = Path("data/processed/images.parquet"),
    image_list: ImageListOpt = None,
    anno_mat: AnnoMatOpt = None,
    cap: Annotated[int, typer.Option(min=0, help="Detections kept per HOI class, best first (0 = all).")] = 19_999,
    round_boxes: Annotated[bool, typer.Option("--round/--no-round", help="Round boxes as MATLAB round() does, like the usual conversion.")] = True,
    shift: Annotated[BoxShift, typer.Option(help="none: write boxes as they are (ho-rcnn then adds 1, the usual route); minus-one: subtract 1 so the evaluator sees our exact boxes.")] = BoxShift.none,
) -> None:
    """Predictions -> the official HICO-DET MATLAB evaluation input (detections_XX.mat).

    ho-rcnn eval_one.m, object mode: per-object all_boxes cell arrays (HOIs x test images),
    N x 9 [human box, object box, score]; top 19,999 per HOI, rounded, as the usual route."""
    from pipeline.interop import export_hico
    from pipeline.interop.image_keys import test_image_ids

    ids = test_image_ids(images, image_list, anno_mat)
    if ids is None:
        raise UserError(f"{images}: not found; give the test images with --images, --image-list or --anno-mat")
    export_hico.run(predictions, ids, out, cap, round_boxes, shift.value)


@data_app.command("export-vcoco")
@user_errors
def data_export_vcoco(
    predictions: Annotated[Path, typer.Argument(help="Predictions table (parquet) of a V-COCO run.")],
    out: Annotated[Path, typer.Argument(help="Detection pickle to write.")],
) -> None:
    """Predictions -> the official V-COCO detection pickle (vsrl_eval.py).

    One dict per pair with image_id, person_box, every <action>_agent and <action>_<role> key;
    pickle protocol 2."""
    from pipeline.interop import vcoco_pickle

    vcoco_pickle.run(predictions, out)


@data_app.command("import-preds")
@user_errors
def data_import_preds(
    format: Annotated[PredsFormat, typer.Argument(help="qpic (QPIC/CDN/GEN-VLKT json, CDN repr or pkl) | bpm-binary (the paper's bst_result_binary.pkl) | vcoco-pickle | hico-mat (folder of detections_XX.mat).")],
    source: Annotated[Path, typer.Argument(help="File (or folder, hico-mat) to import.")],
    out: Annotated[Path, typer.Argument(help="Parquet table to write (pair_predictions for bpm-binary).")],
    dataset: Annotated[DataFormat, typer.Option(help="Dataset the predictions are for.")] = DataFormat.hico_det,
    annotations: Annotated[Path | None, typer.Option(help="qpic: annotation json (test_hico.json) naming entries that carry no file name, by position.")] = None,
    images: ImagesOpt = Path("data/processed/images.parquet"),
    image_list: ImageListOpt = None,
    anno_mat: AnnoMatOpt = None,
    hoi_category: Annotated[str, typer.Option(help="qpic, HICO-DET: hoi_prediction category_id is a 0-based 'verb' (QPIC, CDN) or 'hoi' index (GEN-VLKT).")] = "verb",
    object_ids: Annotated[str, typer.Option(help="qpic: object category_id is 'contiguous' (0..79, QPIC/CDN) or 'coco'.")] = "contiguous",
    shift: Annotated[BoxShift, typer.Option(help="hico-mat: the shift the files were written with.")] = BoxShift.none,
) -> None:
    """Other methods' result files -> our predictions table, for side-by-side scoring.

    Pickles are read with the restricted unpickler and CDN's repr dumps are parsed, never
    evaluated: nothing in a file is executed."""
    from pipeline.interop import import_preds
    from pipeline.interop.image_keys import test_image_ids
    from pipeline.readers.records import read_split

    names = read_split(annotations).records["file_name"].tolist() if annotations else None
    ids = test_image_ids(images, image_list, anno_mat)
    import_preds.run(format.value, source, out, dataset.value, ids, names, hoi_category, object_ids, shift.value)


weights_app = typer.Typer(
    help="Initial weights from public checkpoints: COCO DETR-R50 -> model.pretrained (README, 'Real data').",
    no_args_is_help=True,
)
app.add_typer(weights_app, name="weights")


@weights_app.command("import-detr")
@user_errors
def weights_import_detr(
    checkpoint: Annotated[Path, typer.Argument(help="DETR checkpoint, e.g. models/pretrained/detr-r50-e632da11.pth (data fetch detr-r50-e632da11.pth).")],
    out: Annotated[Path | None, typer.Option(help="Converted weights to write, then model.pretrained (default models/pretrained/detr-r50-bpm-FORMAT.pt, FORMAT = dataset.format).")] = None,
    report: Annotated[Path, typer.Option(help="JSON report: loaded / skipped (with reasons) / initialised tensors per stage and module.")] = Path("reports/import_detr.json"),
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="Check the file's SHA-256 first; --no-verify for other DETR-style checkpoints (reported as skipped).")] = True,
    sha256: Annotated[str | None, typer.Option("--sha256", help="Expected SHA-256 (64 hex digits) of another checkpoint; default: the catalog's DETR-R50 digest.")] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """COCO DETR-R50 checkpoint -> both stages' initial weights (params: model, dataset, seed).

    Verifies the checksum (data/labels/checksums.json) before anything else, reads the file
    with weights-only loading, maps it onto the stage-1 and stage-2 networks of the params as
    QPIC/CDN do (backbone, input projection, encoder, decoder -> box and verb decoders, first
    N_q queries, bbox head -> human and object heads, class rows of the HOI objects) and writes
    the mapped tensors atomically to OUT, usable as model.pretrained, with REPORT."""
    from pipeline.interop import detr_weights

    detr_weights.run(checkpoint, out, report, params, sha256, skip_verify=not verify)


class PredictPose(str, Enum):
    ultralytics = "ultralytics"
    alphapose_file = "alphapose-file"
    coco_file = "coco-file"
    persons_table = "persons-table"


@app.command()
@user_errors
def predict(
    images: Annotated[list[Path], typer.Argument(help="Image files and/or folders (searched recursively).")],
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="Inference bundle (both stages + NIS settings).")] = Path("models/bundle.pt"),
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("reports/predict"),
    pose_backend: Annotated[PredictPose, typer.Option("--pose-backend", help="Where persons and keypoints come from.")] = PredictPose.ultralytics,
    pose_file: Annotated[Path | None, typer.Option("--pose-file", help="Result file of the file backends (AlphaPose / COCO json, persons parquet).")] = None,
    pose_weights: Annotated[str | None, typer.Option("--pose-weights", help="Ultralytics weights (.pt, official name, or .yaml); default params pose.ultralytics.weights.")] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N (pose and model).")] = "auto",
    top: Annotated[int, typer.Option(min=1, help="Triplets drawn per image (the files keep all post-processed ones).")] = 10,
    attention: Annotated[bool, typer.Option("--attention", help="Also draw body-part saliency maps and masked-decoder attention (Fig. 4).")] = False,
    batch: Annotated[int, typer.Option(min=1, help="Images per forward pass.")] = 4,
    max_side: Annotated[int, typer.Option("--max-side", min=64, help="Longer side (px) of the copy given to pose and model; boxes stay in original pixels.")] = 2048,
    trust_weights: Annotated[bool, typer.Option("--trust-weights", help="Load a pose .pt that is not a known official file (ultralytics unpickles it: it can run code).")] = False,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """HOI triplets on any image(s): pose -> part boxes -> both trained networks -> NIS + pair NMS.

    Outputs: OUT/predictions.parquet (predictions schema, boxes in original pixels),
    OUT/predictions.json (per image: status, conversions, detections with names),
    OUT/images/ID.png (top triplets) and with --attention OUT/attention/ID.png. Unreadable
    files and images without persons are reported and counted, never fatal. Params: pose
    (ultralytics settings), parts.
    """
    from pipeline import predict as stage

    options = stage.PredictOptions(pose_backend.value, pose_file, pose_weights, device, top, attention, batch, max_side,
                                   trust_weights=trust_weights)
    stage.run(images, checkpoint, out, options, params)


@app.command()
@user_errors
def show(
    image_id: Annotated[str, typer.Argument(help="image_id (file stem) from the images table.")],
    split: Annotated[str | None, typer.Option(help="Require the image to be in this split (train | test).")] = None,
    augment: Annotated[bool, typer.Option("--augment/--no-augment", help="Training transforms (random) or the evaluation ones.")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the augmentation draw.")] = 0,
    params: ParamsOpt = Path("params.yaml"),
    data: Annotated[Path, typer.Option(help="Folder of the parquet tables.")] = Path("data/processed"),
    out: Annotated[Path | None, typer.Option(help="PNG to write (default reports/show/IMAGE_ID.png).")] = None,
) -> None:
    """Draw one dataset image as the training data path sees it: annotated pairs with verb
    names, pose skeletons, the 10 part boxes, and the network input after the transforms with
    its boxes and the 6 rasterised part masks (params: dataset, train.augment, model)."""
    from pipeline import show as stage

    stage.run(image_id, split, augment, seed, params, data, out)


@app.command()
@user_errors
def evaluate(
    params: ParamsOpt = Path("params.yaml"),
    bundle: Annotated[Path, typer.Option(help="Inference bundle (both stages + NIS settings).")] = Path("models/bundle.pt"),
    data: Annotated[Path, typer.Option(help="Folder of the parquet tables.")] = Path("data/processed"),
    out: Annotated[Path | None, typer.Option(help="Folder for predictions, curves and the text report (default reports/evaluate; with --predictions / --pair-predictions reports/evaluate-imported).")] = None,
    metrics: Annotated[Path, typer.Option(help="Metrics JSON (DVC metrics); with --predictions / --pair-predictions only read, for the side-by-side table.")] = Path("reports/metrics.json"),
    predictions: Annotated[Path | None, typer.Option("--predictions", help="Score this predictions table (e.g. from 'data import-preds') instead of running the bundle.")] = None,
    pair_predictions: Annotated[Path | None, typer.Option("--pair-predictions", help="Pair predictions table ranked by the interactiveness AP (alone: interactiveness AP only).")] = None,
) -> None:
    """Run the bundle on every image of the evaluated split and score it; or, with
    --predictions / --pair-predictions, score another method's files the same way.

    Inputs: BUNDLE, the images/instances/pairs/parts tables (and scenes.parquet for the
    per-split interactiveness APs). Outputs: OUT/predictions.parquet (after NIS, pair NMS and
    the per-image cap), OUT/pair_predictions.parquet (every stage-1 pair), OUT/curves/*.csv
    (PR curves, DVC plots), OUT/report.txt and METRICS (HICO-DET mAP Default/Known Object,
    V-COCO role AP, interactiveness AP overall, per scene split and per body part).
    With --predictions / --pair-predictions (tables in the pipeline/tables.py schemas) the
    bundle is not used and the stage's outputs are untouched: OUT/metrics.json, OUT/report.txt,
    OUT/curves/ and, when METRICS exists, OUT/comparison.csv plus a side-by-side table.
    Params: dataset, evaluate.
    """
    if predictions is None and pair_predictions is None:
        from pipeline import evaluate as stage

        stage.run(params, bundle, data, out or Path("reports/evaluate"), metrics)
        return
    from pipeline import evaluate_imported

    evaluate_imported.run(params, predictions, pair_predictions, data, out or evaluate_imported.DEFAULT_OUT, metrics)


@app.command()
@user_errors
def ablate(
    params: ParamsOpt = Path("params.yaml"),
    arm: Annotated[list[str] | None, typer.Option("--arm", help="Arm to run (repeatable; default all of Table 5: full, no_saliency, no_parts, intuitive, no_progressive, no_one_time, alpha1; also part_supervised = train.loss.part 1).")] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per arm (0, 1, ...).")] = 3,
    jobs: Annotated[int, typer.Option(min=1, help="Runs trained at the same time (subprocesses).")] = 2,
    threads: Annotated[int, typer.Option(min=1, help="Torch CPU threads of every run (train.threads).")] = 1,
    device: Annotated[str, typer.Option(help="train.device of every run: cpu | cuda | auto.")] = "cpu",
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override for every run, KEY=VALUE (repeatable), e.g. train.stage1.length=600.")] = None,
    data: Annotated[Path, typer.Option(help="Folder of the processed tables (ingest, pose, parts, scenes).")] = Path("data/processed"),
    out: Annotated[Path, typer.Option(help="Folder of the runs (one subfolder per arm and seed; finished runs are reused).")] = Path("ablations"),
    reports: Annotated[Path, typer.Option(help="Folder of ablations.csv / ablations.md.")] = Path("reports"),
    collect_only: Annotated[bool, typer.Option("--collect-only", help="Train nothing: tabulate the finished runs under --out.")] = False,
) -> None:
    """Table 5 on the data: train STAGE 1 for every arm and seed, evaluate the interactiveness
    AP on the test split (overall, cross-person, crowded; real vs rolled saliency maps) and
    write REPORTS/ablations.csv, ablations.md (mean, 95 % t-interval, paired difference to
    full) and ablations_selection.csv (part groups selected per verb). No dvc/dvclive needed.
    """
    from pipeline import ablations

    arms = arm or list(ablations.TABLE5_ARMS)
    command = "python cli.py ablate " + " ".join(sys.argv[2:])
    ablations.run(params, arms, list(range(seeds)), jobs, threads, device, set_ or [], data, out, reports, command,
                  collect_only)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
