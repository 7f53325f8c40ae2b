"""Stage ``scenes``: per-image scene statistics, the three hard-case splits and the weights of
the sparsity-adaptive sampler (paper Sec. 4 and 5.3).

The paper splits HICO-DET into sparse/crowded, normal/tiny-person and less/more-occlusion
scenes, but the supplementary that defines the splits is not public; the rules below are ours
(non-official, see README "Fidelity"). Every threshold is a key of the ``scenes`` params:

- **persons**: annotated person boxes (COCO category 1) of the image, near-duplicates merged
  (HICO-DET annotates boxes per HOI, so one person often has several boxes with IoU close to
  1): boxes of one image and category whose IoU >= ``merge_iou`` are linked, and each
  connected component is one person (its box is the mean of the members). ``person_source``
  ``instances`` counts every person box, also those that only occur as pair objects (the
  released code's single/multi rule, but with duplicates merged); ``subjects`` only persons
  that are the subject of at least one pair.
- **crowded** <=> persons >= ``crowded_persons`` (or interactive pairs >= ``crowded_pairs``
  when that key is set); sparse otherwise.
- **tiny** <=> the smallest person box covers less than ``tiny_area`` of the image area
  (strictly less); normal otherwise, and for images without persons.
- **occluded** <=> two distinct persons overlap so that the intersection covers at least
  ``occluded_cover`` of the smaller box, or the pose persons matched to annotated persons
  have on average at least ``occluded_keypoints`` of their 17 keypoints scored below
  ``keypoint_score``; less occlusion otherwise. Either criterion is off when set to null.
- **cross_person** <=> the image's ``scene_kind`` (the annotation record's optional ``scene``
  tag, ingested into the images table) is ``cross_person``: synthetic scenes whose target pair
  is decidable only from another person (``synth``); False wherever the tag is absent, as on
  real HICO-DET and V-COCO. ``scene_kind`` itself is copied into the table.
  Pose output is optional: without ``persons.parquet`` and ``parts.parquet`` (no pose stage
  run, e.g. scoring downloaded results) the keypoint criterion is reported as unavailable and
  ``occluded`` rests on person overlap alone.
- **sample_weight** = α for crowded training images, 1 otherwise (test images are never
  sampled). α is read once, from ``train.alpha`` (ARCHITECTURE decision 7); α = 1 is uniform.

Boxes are ``x1, y1, x2, y2`` in absolute pixels; areas are continuous (no +1 convention) and
reported as fractions of ``width × height``. Everything is vectorised: near-duplicate merging
is one connected-components pass over within-image box pairs found by a self-join.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import ConfigDict, Field
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from model.box_geometry import area_np, intersection_np, iou_np
from model.common import labels
from pipeline import tables
from pipeline.params import DEFAULT_PARAMS, DatasetConfig, Section, section

BOX = ["x1", "y1", "x2", "y2"]
NO_OBJECT = -1  # entity id of the missing object of a V-COCO agent-only pair
UNKNOWN = -2  # entity id of a pair member whose instance index is absent from instances
FLAGS = ("crowded", "tiny", "occluded", "cross_person")
TAG_SPLITS = ("cross_person",)  # scene_kind values that are boolean split columns of their own
TABLES = ("images", "instances", "pairs", "persons", "parts")
POSE_TABLES = ("persons", "parts")  # optional: the pose stage's output
PARAMS = ("dataset.format", "scenes", "train.alpha")  # the params keys this stage reads (dvc.yaml lists exactly these)


class ScenesConfig(Section):
    """The ``scenes`` params: how persons are counted and where the splits' thresholds lie."""

    merge_iou: float = Field(0.7, gt=0, le=1)  # same category + IoU >= this -> one entity
    person_source: Literal["instances", "subjects"] = "instances"
    crowded_persons: int = Field(2, ge=1)  # persons >= this -> crowded
    crowded_pairs: int | None = Field(None, ge=1)  # interactive pairs >= this -> crowded too
    tiny_area: float = Field(0.01, gt=0, le=1)  # smallest person area / image area < this
    pose_match_iou: float = Field(0.5, gt=0, le=1)  # pose person <-> annotated person
    pose_min_score: float = Field(0.0, ge=0, le=1)  # pose persons below are ignored
    keypoint_score: float = Field(0.2, ge=0, le=1)  # keypoint score below -> low confidence
    occluded_cover: float | None = Field(0.5, gt=0, le=1)
    occluded_keypoints: float | None = Field(0.4, gt=0, le=1)


class TrainAlpha(Section):
    """The one key of the ``train`` section this stage reads; the others belong to ``train``."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    alpha: float = Field(3.0, gt=0)


def train_alpha(params_path: str | Path = "params.yaml") -> float:
    """α of the sparsity-adaptive sampler: ``train.alpha`` of params.yaml, 3.0 when absent."""
    return section("train", TrainAlpha, params_path, keys=PARAMS).alpha


# --------------------------------------------------------------------------- box geometry


def box_cover(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise intersection over the smaller box's area: how much of the smaller box the
    other one hides (1 when one box contains the other, whatever their sizes)."""
    inter = intersection_np(a, b)
    small = np.minimum(area_np(a), area_np(b))
    return np.divide(inter, small, out=np.zeros_like(inter), where=small > 0)


def within_group_pairs(df: pd.DataFrame, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(i, j)``, i < j, of every two rows of ``df`` that share the ``keys`` values
    (a self-join: cost is the sum of squared group sizes, small for per-image groups)."""
    pos = pd.DataFrame({k: df[k].to_numpy() for k in keys})
    pos["_i"] = np.arange(len(df))
    joined = pos.merge(pos, on=keys, suffixes=("", "_j"))
    joined = joined[joined["_i"] < joined["_i_j"]]
    return joined["_i"].to_numpy(), joined["_i_j"].to_numpy()


def merge_duplicates(boxes: pd.DataFrame, keys: list[str], iou: float) -> np.ndarray:
    """Entity label of each row of ``boxes`` (columns ``keys`` + x1..y2): rows of the same
    ``keys`` group linked by IoU >= ``iou`` share a label (connected components, so a chain
    of near-duplicates is one entity). Labels are global integers; groups never share one."""
    i, j = within_group_pairs(boxes, keys)
    xy = boxes[BOX].to_numpy(np.float64)
    hit = iou_np(xy[i], xy[j]) >= iou
    n = len(boxes)
    graph = coo_matrix((np.ones(int(hit.sum())), (i[hit], j[hit])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


# --------------------------------------------------------------------------- annotated persons


def _lookup_entity(pairs: pd.DataFrame, inst: pd.DataFrame, col: str) -> np.ndarray:
    """Entity of each pair's ``col`` instance index; NO_OBJECT where the index is null."""
    idx = pairs[col]
    left = pd.DataFrame({
        "image_id": pairs["image_id"].to_numpy(),
        "index": idx.fillna(-1).astype(np.int64).to_numpy(),
    })
    right = inst[["image_id", "index", "entity"]].astype({"index": np.int64})
    right = right.drop_duplicates(["image_id", "index"])  # keeps the left join one-to-one
    ent = left.merge(right, on=["image_id", "index"], how="left")["entity"]
    ent = ent.fillna(UNKNOWN).astype(np.int64).to_numpy()
    return np.where(idx.isna().to_numpy(), NO_OBJECT, ent)


def pair_entities(pairs: pd.DataFrame, inst: pd.DataFrame) -> pd.DataFrame:
    """``pairs`` as (image_id, subject, object, verb_id) in merged-entity ids, so that the
    near-duplicate copies of one physical pair collapse."""
    return pd.DataFrame({
        "image_id": pairs["image_id"].to_numpy(),
        "subject": _lookup_entity(pairs, inst, "subject"),
        "object": _lookup_entity(pairs, inst, "object"),
        "verb_id": pairs["verb_id"].to_numpy(),
    })


def pair_counts(pe: pd.DataFrame, no_interaction: int | None) -> pd.DataFrame:
    """Per image: distinct (subject, object) entity pairs, and those with at least one verb
    other than ``no_interaction`` (every pair when it is None, as for V-COCO)."""
    cols = ["image_id", "subject", "object"]
    inter = pe if no_interaction is None else pe[pe["verb_id"] != no_interaction]
    return pd.DataFrame({
        "pairs": pe[cols].drop_duplicates().groupby("image_id").size(),
        "interactive_pairs": inter[cols].drop_duplicates().groupby("image_id").size(),
    })


def person_entities(inst: pd.DataFrame, subjects: np.ndarray | None) -> pd.DataFrame:
    """One row per distinct annotated person (index ``entity``): image_id, the mean box of its
    near-duplicate boxes (pixels) and ``boxes``, how many boxes were merged into it. With
    ``subjects`` given, only those entities are kept."""
    people = inst[inst["category_id"] == labels.PERSON_COCO_ID]
    grouped = people.groupby("entity")
    ents = grouped[BOX].mean()
    ents["image_id"] = grouped["image_id"].first()
    ents["boxes"] = grouped.size()
    if subjects is not None:
        ents = ents[ents.index.isin(subjects)]
    return ents


def person_summary(ents: pd.DataFrame, images: pd.DataFrame) -> pd.DataFrame:
    """Per image: ``person_boxes`` (before merging), ``persons``, smallest and median person
    area as a fraction of the image area, and the largest IoU and cover (intersection over
    the smaller box) between two distinct persons (NaN with fewer than two persons)."""
    size = images.set_index("image_id")[["width", "height"]].reindex(ents["image_id"])
    image_area = (size["width"] * size["height"]).to_numpy(np.float64)
    xy = ents[BOX].to_numpy(np.float64)
    rel = np.divide(area_np(xy), image_area, out=np.full(len(xy), np.nan), where=image_area > 0)
    grouped = ents.assign(area=rel).groupby("image_id")
    out = pd.DataFrame({
        "person_boxes": grouped["boxes"].sum(),
        "persons": grouped.size(),
        "min_person_area": grouped["area"].min(),
        "median_person_area": grouped["area"].median(),
    })
    i, j = within_group_pairs(ents, ["image_id"])
    overlap = pd.DataFrame({
        "image_id": ents["image_id"].to_numpy()[i],
        "max_person_iou": iou_np(xy[i], xy[j]),
        "max_person_cover": box_cover(xy[i], xy[j]),
    }).groupby("image_id").max()
    return out.join(overlap)


# --------------------------------------------------------------------------- pose persons


def low_keypoint_share(keypoints: pd.Series, score: float) -> np.ndarray:
    """Per pose person, the share of its 17 keypoints scored below ``score``; NaN where the
    backend gave no keypoints (null)."""
    has = keypoints.notna().to_numpy()
    out = np.full(len(keypoints), np.nan)
    if has.any():
        kp = np.stack(keypoints[has].to_list()).reshape(-1, tables.NUM_KEYPOINTS, 3)
        out[has] = (kp[:, :, 2] < score).mean(axis=1)
    return out


def pose_table(persons: pd.DataFrame, parts: pd.DataFrame, cfg: ScenesConfig) -> pd.DataFrame:
    """Pose persons scored >= ``pose_min_score``, with ``low_kp`` (share of low-confidence
    keypoints) and ``fallback`` (share of their part boxes that fell back to the body box)."""
    pose = persons[persons["score"] >= cfg.pose_min_score]
    fallback = parts.groupby(["image_id", "person"], as_index=False)["fallback"].mean()
    out = pose[["image_id", "person", *BOX]].assign(
        low_kp=low_keypoint_share(pose["keypoints"], cfg.keypoint_score)
    )
    fallback = fallback.astype({"fallback": np.float64})
    return out.merge(fallback, on=["image_id", "person"], how="left")


def match_pose(ents: pd.DataFrame, pose: pd.DataFrame, iou: float) -> pd.DataFrame:
    """For each annotated person, the pose person of the same image with the largest box IoU,
    when that IoU is >= ``iou`` (a pose person may serve two near-identical annotations)."""
    left = ents[["image_id", *BOX]].rename_axis("entity").reset_index()
    right = pose.rename(columns={c: f"{c}_p" for c in BOX})
    cand = left.merge(right, on="image_id")
    cand["iou"] = iou_np(cand[BOX].to_numpy(np.float64),
                          cand[[f"{c}_p" for c in BOX]].to_numpy(np.float64))
    cand = cand[cand["iou"] >= iou].sort_values("iou", ascending=False, kind="stable")
    return cand.drop_duplicates("entity")[["image_id", "entity", "low_kp", "fallback"]]


def pose_summary(ents: pd.DataFrame, pose: pd.DataFrame, cfg: ScenesConfig) -> pd.DataFrame:
    """Per image: pose persons, annotated persons matched to one, and the matched pose
    persons' mean share of low-confidence keypoints and of fallback part boxes."""
    matched = match_pose(ents, pose, cfg.pose_match_iou).groupby("image_id")
    return pd.DataFrame({
        "pose_persons": pose.groupby("image_id").size(),
        "matched_pose": matched.size(),
        "low_conf_keypoints": matched["low_kp"].mean(),
        "part_fallback": matched["fallback"].mean(),
    })


# --------------------------------------------------------------------------- scenes table

COUNTS = ["person_boxes", "persons", "pose_persons", "matched_pose", "pairs", "interactive_pairs"]


def scene_stats(
    frames: dict[str, pd.DataFrame], cfg: ScenesConfig, no_interaction: int | None
) -> pd.DataFrame:
    """One row per image of ``frames['images']`` with the statistics (no splits yet).
    ``frames`` holds the images, instances, pairs, persons and parts tables."""
    images, instances = frames["images"], frames["instances"]
    inst = instances.assign(
        entity=merge_duplicates(instances, ["image_id", "category_id"], cfg.merge_iou)
    )
    pe = pair_entities(frames["pairs"], inst)
    subjects = pe["subject"].unique() if cfg.person_source == "subjects" else None
    ents = person_entities(inst, subjects)
    pose = pose_table(frames["persons"], frames["parts"], cfg)
    kind = images["scene_kind"] if "scene_kind" in images.columns else pd.Series(None, index=images.index, dtype="str")
    out = (
        images[["image_id", "split"]].assign(scene_kind=kind.to_numpy()).set_index("image_id")
        .join(person_summary(ents, images))
        .join(pair_counts(pe, no_interaction))
        .join(pose_summary(ents, pose, cfg))
    )
    out[COUNTS] = out[COUNTS].fillna(0).astype(np.int64)
    return out.reset_index()


def add_splits(stats: pd.DataFrame, cfg: ScenesConfig) -> pd.DataFrame:
    """Add the boolean ``crowded``, ``tiny``, ``occluded`` and ``TAG_SPLITS`` columns (rules in
    the module docstring). Missing measures (no persons, no matched pose) never set a flag."""
    crowded = stats["persons"] >= cfg.crowded_persons
    if cfg.crowded_pairs is not None:
        crowded |= stats["interactive_pairs"] >= cfg.crowded_pairs
    occluded = pd.Series(False, index=stats.index)
    if cfg.occluded_cover is not None:
        occluded |= stats["max_person_cover"].fillna(0) >= cfg.occluded_cover
    if cfg.occluded_keypoints is not None:
        occluded |= stats["low_conf_keypoints"].fillna(0) >= cfg.occluded_keypoints
    return stats.assign(
        crowded=crowded.to_numpy(bool),
        tiny=(stats["min_person_area"] < cfg.tiny_area).to_numpy(bool),  # NaN < x is False
        occluded=occluded.to_numpy(bool),
        **{tag: (stats["scene_kind"] == tag).fillna(False).to_numpy(bool) for tag in TAG_SPLITS},
    )


def sample_weights(scenes: pd.DataFrame, alpha: float) -> np.ndarray:
    """Sampling weight per image: ``alpha`` for crowded training images, 1 for sparse ones and
    for every image outside the train split (never sampled). α = 1 is plain uniform."""
    crowded_train = scenes["crowded"].to_numpy(bool) & (scenes["split"] == "train").to_numpy()
    return np.where(crowded_train, alpha, 1.0)


def compute_scenes(
    frames: dict[str, pd.DataFrame], cfg: ScenesConfig, alpha: float, no_interaction: int | None
) -> pd.DataFrame:
    """The scenes table (schema ``scenes`` in pipeline/tables.py) from the input tables."""
    scenes = add_splits(scene_stats(frames, cfg, no_interaction), cfg)
    return scenes.assign(sample_weight=sample_weights(scenes, alpha))


# --------------------------------------------------------------------------- summary


def _split_summary(all_rows: pd.DataFrame, annotated: np.ndarray, name: str) -> dict[str, float]:
    """Statistics over the annotated images of ``all_rows``; the others (no annotation record,
    e.g. HICO-DET's 112 test images without a visible pair) are only counted."""
    df = all_rows[annotated]
    n = len(df)
    out: dict[str, float] = {f"{name}/images": n, f"{name}/unannotated_images": int((~annotated).sum())}
    for flag in FLAGS:
        count = int(df[flag].sum())
        out[f"{name}/{flag}/count"] = count
        out[f"{name}/{flag}/share"] = round(count / n, 6) if n else 0.0
    for col in ("persons", "interactive_pairs"):
        out[f"{name}/{col}/mean"] = round(float(df[col].mean()), 6) if n else 0.0
    out[f"{name}/duplicate_person_boxes"] = int((df["person_boxes"] - df["persons"]).sum())
    persons = int(df["persons"].sum())
    matched = int(df["matched_pose"].sum())
    out[f"{name}/pose_matched/share"] = round(matched / persons, 6) if persons else 0.0
    return out


def summarize(scenes: pd.DataFrame, alpha: float, annotated: np.ndarray | None = None,
              pose_available: bool = True) -> dict[str, float]:
    """Flat numeric metrics: per dataset split and ``all``, over the annotated images
    (``annotated`` [len(scenes)] bool, default all): image count, count and share of
    crowded/tiny/occluded/cross_person images, mean persons and interactive pairs, merged duplicate boxes,
    share of persons matched to a pose; the unannotated images are counted apart
    (``<split>/unannotated_images``). Plus α, ``pose_available`` (0: no pose output, the
    keypoint criterion of ``occluded`` is unavailable) and the expected share of crowded
    images in the sampler's draws from the train split (``train/sampled_crowded_share``)."""
    out: dict[str, float] = {"alpha": alpha, "pose_available": float(pose_available)}
    flags = pd.Series(np.ones(len(scenes), bool) if annotated is None else np.asarray(annotated, bool),
                      index=scenes.index)
    for name, df in [*scenes.groupby("split", sort=True), ("all", scenes)]:
        out.update(_split_summary(df, flags[df.index].to_numpy(), str(name)))
    train = scenes[scenes["split"] == "train"]
    total = float(train["sample_weight"].sum())
    crowded = float(train.loc[train["crowded"], "sample_weight"].sum())
    out["train/sampled_crowded_share"] = round(crowded / total, 6) if total else 0.0
    return out


# --------------------------------------------------------------------------- stage


def print_summary(summary: dict[str, float]) -> None:
    """The summary as a rich table: one row per statistic, one column per dataset split."""
    from rich.console import Console
    from rich.table import Table

    columns: dict[str, dict[str, float]] = {}
    for key, value in summary.items():
        name, _, stat = key.partition("/")
        if stat and stat != "sampled_crowded_share" and name != "pose_available":
            columns.setdefault(name, {})[stat] = value
    title = (f"scenes (alpha = {summary['alpha']:g}; crowded share of the train draws = "
             f"{summary.get('train/sampled_crowded_share', 0):.3f})")
    table = Table(title=title)
    table.add_column("statistic")
    for name in columns:
        table.add_column(name, justify="right")
    for stat in next(iter(columns.values()), {}):
        table.add_row(stat, *(f"{col.get(stat, 0):g}" for col in columns.values()))
    Console().print(table)


def read_frames(data: Path) -> tuple[dict[str, pd.DataFrame], bool]:
    """The input tables of ``data`` and whether pose output is there: without both pose
    tables they stand in empty; one of the two alone is an error (a half-written pose stage)."""
    present = [(data / f"{name}.parquet").exists() for name in POSE_TABLES]
    names = TABLES if any(present) else tuple(n for n in TABLES if n not in POSE_TABLES)
    frames = {name: tables.read(data / f"{name}.parquet", name) for name in names}
    for name in POSE_TABLES:
        frames.setdefault(name, tables.empty(name))
    return frames, any(present)


def run(params: str | Path, data: str | Path, out: str | Path, report: str | Path) -> pd.DataFrame:
    """Read the five input tables from ``data``, write the scenes table to ``out`` and the
    summary metrics to ``report`` (JSON), print what was read and written, return the table."""
    cfg = section("scenes", ScenesConfig, params, keys=PARAMS)
    alpha = train_alpha(params)
    fmt = section("dataset", DatasetConfig, params, keys=PARAMS).format
    no_interaction = labels.hico().no_interaction_verb_id if fmt == "hico-det" else None
    frames, pose_available = read_frames(Path(data))
    print("read " + ", ".join(f"{len(df)} {name}" for name, df in frames.items()) + f" from {data}")
    if not pose_available:
        print(f"no pose output in {data} (persons.parquet, parts.parquet): occlusion from keypoints unavailable, "
              "'occluded' from person overlap only")
    scenes = compute_scenes(frames, cfg, alpha, no_interaction)
    tables.write(scenes, "scenes", out)
    annotated = frames["images"].set_index("image_id")["annotated"].reindex(scenes["image_id"])
    summary = summarize(scenes, alpha, annotated.fillna(True).to_numpy(bool), pose_available)
    tables.write_json(summary, report)
    merged = summary["all/duplicate_person_boxes"]
    print(f"wrote {len(scenes)} images to {out} ({merged} near-duplicate person boxes merged at "
          f"IoU >= {cfg.merge_iou}) and the summary to {report}")
    print_summary(summary)
    return scenes


def main() -> None:
    """The DVC stage's command (``python -m pipeline.stage scenes``): default paths."""
    run(DEFAULT_PARAMS, Path("data/processed"), Path("data/processed/scenes.parquet"), Path("reports/scenes.json"))
