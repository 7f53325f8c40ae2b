"""Command line of the BPM pipeline: one command per DVC stage, plus inspection tools.

This module is the table of commands: each parses its arguments and calls a stage's ``run()``;
the work lives in ``pipeline/`` and ``model/``, the shared option types, choices and wrappers in
pipeline/cli_support.py. A user's data or configuration mistake (``UserError``) is printed
as one line and exits with status 2. Each stage command writes a log of its run
(reports/logs/STAGE.log: command, tables read, files written, skips, times; pipeline/runlog.py).

Help texts are Rich markup: a literal ``[`` must be written ``\\[``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from model.common.errors import UserError

from pipeline.cli_support import (
    ANALYSIS, STAGES, TOOLS, AnnoMatOpt, BoxShift, DataFormat, DataOpt, DeviceOpt, FetchSet, HoiCategory,
    ImageListOpt, ImagesOpt, ObjectIds, OrderedGroup, ParamsOpt, PredictPose, PredsFormat, ReportFormat, ReportName,
    ReportOpt, SplitName, TablesOutOpt, VersionOpt, logged, stage_log, user_errors,
)

app = typer.Typer(
    cls=OrderedGroup,
    help="BPM: body-part interactiveness HOI detection, stage by stage (see README.md).\n\n"
         "Examples: dvc repro (every stage, as dvc.yaml declares them); "
         "python cli.py -q train --stage 1 (one stage, no progress bars).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main_options(
    version: VersionOpt = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="No progress bars; logging at warning level (the commands still print their "
             "results).")] = False,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Debug logging, and a traceback with each error.")] = False,
) -> None:
    """Options before the command apply to every command: python cli.py -q evaluate."""
    from model.common.progress import set_verbosity

    set_verbosity(-1 if quiet else 1 if verbose else 0)


@app.command(rich_help_panel=STAGES)
@user_errors
@logged(stage_log("synth", "out", report=None))
def synth(
    params: ParamsOpt = Path("params.yaml"),
    out: Annotated[Path, typer.Option(help="Output folder of the synthetic dataset.")] = Path("data/raw/synthetic"),
) -> None:
    """Generate the built-in synthetic HOI dataset (params: seed, synth).

    Writes, deterministically from the seed, JPEG images and annotations in the exact on-disk
    formats of the real datasets: OUT/hico_20160224_det (PPDM/QPIC HICO-DET files),
    OUT/v-coco (QPIC V-COCO files plus the official V-COCO evaluation files), each with a
    simulated AlphaPose result file (alphapose-results.json).

    Examples:
      python cli.py synth
      python cli.py synth --out /tmp/synthetic --params my-params.yaml
    """
    from pipeline import synth as stage

    stage.run(params, out)


@app.command(rich_help_panel=STAGES)
@user_errors
@logged(stage_log("ingest", "out", "report"))
def ingest(
    params: ParamsOpt = Path("params.yaml"),
    out: TablesOutOpt = Path("data/processed"),
    report: ReportOpt = Path("reports/ingest.json"),
) -> None:
    """Read the dataset named in params (dataset: format, root) into parquet tables.

    Inputs: a HICO-DET (PPDM/QPIC json) or V-COCO (QPIC json) directory, real or synthetic.
    Outputs: OUT/images.parquet, OUT/instances.parquet, OUT/pairs.parquet and REPORT
    (records read, written, skipped by reason). Params: dataset, ingest.

    Examples:
      python cli.py ingest
      dvc exp run -S dataset.format=v-coco -S dataset.root=data/raw/v-coco ingest
    """
    from pipeline import ingest as stage

    stage.run(params, out, report)


@app.command(rich_help_panel=STAGES)
@user_errors
@logged(stage_log("scenes", "out", "report"))
def scenes(
    params: ParamsOpt = Path("params.yaml"),
    data: DataOpt = Path("data/processed"),
    out: Annotated[Path, typer.Option(help="Scenes table to write.")] = Path("data/processed/scenes.parquet"),
    report: ReportOpt = Path("reports/scenes.json"),
) -> None:
    """Per-image scene statistics, hard-case splits and sampling weights (params: scenes, train.alpha).

    The sparse/crowded, normal/tiny and less/more-occlusion splits, and the sparsity-adaptive
    sampling weights.

    Inputs: DATA/{images,instances,pairs,persons,parts}.parquet. Outputs: OUT (one row per
    image) and REPORT (counts and shares per split, flat keys like test/crowded/share).

    Examples:
      python cli.py scenes
      dvc exp run -S scenes.crowded_persons=3 scenes
    """
    from pipeline import scenes as stage

    stage.run(params, data, out, report)


@app.command("inspect", rich_help_panel=ANALYSIS)
@user_errors
def inspect_scenes(
    scenes: Annotated[Path, typer.Option(help="Scenes table.")] = Path("data/processed/scenes.parquet"),
    pairs: Annotated[Path, typer.Option(
        help="Pairs table (for the hoi report).")] = Path("data/processed/pairs.parquet"),
    group_by: Annotated[list[str] | None, typer.Option(
        "--group-by", help="Scenes column to group by (repeatable; default split).")] = None,
    query: Annotated[str | None, typer.Option(
        help="pandas query filtering the scenes rows, e.g. \"split == 'test' and persons >= 3\".")] = None,
    format: Annotated[ReportFormat, typer.Option("--format", help="Output format.")] = ReportFormat.table,
    hist: Annotated[Path | None, typer.Option(help="Folder for the figures only (PDF, SVG, PNG).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder for the figures, the tables as CSV and the one-page scene report "
             "(scene_report.pdf/.svg/.png).")] = None,
    params: Annotated[Path, typer.Option(
        "--params", help="params.yaml whose scenes thresholds the figures draw.")] = Path("params.yaml"),
    top: Annotated[int, typer.Option(min=1, help="HOI categories per group in the hoi report.")] = 10,
    report: Annotated[list[ReportName] | None, typer.Option(
        "--report", help="Report to show (repeatable; default: all).")] = None,
) -> None:
    """Statistics and figures of the scenes table: what a crowded-scene study reports.

    Crowded / tiny / occluded images per split, persons and interactive pairs per image in sparse vs
    crowded scenes, the most frequent HOI categories in crowded scenes; crowded-scene measures
    (interactive pairs per person, persons per interactive pair, persons without interaction).
    CSV with several reports: '# report: NAME' blocks. --out DIR: figures (PDF, SVG, PNG), the tables
    as CSV and a one-page scene report.

    Examples:
      python cli.py inspect --report crowd --group-by split --group-by crowded
      python cli.py inspect --report all --out reports/scene-report
    """
    from pipeline import scene_report

    names = [r.value for r in report] if report else None
    scene_report.run(scenes, pairs, group_by, query, format.value, hist, top, names, out, params)


@app.command(rich_help_panel=STAGES)
@user_errors
@logged(stage_log("pose", "out", "shards", "report"))
def pose(
    params: ParamsOpt = Path("params.yaml"),
    images: Annotated[Path, typer.Option(help="Images table (from ingest).")] = Path("data/processed/images.parquet"),
    out: Annotated[Path, typer.Option(help="Persons table to write.")] = Path("data/processed/persons.parquet"),
    shards: Annotated[Path, typer.Option(
        help="Folder of resumable result shards (ultralytics).")] = Path("data/interim/pose_shards"),
    report: ReportOpt = Path("reports/pose.json"),
    limit: Annotated[int | None, typer.Option(
        min=1, help="Process at most this many new images (per rank), then stop; rerun to continue.")] = None,
) -> None:
    """Detect persons and their COCO-17 keypoints (params: dataset, pose).

    Backends (pose.backend): ultralytics (YOLO pose on the images; resumable, and sharded across
    ranks under torchrun), alphapose (alphapose-results.json), coco (COCO keypoint results),
    official (the authors' part-box pickles). Outputs: OUT (one row per person) and REPORT.

    Examples:
      python cli.py pose
      torchrun --nproc_per_node 4 cli.py pose --limit 5000
    """
    from pipeline import pose as stage

    stage.run(params, images, out, shards, report, limit)


@app.command(rich_help_panel=STAGES)
@user_errors
@logged(stage_log("parts", "out", "report"))
def parts(
    params: ParamsOpt = Path("params.yaml"),
    persons: Annotated[Path, typer.Option(help="Persons table (from pose).")] = Path("data/processed/persons.parquet"),
    images: Annotated[Path, typer.Option(
        help="Images table (image sizes for clipping).")] = Path("data/processed/images.parquet"),
    out: Annotated[Path, typer.Option(help="Parts table to write.")] = Path("data/processed/parts.parquet"),
    report: ReportOpt = Path("reports/parts.json"),
) -> None:
    """Ten HAKE body-part boxes per person from its keypoints (params: parts).

    HAKE's rule: squares centred on joints, side = torso length x relative size; limb-length
    rule when the torso is unreliable; whole-body box as the fallback. Part boxes given by the
    pose source (official files) are kept. Outputs: OUT (ten rows per person) and REPORT.

    Examples:
      python cli.py parts
      dvc exp run -S parts.score_threshold=0.3 parts
    """
    from pipeline import parts as stage

    stage.run(params, persons, images, out, report)


def _train_log(kw: dict) -> tuple[Path, list[Path], Path | None]:
    n, reports = kw["stage"], kw["reports"]
    return (reports / "logs" / f"train_stage{n}.log", [kw["models"], reports / "train" / f"stage{n}",
            reports / f"train_stage{n}.json"], reports / f"train_stage{n}.json")


@app.command(rich_help_panel=STAGES)
@user_errors
@logged(_train_log)
def train(
    stage: Annotated[int, typer.Option(
        "--stage", min=1, max=2, help="1: boxes + interactiveness; 2: boxes + verbs.")] = 1,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue from models/stageN-last.pt (same params).")] = False,
    params: ParamsOpt = Path("params.yaml"),
    data: DataOpt = Path("data/processed"),
    models: Annotated[Path, typer.Option(help="Folder of the checkpoints.")] = Path("models"),
    reports: Annotated[Path, typer.Option(help="Folder of curves and summaries.")] = Path("reports"),
) -> None:
    """Train one stage of the network (params: train, model, dataset, seed).

    Inputs: DATA/{images,instances,pairs,parts,scenes}.parquet and the images under
    dataset.root (stage 2 with train.stage2_init=stage1 also MODELS/stage1.pt). Outputs:
    MODELS/stageN.pt (selected on a validation split carved from the training images),
    MODELS/stageN-last.pt (resume state), REPORTS/train/stageN/ (dvclive curves) and
    REPORTS/train_stageN.json. Several processes: torchrun --nproc_per_node K cli.py train.

    Examples:
      python cli.py train --stage 1
      torchrun --nproc_per_node 4 cli.py train --stage 2 --resume
    """
    from pipeline import train as stage_

    stage_.run(params, stage, resume, data, models, reports)


@app.command(rich_help_panel=STAGES)
@user_errors
@logged(stage_log("bundle", "out", "models", "report"))
def bundle(
    params: ParamsOpt = Path("params.yaml"),
    models: Annotated[Path, typer.Option(help="Folder holding stage1.pt and stage2.pt.")] = Path("models"),
    data: DataOpt = Path("data/processed"),
    out: Annotated[Path | None, typer.Option(help="Bundle file (default MODELS/bundle.pt).")] = None,
    report: ReportOpt = Path("reports/bundle.json"),
) -> None:
    """Pack both trained networks and the NIS settings into one file (params: postprocess).

    NIS's threshold is chosen on the validation images carved from the training split (HICO-DET:
    best HOI mAP; V-COCO: best interactiveness F1). Inputs: MODELS/stage1.pt, MODELS/stage2.pt,
    DATA tables and images. Outputs: OUT and REPORT.

    Examples:
      python cli.py bundle
      python cli.py bundle --models runs/exp1/models --out runs/exp1/bundle.pt
    """
    from pipeline import bundle as stage_

    stage_.run(params, models, data, out, report)


data_app = typer.Typer(
    help="Real datasets and other methods' files: verify, fetch, convert, export, import (README, 'Real data').",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data", rich_help_panel=TOOLS)


@data_app.command("verify")
@user_errors
def data_verify(
    format: Annotated[DataFormat, typer.Argument(help="Dataset format.")],
    root: Annotated[Path, typer.Argument(help="Dataset folder, e.g. data/raw/hico_20160224_det or data/raw/v-coco.")],
    sample: Annotated[int, typer.Option(min=0, help="Images per split whose size is checked (0 = all).")] = 200,
    official: Annotated[bool, typer.Option(
        help="Compare counts and checksums with the official release; --no-official for subsets and the synthetic "
             "data.")] = True,
    decode: Annotated[bool, typer.Option(help="Decode the checked images fully (catches truncated files).")] = False,
) -> None:
    """Check a dataset folder against the official release; exit status 1 on problems.

    Expected files and folders, image counts per split against the annotations and the official
    figures, known checksums ('unknown, not checked' otherwise), image sizes against the
    annotations. Prints each problem with its fix; exit status 0 when all is in order.

    Examples:
      python cli.py data verify hico-det data/raw/hico_20160224_det
      python cli.py data verify v-coco data/raw/synthetic/v-coco --no-official --sample 0
    """
    from pipeline.interop import verify

    raise typer.Exit(verify.run(format.value, root, sample, official, decode))


@data_app.command("fetch")
@user_errors
def data_fetch(
    names: Annotated[list[str] | None, typer.Argument(help="Files to fetch (names from --list).")] = None,
    dataset: Annotated[FetchSet | None, typer.Option(help="Fetch every known file of this set.")] = None,
    root: Annotated[Path | None, typer.Option(
        help="Dataset folder (default data/raw/hico_20160224_det or data/raw/v-coco).")] = None,
    list_files: Annotated[bool, typer.Option(
        "--list", help="List the known files and their sources, then stop.")] = False,
    force: Annotated[bool, typer.Option(help="Replace a present file whose content does not match.")] = False,
    extract: Annotated[bool, typer.Option(help="Unpack archives (COCO zips) after download.")] = True,
) -> None:
    """Download the files that have stable public sources, checked and resumable.

    An interrupted download continues from its .part file; files are checked against
    data/labels/checksums.json; archives are unpacked. Files without such a source (HICO-DET)
    are explained instead.

    Examples:
      python cli.py data fetch --list
      python cli.py data fetch --dataset v-coco
    """
    from pipeline.interop import fetch

    if list_files:
        rows = fetch.listing()
        widths = [max(len(r[k]) for r in rows) + 2 for k in range(3)]
        for row in rows:
            typer.echo("".join(f"{v:<{w}}" for v, w in zip(row, widths, strict=False)) + row[3])
        return
    fetch.run(names or [], dataset.value if dataset else None, root, force, extract)


@data_app.command("convert-hico")
@user_errors
def data_convert_hico(
    root: Annotated[Path, typer.Argument(
        help="HICO-DET folder (hico_20160224_det) holding anno_bbox.mat and anno.mat.")],
    anno_bbox: Annotated[Path | None, typer.Option(help="anno_bbox.mat (default ROOT/anno_bbox.mat).")] = None,
    anno: Annotated[Path | None, typer.Option(
        help="anno.mat for the image-level labels (default ROOT/anno.mat when present).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default ROOT/annotations).")] = None,
) -> None:
    """HICO-DET's official .mat files -> the PPDM/QPIC annotation files ingest reads.

    anno_bbox.mat (+ anno.mat) -> annotations/trainval_hico.json, test_hico.json,
    corre_hico.npy and image_labels.parquet (image-level labels, Known Object).

    Example:
      python cli.py data convert-hico data/raw/hico_20160224_det
    """
    from pipeline.interop import hico_convert

    anno = anno if anno is not None else (root / "anno.mat" if (root / "anno.mat").exists() else None)
    hico_convert.run(anno_bbox or root / "anno_bbox.mat", anno, out or root / "annotations")


@data_app.command("build-vcoco")
@user_errors
def data_build_vcoco(
    root: Annotated[Path, typer.Argument(help="V-COCO folder holding data/vcoco/*.json and data/splits/*.ids.")],
    coco_annotations: Annotated[Path | None, typer.Option(
        help="Folder of COCO's instances_train2014.json and instances_val2014.json (default "
             "ROOT/coco/annotations).")] = None,
    prior: Annotated[Path | None, typer.Option(
        help="VSGNet's prior.pickle, for QPIC's exact corre_vcoco.npy (else derived from trainval).")] = None,
) -> None:
    """V-COCO's official files + COCO 2014 annotations -> what ingest and the evaluation read.

    Writes data/instances_vcoco_all_2014.json (as script_pick_annotations.py does),
    annotations/trainval_vcoco.json, test_vcoco.json and corre_vcoco.npy (QPIC's layout).
    Python 3 only, no compiled helpers.

    Example:
      python cli.py data build-vcoco data/raw/v-coco --prior data/raw/v-coco/prior.pickle
    """
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
    round_boxes: Annotated[bool, typer.Option(
        "--round/--no-round", help="Round boxes as MATLAB round() does, like the usual conversion.")] = True,
    shift: Annotated[BoxShift, typer.Option(
        help="none: write boxes as they are (ho-rcnn then adds 1, the usual route); minus-one: subtract 1 so the "
             "evaluator sees our exact boxes.")] = BoxShift.none,
) -> None:
    """Predictions -> the official HICO-DET MATLAB evaluation input (detections_XX.mat).

    ho-rcnn eval_one.m, object mode: per-object all_boxes cell arrays (HOIs x test images),
    N x 9 \\[human box, object box, score]; top 19,999 per HOI, rounded, as the usual route.

    Examples:
      python cli.py data export-hico-mat reports/evaluate/predictions.parquet reports/matlab
      python cli.py data export-hico-mat preds.parquet out/ --anno-mat anno.mat --shift minus-one
    """
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
    pickle protocol 2.

    Example:
      python cli.py data export-vcoco reports/evaluate/predictions.parquet reports/vcoco_detections.pkl
    """
    from pipeline.interop import vcoco_pickle

    vcoco_pickle.run(predictions, out)


@data_app.command("import-preds")
@user_errors
def data_import_preds(
    format: Annotated[PredsFormat, typer.Argument(
        help="qpic (QPIC/CDN/GEN-VLKT json, CDN repr or pkl) | bpm-binary (the paper's bst_result_binary.pkl) | "
             "vcoco-pickle | hico-mat (folder of detections_XX.mat).")],
    source: Annotated[Path, typer.Argument(help="File (or folder, hico-mat) to import.")],
    out: Annotated[Path, typer.Argument(help="Parquet table to write (pair_predictions for bpm-binary).")],
    dataset: Annotated[DataFormat, typer.Option(help="Dataset the predictions are for.")] = DataFormat.hico_det,
    annotations: Annotated[Path | None, typer.Option(
        help="qpic: annotation json (test_hico.json) naming entries that carry no file name, by position.")] = None,
    images: ImagesOpt = Path("data/processed/images.parquet"),
    image_list: ImageListOpt = None,
    anno_mat: AnnoMatOpt = None,
    hoi_category: Annotated[HoiCategory, typer.Option(
        help="qpic, HICO-DET: hoi_prediction category_id is a 0-based 'verb' (QPIC, CDN) or 'hoi' index "
             "(GEN-VLKT).")] = HoiCategory.verb,
    object_ids: Annotated[ObjectIds, typer.Option(
        help="qpic: object category_id is 'contiguous' (0..79, QPIC/CDN) or 'coco'.")] = ObjectIds.contiguous,
    shift: Annotated[BoxShift, typer.Option(help="hico-mat: the shift the files were written with.")] = BoxShift.none,
) -> None:
    """Other methods' result files -> our predictions table, for side-by-side scoring.

    Pickles are read with the restricted unpickler and CDN's repr dumps are parsed, never
    evaluated: nothing in a file is executed.

    Examples:
      python cli.py data import-preds qpic qpic_preds.json reports/qpic.parquet
      python cli.py data import-preds bpm-binary bst_result_binary.pkl reports/bpm_pairs.parquet
    """
    from pipeline.interop import import_preds
    from pipeline.interop.image_keys import test_image_ids
    from pipeline.readers.annotation_json import read_split

    names = read_split(annotations).records["file_name"].tolist() if annotations else None
    ids = test_image_ids(images, image_list, anno_mat)
    import_preds.run(format.value, source, out, dataset.value, ids, names, hoi_category.value, object_ids.value,
                     shift.value)


weights_app = typer.Typer(
    help="Initial weights from public checkpoints: COCO DETR-R50 -> model.pretrained (README, 'Real data').",
    no_args_is_help=True,
)
app.add_typer(weights_app, name="weights", rich_help_panel=TOOLS)


@weights_app.command("import-detr")
@user_errors
def weights_import_detr(
    checkpoint: Annotated[Path, typer.Argument(
        help="DETR checkpoint, e.g. models/pretrained/detr-r50-e632da11.pth (data fetch detr-r50-e632da11.pth).")],
    out: Annotated[Path | None, typer.Option(
        help="Converted weights to write, then model.pretrained (default models/pretrained/detr-r50-bpm-FORMAT.pt, "
             "FORMAT = dataset.format).")] = None,
    report: Annotated[Path, typer.Option(
        help="JSON report: loaded / skipped (with reasons) / initialised tensors per stage and "
             "module.")] = Path("reports/import_detr.json"),
    verify: Annotated[bool, typer.Option(
        "--verify/--no-verify", help="Check the file's SHA-256 first; --no-verify for other DETR-style checkpoints "
             "(reported as skipped).")] = True,
    sha256: Annotated[str | None, typer.Option(
        "--sha256", help="Expected SHA-256 (64 hex digits) of another checkpoint; default: the catalog's DETR-R50 "
             "digest.")] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """COCO DETR-R50 checkpoint -> both stages' initial weights (params: model, dataset, seed).

    Verifies the checksum (data/labels/checksums.json) before anything else, reads the file
    with weights-only loading, maps it onto the stage-1 and stage-2 networks of the params as
    QPIC/CDN do (backbone, input projection, encoder, decoder -> box and verb decoders, first
    N_q queries, bbox head -> human and object heads, class rows of the HOI objects) and writes
    the mapped tensors atomically to OUT, usable as model.pretrained, with REPORT.

    Example:
      python cli.py weights import-detr models/pretrained/detr-r50-e632da11.pth
    """
    from pipeline.interop import detr_weights

    detr_weights.run(checkpoint, out, report, params, sha256, skip_verify=not verify)


@app.command(rich_help_panel=ANALYSIS)
@user_errors
def predict(
    images: Annotated[list[Path], typer.Argument(help="Image files and/or folders (searched recursively).")],
    checkpoint: Annotated[Path, typer.Option(
        "--checkpoint", help="Inference bundle (both stages + NIS settings).")] = Path("models/bundle.pt"),
    out: Annotated[Path, typer.Option(
        help="Output folder; when it holds files, the run goes to OUT2, OUT3, ... (see "
             "--exist-ok).")] = Path("reports/predict"),
    pose_backend: Annotated[PredictPose, typer.Option(
        "--pose-backend", help="Where persons and keypoints come from.")] = PredictPose.ultralytics,
    pose_file: Annotated[Path | None, typer.Option(
        "--pose-file", help="Result file of the file backends (AlphaPose / COCO json, persons parquet).")] = None,
    pose_weights: Annotated[str | None, typer.Option(
        "--pose-weights", help="Ultralytics weights (.pt, official name, or .yaml); default params "
             "pose.ultralytics.weights.")] = None,
    device: DeviceOpt = "auto",
    top: Annotated[int, typer.Option(
        min=1, help="Triplets drawn per image (the files keep all post-processed ones).")] = 10,
    attention: Annotated[bool, typer.Option(
        "--attention", help="Also draw body-part saliency maps and masked-decoder attention (Fig. 4).")] = False,
    batch: Annotated[int, typer.Option(min=1, help="Images per forward pass.")] = 4,
    max_side: Annotated[int, typer.Option(
        "--max-side", min=64, help="Longer side (px) of the copy given to pose and model; boxes stay in original "
             "pixels.")] = 2048,
    trust_weights: Annotated[bool, typer.Option(
        "--trust-weights", help="Load a pose .pt that is not a known official file (ultralytics unpickles it: it can "
             "run code).")] = False,
    conf: Annotated[float, typer.Option(
        "--conf", min=0.0, max=1.0, help="Keep triplets scored at least this (before drawing and writing).")] = 0.0,
    verb: Annotated[list[str] | None, typer.Option(
        "--verb", help="Keep only triplets with this verb, e.g. ride (repeatable).")] = None,
    object_: Annotated[list[str] | None, typer.Option(
        "--object", help="Keep only triplets with this object, e.g. bicycle (repeatable).")] = None,
    exist_ok: Annotated[bool, typer.Option(
        "--exist-ok", help="Write into OUT even when it holds an earlier run, replacing what predict wrote "
             "there.")] = False,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """HOI triplets on any image(s): pose -> part boxes -> both trained networks -> NIS + pair NMS.

    Outputs: OUT/predictions.parquet (predictions schema, boxes in original pixels),
    OUT/predictions.json (per image: status, conversions, detections with names),
    OUT/images/ID.png (top triplets) and with --attention OUT/attention/ID.png. Unreadable
    files and images without persons are reported and counted, never fatal; pose-file
    entries that match no input are counted as unmatched. OUT/predict.log: the run's log.
    Params: pose (ultralytics settings), parts.

    Examples:
      python cli.py predict photos/ --conf 0.3 --verb ride --object horse
      python cli.py predict a.jpg --pose-backend alphapose-file --pose-file alphapose-results.json
    """
    from pipeline import predict as stage

    options = stage.PredictOptions(pose_backend.value, pose_file, pose_weights, device, top, attention, batch, max_side,
                                   trust_weights=trust_weights, conf=conf, verbs=tuple(verb or ()),
                                   objects=tuple(object_ or ()))
    stage.run(images, checkpoint, out, options, params, exist_ok=exist_ok)


@app.command(rich_help_panel=ANALYSIS)
@user_errors
def show(
    image_id: Annotated[str, typer.Argument(help="image_id (file stem) from the images table.")],
    split: Annotated[SplitName | None, typer.Option(help="Require the image to be in this split.")] = None,
    augment: Annotated[bool, typer.Option(
        "--augment/--no-augment", help="Training transforms (random) or the evaluation ones.")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the augmentation draw.")] = 0,
    params: ParamsOpt = Path("params.yaml"),
    data: Annotated[Path, typer.Option(help="Folder of the parquet tables.")] = Path("data/processed"),
    out: Annotated[Path | None, typer.Option(help="PNG to write (default reports/show/IMAGE_ID.png).")] = None,
) -> None:
    """Draw one dataset image as the training data path sees it.

    Annotated pairs with verb names, pose skeletons, the 10 part boxes, and the network input after the transforms with
    its boxes and the 6 rasterised part masks (params: dataset, train.augment, model).

    Examples:
      python cli.py show HICO_train2015_00000001
      python cli.py show HICO_test2015_00000005 --split test --no-augment
    """
    from pipeline import show as stage

    stage.run(image_id, split.value if split else None, augment, seed, params, data, out)


def _evaluate_log(kw: dict) -> tuple[Path | None, list[Path], Path | None]:
    imported = kw.get("predictions") is not None or kw.get("pair_predictions") is not None
    out = kw.get("out") or Path("reports/evaluate")
    if imported:  # no log: scoring other files must leave every stage folder untouched, OUT may be refused
        return None, [], None
    return kw["metrics"].parent / "logs" / "evaluate.log", [out, kw["metrics"]], None


@app.command(rich_help_panel=STAGES)
@user_errors
@logged(_evaluate_log)
def evaluate(
    params: ParamsOpt = Path("params.yaml"),
    bundle: Annotated[Path, typer.Option(
        help="Inference bundle (both stages + NIS settings).")] = Path("models/bundle.pt"),
    data: Annotated[Path, typer.Option(help="Folder of the parquet tables.")] = Path("data/processed"),
    out: Annotated[Path | None, typer.Option(
        help="Folder for predictions, curves and the text report (default reports/evaluate; with --predictions / "
             "--pair-predictions reports/evaluate-imported).")] = None,
    metrics: Annotated[Path, typer.Option(
        help="Metrics JSON (DVC metrics); with --predictions / --pair-predictions only read, for the side-by-side "
             "table.")] = Path("reports/metrics.json"),
    predictions: Annotated[Path | None, typer.Option(
        "--predictions", help="Score this predictions table (e.g. from 'data import-preds') instead of running the "
             "bundle.")] = None,
    pair_predictions: Annotated[Path | None, typer.Option(
        "--pair-predictions", help="Pair predictions table ranked by the interactiveness AP (alone: interactiveness AP "
             "only).")] = None,
) -> None:
    """Run the bundle on the evaluated split and score it (or score another method's files).

    With --predictions / --pair-predictions, another method's files are scored the same way.

    Inputs: BUNDLE, the images/instances/pairs/parts tables (and scenes.parquet for the
    per-split interactiveness APs). Outputs: OUT/predictions.parquet (after NIS, pair NMS and
    the per-image cap), OUT/pair_predictions.parquet (every stage-1 pair), OUT/curves/*.csv
    (PR curves, DVC plots), OUT/report.txt and METRICS (HICO-DET mAP Default/Known Object,
    V-COCO role AP, interactiveness AP overall, per scene split and per body part).
    With --predictions / --pair-predictions (tables in the pipeline/tables.py schemas) the
    bundle is not used and the stage's outputs are untouched: OUT/metrics.json, OUT/report.txt,
    OUT/curves/ and, when METRICS exists, OUT/comparison.csv plus a side-by-side table.
    Params: dataset, evaluate.

    Examples:
      python cli.py evaluate
      python cli.py evaluate --predictions reports/qpic.parquet
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
    arm: Annotated[list[str] | None, typer.Option(
        "--arm", help="Arm to run (repeatable; default all of Table 5: full, no_saliency, no_parts, intuitive, "
             "no_progressive, no_one_time, alpha1; also part_supervised = train.loss.part 1).")] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per arm (0, 1, ...).")] = 3,
    jobs: Annotated[int, typer.Option(min=1, help="Runs trained at the same time (subprocesses).")] = 2,
    threads: Annotated[int, typer.Option(min=1, help="Torch CPU threads of every run (runtime.threads).")] = 1,
    device: Annotated[str, typer.Option(help="runtime.device of every run: cpu | cuda | cuda:N | auto.")] = "cpu",
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override for every run, KEY=VALUE (repeatable), e.g. train.stage1.length=600.")] = None,
    data: Annotated[Path, typer.Option(
        help="Folder of the processed tables (ingest, pose, parts, scenes).")] = Path("data/processed"),
    out: Annotated[Path, typer.Option(
        help="Folder of the runs (one subfolder per arm and seed; finished runs are reused).")] = Path("ablations"),
    reports: Annotated[Path, typer.Option(help="Folder of ablations.csv / ablations.md.")] = Path("reports"),
    collect_only: Annotated[bool, typer.Option(
        "--collect-only", help="Train nothing: tabulate the finished runs under --out.")] = False,
    eval_images: Annotated[Path | None, typer.Option(
        "--eval-images", help="With --collect-only: score the finished runs on the tables of --data and the "
        "images of this dataset root (e.g. the cross-person control); scores are kept in RUN/elsewhere.json.")] = None,
) -> None:
    """Table 5 on the data: train STAGE 1 for every arm and seed, evaluate the interactiveness
    AP on the test split (overall, cross-person, crowded; real vs rolled saliency maps) and
    write REPORTS/ablations.csv, ablations.md (mean, 95 % t-interval, paired difference to
    full) and ablations_selection.csv (part groups selected per verb). No dvc/dvclive needed.

    Examples:
      python cli.py ablate --jobs 2 --threads 1 --set train.stage1.length=800 --set train.stage1.lr_drop=630
      python cli.py ablate --arm full --arm no_saliency --seeds 3 --out ablations --collect-only
    """
    from pipeline import ablations

    arms = arm or list(ablations.TABLE5_ARMS)
    command = "python cli.py ablate " + " ".join(sys.argv[2:])
    ablations.run(params, arms, list(range(seeds)), jobs, threads, device, set_ or [], data, out, reports, command,
                  collect_only, eval_images)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
