"""The scenes stage on hand-built tables: duplicate merging, split rules at their thresholds,
pose matching, sampling weights, the summary and the stage/CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from model.box_geometry import iou_np
from pipeline import scenes as sc
from pipeline import tables
from pipeline.params import ParamsError

NO_INTERACTION = 58
W = H = 100  # every test image is 100 x 100 px, so a 10 x 10 box is 1 % of it


def frame(name: str, rows: list[dict]) -> pd.DataFrame:
    """``rows`` as table ``name``, round-tripped through its arrow schema as a stage reads it."""
    if not rows:
        return tables.empty(name)
    return tables.to_arrow(pd.DataFrame(rows), name).to_pandas()


def image(image_id: str, split: str = "train") -> dict:
    return dict(image_id=image_id, split=split, file=f"{image_id}.jpg", width=W, height=H,
                annotated=True)


def inst(image_id: str, index: int, box: tuple, category: int = 1) -> dict:
    return dict(image_id=image_id, index=index, category_id=category,
                **dict(zip(sc.BOX, map(float, box))))


def pair(image_id: str, subject: int, obj: int | None, verb: int = 1) -> dict:
    return dict(image_id=image_id, subject=subject, object=obj, verb_id=verb, hoi_id=1, role=None)


def pose(image_id: str, person: int, box: tuple, low: int = 0, score: float = 0.9) -> dict:
    """A pose person whose first ``low`` keypoints are scored 0.1, the others 0.9."""
    kp = np.zeros((17, 3), np.float32)
    kp[:, 2] = 0.9
    kp[:low, 2] = 0.1
    return dict(image_id=image_id, person=person, **dict(zip(sc.BOX, map(float, box))),
                score=score, keypoints=kp.ravel(), part_boxes=None, backend="test")


def frames(images=(), instances=(), pairs=(), persons=(), parts=()) -> dict[str, pd.DataFrame]:
    return {"images": frame("images", list(images)), "instances": frame("instances", list(instances)),
            "pairs": frame("pairs", list(pairs)), "persons": frame("persons", list(persons)),
            "parts": frame("parts", list(parts))}


def scenes(fr: dict, alpha: float = 3.0, no_interaction: int | None = NO_INTERACTION, **cfg) -> pd.DataFrame:
    out = sc.compute_scenes(fr, sc.ScenesConfig(**cfg), alpha, no_interaction)
    tables.to_arrow(out, "scenes")  # always matches the schema
    return out.set_index("image_id")


# --------------------------------------------------------------------------- geometry, merging


def test_box_iou_and_cover() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 0, 0]], float)
    b = np.array([[0, 0, 10, 5], [20, 20, 30, 30], [0, 0, 0, 0]], float)
    assert iou_np(a, b).tolist() == [0.5, 0.0, 0.0]
    small_inside = np.array([[2, 2, 4, 4]], float)
    assert sc.box_cover(a[:1], small_inside).tolist() == [1.0]
    assert iou_np(a[:1], small_inside)[0] == pytest.approx(0.04)


def test_merge_duplicates_threshold_chain_and_groups() -> None:
    boxes = pd.DataFrame(
        [("a", 1, 0, 0, 10, 10), ("a", 1, 0, 0, 10, 5),  # IoU exactly 0.5
         ("a", 1, 0, 0, 10, 2.5),  # IoU 0.5 with the previous one: chained
         ("a", 3, 0, 0, 10, 10),  # same box, other category
         ("b", 1, 0, 0, 10, 10)],  # same box, other image
        columns=["image_id", "category_id", *sc.BOX],
    )
    at = sc.merge_duplicates(boxes, ["image_id", "category_id"], 0.5)
    assert at[0] == at[1] == at[2] and len(set(at)) == 3
    above = sc.merge_duplicates(boxes, ["image_id", "category_id"], 0.51)
    assert len(set(above)) == 5


# --------------------------------------------------------------------------- persons and pairs


def hico_like() -> dict:
    """Image a: one person annotated twice (IoU 0.9) for two HOIs with the same object, one
    of them no_interaction; image b: two distinct persons; image c: test, unannotated."""
    return frames(
        images=[image("a"), image("b"), image("c", "test")],
        instances=[inst("a", 0, (0, 0, 50, 100)), inst("a", 1, (60, 60, 70, 70), 3),
                   inst("a", 2, (0, 0, 50, 90)), inst("a", 3, (60, 60, 70, 70), 3),
                   inst("b", 0, (0, 0, 40, 80)), inst("b", 1, (50, 0, 90, 80)),
                   inst("b", 2, (40, 80, 50, 90), 3)],
        pairs=[pair("a", 0, 1, 5), pair("a", 2, 3, NO_INTERACTION),
               pair("b", 0, 2, NO_INTERACTION), pair("b", 0, 1, NO_INTERACTION)],
    )


def test_duplicates_merged_into_persons_and_pairs() -> None:
    out = scenes(hico_like())
    assert out.loc["a", ["person_boxes", "persons", "pairs", "interactive_pairs"]].tolist() == [2, 1, 1, 1]
    assert out.loc["b", ["person_boxes", "persons", "pairs", "interactive_pairs"]].tolist() == [2, 2, 2, 0]
    assert out.loc["c", ["persons", "pairs", "crowded", "tiny", "occluded"]].tolist() == [0, 0, False, False, False]
    # the merged person is the mean box (0, 0, 50, 95): 47.5 % of the image
    assert out.loc["a", "min_person_area"] == pytest.approx(0.475)
    assert np.isnan(out.loc["a", "max_person_iou"]) and np.isnan(out.loc["c", "min_person_area"])
    unmerged = scenes(hico_like(), merge_iou=0.95)
    assert unmerged.loc["a", ["persons", "pairs"]].tolist() == [2, 2]


def test_person_source_subjects_and_vcoco_pairs() -> None:
    fr = hico_like()
    subjects = scenes(fr, person_source="subjects")
    assert subjects.loc["b", "persons"] == 1  # person 1 of b is only ever an object
    vcoco = scenes(frames(images=[image("v")], instances=[inst("v", 0, (0, 0, 50, 50))],
                          pairs=[pair("v", 0, None, 2), pair("v", 0, None, 3)]), no_interaction=None)
    assert vcoco.loc["v", ["pairs", "interactive_pairs"]].tolist() == [1, 1]
    assert scenes(fr, no_interaction=None).loc["b", "interactive_pairs"] == 2


# --------------------------------------------------------------------------- split rules


def persons_image(image_id: str, n: int, split: str = "train") -> tuple[dict, list[dict]]:
    """An image with ``n`` disjoint 15 x 15 persons side by side."""
    return image(image_id, split), [inst(image_id, k, (20 * k, 0, 20 * k + 15, 15)) for k in range(n)]


@pytest.mark.parametrize("threshold", [2, 3])
def test_crowded_at_threshold(threshold: int) -> None:
    rows = [persons_image(f"i{n}", n) for n in range(5)]
    fr = frames(images=[r[0] for r in rows], instances=[i for r in rows for i in r[1]])
    out = scenes(fr, crowded_persons=threshold)
    assert out["crowded"].tolist() == [n >= threshold for n in range(5)]


def test_crowded_by_interactive_pairs() -> None:
    img, people = persons_image("p", 1)
    fr = frames(images=[img], instances=[*people, inst("p", 1, (50, 50, 60, 60), 3),
                                         inst("p", 2, (70, 70, 80, 80), 3)],
                pairs=[pair("p", 0, 1), pair("p", 0, 2)])
    assert not scenes(fr)["crowded"].item()
    assert scenes(fr, crowded_pairs=2)["crowded"].item()
    assert not scenes(fr, crowded_pairs=3)["crowded"].item()


def test_tiny_is_strictly_below_threshold() -> None:
    fr = frames(images=[image("edge"), image("below"), image("big")],
                instances=[inst("edge", 0, (0, 0, 10, 10)), inst("below", 0, (0, 0, 10, 9.9)),
                           inst("big", 0, (0, 0, 10, 10)), inst("big", 1, (50, 0, 100, 100))])
    out = scenes(fr, tiny_area=0.01)
    assert out["tiny"].to_dict() == {"edge": False, "below": True, "big": False}
    assert out.loc["big", "median_person_area"] == pytest.approx(0.255)  # median of 1 % and 50 %
    assert scenes(fr, tiny_area=0.011)["tiny"].to_dict() == {"edge": True, "below": True, "big": True}


def test_occluded_by_person_overlap() -> None:
    # cover 0.5 exactly (half of each box), IoU 1/3: two distinct persons
    fr = frames(images=[image("o")], instances=[inst("o", 0, (0, 0, 10, 10)), inst("o", 1, (5, 0, 15, 10))])
    out = scenes(fr, occluded_cover=0.5)
    assert out.loc["o", "max_person_cover"] == pytest.approx(0.5)
    assert out.loc["o", "max_person_iou"] == pytest.approx(1 / 3)
    assert out.loc["o", "occluded"]
    assert not scenes(fr, occluded_cover=0.51).loc["o", "occluded"]
    assert not scenes(fr, occluded_cover=None).loc["o", "occluded"]


def test_occluded_by_low_confidence_keypoints() -> None:
    fr = frames(images=[image("k7"), image("k6")],
                instances=[inst("k7", 0, (0, 0, 50, 100)), inst("k6", 0, (0, 0, 50, 100))],
                persons=[pose("k7", 0, (0, 0, 50, 100), low=7), pose("k6", 0, (0, 0, 50, 100), low=6)])
    out = scenes(fr, occluded_keypoints=7 / 17)
    assert out["occluded"].to_dict() == {"k7": True, "k6": False}
    assert out.loc["k7", "low_conf_keypoints"] == pytest.approx(7 / 17)
    assert not scenes(fr, occluded_keypoints=None)["occluded"].any()


def test_pose_matching_score_and_fallback() -> None:
    parts = [dict(image_id="m", person=0, part=p, group=0, x1=0.0, y1=0.0, x2=1.0, y2=1.0,
                  fallback=p < 4) for p in range(10)]
    fr = frames(images=[image("m")], instances=[inst("m", 0, (0, 0, 50, 100)), inst("m", 1, (60, 0, 100, 100))],
                persons=[pose("m", 0, (0, 0, 50, 100), low=17),  # matches person 0
                         pose("m", 1, (60, 0, 100, 40)),  # IoU 0.4 with person 1: no match
                         pose("m", 2, (0, 0, 50, 90), score=0.3)],  # second-best for person 0
                parts=parts)
    out = scenes(fr)
    assert out.loc["m", ["pose_persons", "matched_pose"]].tolist() == [3, 1]
    assert out.loc["m", "low_conf_keypoints"] == 1.0
    assert out.loc["m", "part_fallback"] == pytest.approx(0.4)
    assert scenes(fr, pose_match_iou=0.4).loc["m", "matched_pose"] == 2
    assert scenes(fr, pose_min_score=0.5).loc["m", "pose_persons"] == 2
    kp_none = frames(images=[image("m")], instances=[inst("m", 0, (0, 0, 50, 100))],
                     persons=[{**pose("m", 0, (0, 0, 50, 100)), "keypoints": None}])
    assert np.isnan(scenes(kp_none).loc["m", "low_conf_keypoints"])


# --------------------------------------------------------------------------- weights, summary


def weights_frames() -> dict:
    rows = [persons_image("s", 1), persons_image("c", 2), persons_image("tc", 3, "test")]
    return frames(images=[r[0] for r in rows], instances=[i for r in rows for i in r[1]])


def test_sample_weights_alpha_and_off() -> None:
    assert scenes(weights_frames(), alpha=3.0)["sample_weight"].to_dict() == {"s": 1.0, "c": 3.0, "tc": 1.0}
    assert scenes(weights_frames(), alpha=1.0)["sample_weight"].tolist() == [1.0, 1.0, 1.0]


def test_summary_keys_and_values() -> None:
    out = sc.compute_scenes(weights_frames(), sc.ScenesConfig(), 3.0, NO_INTERACTION)
    summary = sc.summarize(out, 3.0)
    assert all("/" in k for k in summary if k not in ("alpha", "pose_available"))
    assert summary["pose_available"] == 1.0 and summary["test/unannotated_images"] == 0
    assert all(isinstance(v, (int, float)) for v in summary.values())
    assert summary["test/crowded/share"] == 1.0 and summary["test/images"] == 1
    assert summary["train/crowded/count"] == 1 and summary["train/crowded/share"] == 0.5
    assert summary["all/crowded/share"] == pytest.approx(2 / 3, abs=1e-6)
    assert summary["train/persons/mean"] == 1.5
    assert summary["train/sampled_crowded_share"] == 0.75  # 3 / (1 + 3)
    assert sc.summarize(out.assign(sample_weight=1.0), 1.0)["train/sampled_crowded_share"] == 0.5


def test_empty_inputs() -> None:
    out = scenes(frames(images=[image("e")]))
    assert out.loc["e", ["persons", "pose_persons", "pairs"]].tolist() == [0, 0, 0]
    assert not out.loc["e", ["crowded", "tiny", "occluded"]].any()


# --------------------------------------------------------------------------- params, stage, CLI


def write_inputs(tmp_path: Path, alpha: str = "") -> tuple[Path, Path]:
    data = tmp_path / "processed"
    for name, df in weights_frames().items():
        tables.write(df, name, data / f"{name}.parquet")
    params = tmp_path / "params.yaml"
    params.write_text("dataset: {format: hico-det}\nscenes: {tiny_area: 0.02}\n" + alpha)
    return data, params


def test_train_alpha_accessor(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("scenes: {}\n")
    assert sc.train_alpha(params) == 3.0
    params.write_text("train: {alpha: 1, lr: 0.1}\n")  # other train keys are not ours to check
    assert sc.train_alpha(params) == 1.0
    params.write_text("train: {alpha: 0}\n")
    with pytest.raises(ParamsError, match="train.alpha"):
        sc.train_alpha(params)


def test_cli_scenes_writes_table_and_metrics(tmp_path: Path) -> None:
    from cli import app

    data, params = write_inputs(tmp_path, "train: {alpha: 2.0}\n")
    out, report = tmp_path / "scenes.parquet", tmp_path / "reports" / "scenes.json"
    result = CliRunner().invoke(app, ["scenes", "--params", str(params), "--data", str(data),
                                      "--out", str(out), "--report", str(report)])
    assert result.exit_code == 0, result.output
    table = tables.read(out, "scenes").set_index("image_id")
    assert table["sample_weight"].to_dict() == {"s": 1.0, "c": 2.0, "tc": 1.0}
    assert not table["tiny"].any()  # 15 x 15 px = 2.25 % of the image, tiny_area 2 %
    metrics = json.loads(report.read_text())
    assert metrics["alpha"] == 2.0 and metrics["train/crowded/share"] == 0.5
    assert "crowded/share" in result.output  # the summary table is printed
    (data / "parts.parquet").unlink()
    missing = CliRunner().invoke(app, ["scenes", "--params", str(params), "--data", str(data),
                                       "--out", str(out), "--report", str(report)])
    assert missing.exit_code == 2 and "parts.parquet" in missing.output


# --------------------------------------------------------------------------- scene tags


def test_cross_person_column_follows_the_scene_tag(tmp_path: Path) -> None:
    """Images tagged ``cross_person`` (synth's scene kind, via ingest's images.scene_kind) are
    the cross_person split; other tags and untagged images (real datasets) are not."""
    fr = frames(images=[image("x") | {"scene_kind": "cross_person"}, image("g") | {"scene_kind": "group"},
                        image("r", "test")],
                instances=[inst("x", 0, (0, 0, 30, 60)), inst("g", 0, (0, 0, 30, 60)), inst("r", 0, (0, 0, 30, 60))])
    out = scenes(fr)
    assert out["cross_person"].to_dict() == {"x": True, "g": False, "r": False}
    assert out["scene_kind"].tolist()[:2] == ["cross_person", "group"] and pd.isna(out.loc["r", "scene_kind"])
    path = tables.write(out.reset_index(), "scenes", tmp_path / "scenes.parquet")
    back = tables.read(path, "scenes").set_index("image_id")
    assert back["cross_person"].dtype == bool and back["cross_person"].sum() == 1
    summary = sc.summarize(out.reset_index(), 3.0)
    assert summary["train/cross_person/count"] == 1 and summary["all/cross_person/share"] == pytest.approx(1 / 3)


def test_images_without_the_scene_kind_column_are_untagged() -> None:
    fr = frames(images=[image("a")], instances=[inst("a", 0, (0, 0, 30, 60))])
    fr["images"] = fr["images"].drop(columns="scene_kind")  # a frame built before the column existed
    assert not scenes(fr)["cross_person"].any()


def test_evaluate_reports_interactiveness_ap_on_the_cross_person_split() -> None:
    """evaluate.scene_splits takes the scenes table's cross_person column like any other split."""
    from metrics_fixtures import H, O, gt_tables, hoi, predictions, shift
    from pipeline.evaluate_core import EvaluateConfig, evaluate

    ride = hoi("ride", "bicycle")
    images, inst, pairs = gt_tables([("a", H, O, ride), ("b", H, O, ride)], ["a", "b", "c"])
    preds = predictions([("a", H, O, ride, 0.9), ("b", H, O, ride, 0.8), ("c", shift(H, 50), O, ride, 0.7)])
    preds["interactiveness"] = [0.2, 0.9, 0.5]  # a's true pair ranks below c's false one
    images = images.assign(scene_kind=np.where(images["image_id"].isin(["a", "c"]), "cross_person", None))
    fr = {"images": images, "instances": inst, "pairs": pairs,
          "persons": tables.empty("persons"), "parts": tables.empty("parts")}
    scenes_df = sc.compute_scenes(fr, sc.ScenesConfig(), 3.0, NO_INTERACTION)
    assert scenes_df.set_index("image_id")["cross_person"].to_dict() == {"a": True, "b": False, "c": True}
    cfg = EvaluateConfig(scene_splits=("crowded", "cross_person"))
    metrics, _ = evaluate(preds, images, inst, pairs, scenes_df, "hico-det", cfg)
    assert metrics["interactiveness/not_cross_person/ap"] == 1.0
    assert metrics["interactiveness/cross_person/ap"] == pytest.approx(0.5, abs=0.05)  # 11-point AP of FP, TP
    assert metrics["interactiveness/cross_person/n_gt"] == 1


def test_statistics_over_annotated_images_the_others_counted_apart() -> None:
    fr = weights_frames()
    fr["images"] = pd.concat([fr["images"], frame("images", [{**image("u", "test"), "annotated": False}])],
                             ignore_index=True)
    out = sc.compute_scenes(fr, sc.ScenesConfig(), 3.0, NO_INTERACTION)
    annotated = fr["images"].set_index("image_id")["annotated"].reindex(out["image_id"]).to_numpy(bool)
    summary = sc.summarize(out, 3.0, annotated)
    assert summary["test/images"] == 1 and summary["test/unannotated_images"] == 1
    assert summary["test/crowded/share"] == 1.0  # the unannotated image is no "sparse" image
    assert summary["all/unannotated_images"] == 1 and summary["all/crowded/share"] == pytest.approx(2 / 3, abs=1e-6)


def test_cli_scenes_without_pose_output(tmp_path: Path) -> None:
    from cli import app

    data, params = write_inputs(tmp_path)
    (data / "persons.parquet").unlink()
    (data / "parts.parquet").unlink()
    out, report = tmp_path / "scenes.parquet", tmp_path / "scenes.json"
    result = CliRunner().invoke(app, ["scenes", "--params", str(params), "--data", str(data),
                                      "--out", str(out), "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "occlusion from keypoints unavailable" in result.output
    metrics = json.loads(report.read_text())
    assert metrics["pose_available"] == 0.0 and metrics["train/crowded/share"] == 0.5
    table = tables.read(out, "scenes")
    assert (table["pose_persons"] == 0).all() and table["low_conf_keypoints"].isna().all()
