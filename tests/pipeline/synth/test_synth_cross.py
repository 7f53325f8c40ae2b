"""The cross_person scene kind (pipeline/synth/cross.py): the target pair is decidable only from
the second person's flag. Pixels are compared between the two classes of one seed: with the
cue removed (control) nothing differs; with it, only the held flag does. Then its annotations,
its place in the dataset (mix, V-COCO, determinism) and its way through ingest and scenes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.common import labels
from pipeline import tables
from pipeline.ingest import IngestConfig, ingest
from pipeline.params import DatasetConfig
from pipeline.scenes import ScenesConfig, compute_scenes
from pipeline.synth import generate
from pipeline.synth.catalog import KITE, SPORTS_BALL
from pipeline.synth.config import SynthConfig, tiny_config
from pipeline.synth.cross import BEARER, GO, PLAYER, STOP, lay_out
from pipeline.synth.draw import render
from pipeline.synth.hico import hico_record
from pipeline.synth.scene import Background, Scene, intersects

SEEDS = range(12)
HICO = labels.hico()
VERB = {n: v for v, n in HICO.verb_names.items()}


def scene_of(seed: int, kick: bool, **cfg: object) -> Scene:
    """The cross_person scene of ``seed`` with A's label forced to ``kick``."""
    scene = Scene(224, 224, "cross_person", Background((200, 205, 210), (170, 175, 160), 0.7, 8.0, seed))
    lay_out(np.random.default_rng(seed), SynthConfig(**cfg), scene, kick=kick)
    return scene


def pixels(scene: Scene) -> np.ndarray:
    return np.asarray(render(scene)[0]).astype(np.int16)


def decoys(scene: Scene) -> list:
    return [t for t in scene.objects if t.coco_id == KITE and t.distractor]


@pytest.mark.parametrize("seed", SEEDS)
def test_control_classes_are_pixel_identical(seed: int) -> None:
    """R neutral: A, the ball and the decoys (the whole image) are the same in both classes, so
    no detector can tell them apart; only the annotation differs."""
    kick, idle = scene_of(seed, True, cross_person_control=True), scene_of(seed, False, cross_person_control=True)
    assert np.array_equal(pixels(kick), pixels(idle))
    assert all(t.coco_id != KITE or t.distractor for t in kick.objects)  # nothing in R's hand
    assert kick.persons[BEARER].action is None and kick.persons[BEARER].obj is None
    assert kick.persons[PLAYER].action == "kick" and kick.no_interaction == []
    assert idle.persons[PLAYER].action is None and idle.no_interaction == [(PLAYER, idle.persons[PLAYER].obj)]
    for a, b in zip(kick.objects, idle.objects, strict=True):
        assert a.coco_id == b.coco_id and np.array_equal(a.box, b.box) and a.color == b.color


@pytest.mark.parametrize("seed", SEEDS)
def test_with_the_cue_the_classes_differ_only_in_the_held_flag(seed: int) -> None:
    kick, idle = scene_of(seed, True), scene_of(seed, False)
    diff = np.abs(pixels(kick) - pixels(idle)).max(axis=2) > 0
    flag = kick.objects[kick.persons[BEARER].obj]
    assert flag.coco_id == KITE and not flag.distractor and flag.color == GO
    assert idle.objects[idle.persons[BEARER].obj].color == STOP
    x1, y1 = np.floor(flag.box[:2]).astype(int) - 1
    x2, y2 = np.ceil(flag.box[2:]).astype(int) + 1
    inside = np.zeros_like(diff)
    inside[max(y1, 0):y2, max(x1, 0):x2] = True
    assert diff.any() and not (diff & ~inside).any()
    # the same scene without the cue is the kick image minus the held flag, elsewhere identical
    control = pixels(scene_of(seed, True, cross_person_control=True))
    assert not ((np.abs(pixels(kick) - control).max(axis=2) > 0) & ~inside).any()


def test_decoy_flags_of_both_colours_stand_clear_of_persons() -> None:
    both = 0
    for seed in range(40):
        scene = scene_of(seed, bool(seed % 2))
        colours = sorted(t.color for t in decoys(scene))
        both += colours == sorted([GO, STOP])
        for t in decoys(scene):
            assert not any(intersects(t.box, p.box, 0.1 * p.body.height) for p in scene.persons)
            assert t.color in (GO, STOP)
    assert both >= 36  # they fit in nearly every image (the rest lacks one, whatever the label)


def test_annotations_part_labels_and_hoi_classes() -> None:
    rng = np.random.default_rng(0)
    for kick in (True, False):
        rec = hico_record(scene_of(3, kick), "x.jpg", 1, rng, 0.0)
        assert rec["scene"] == "cross_person"
        got = {(HICO.verb_names[h["category_id"]], rec["annotations"][h["object_id"]]["category_id"],
                rec["annotations"][h["subject_id"]]["bbox"][0], tuple(h["part_labels"])) for h in rec["hoi_annotation"]}
        ball = [h for h in rec["hoi_annotation"] if rec["annotations"][h["object_id"]]["category_id"] == SPORTS_BALL]
        flag = [h for h in rec["hoi_annotation"] if rec["annotations"][h["object_id"]]["category_id"] == KITE]
        assert len(ball) == 1 and len(flag) == 1 and len(got) == 2
        assert HICO.verb_names[ball[0]["category_id"]] == ("kick" if kick else "no_interaction")
        assert ball[0]["part_labels"] == ([1, 1, 0, 0, 0, 0] if kick else [0] * 6)  # foot, leg | none
        # R's flag is a signal: never a positive, so the split's positives are A's kicks alone
        assert HICO.verb_names[flag[0]["category_id"]] == "no_interaction" and flag[0]["part_labels"] == [0] * 6
        for h in rec["hoi_annotation"]:
            obj = rec["annotations"][h["object_id"]]["category_id"]
            assert h["hoi_category_id"] == HICO.hoi_id(h["category_id"], obj) is not None
    control = hico_record(scene_of(3, True, cross_person_control=True), "x.jpg", 1, rng, 0.0)
    assert [HICO.verb_names[h["category_id"]] for h in control["hoi_annotation"]] == ["kick"]  # R holds nothing


def test_labels_are_drawn_at_random_and_unannotated_images_have_no_interaction() -> None:
    cfg = SynthConfig()
    kicks = []
    for seed in range(200):
        scene = Scene(224, 224, "cross_person", Background((200, 200, 200), None, 0.7, 0.0, 0))
        kicks.append(lay_out(np.random.default_rng(seed), cfg, scene))
        assert (scene.persons[PLAYER].action == "kick") == kicks[-1]
    assert 0.4 < np.mean(kicks) < 0.6
    scene = Scene(224, 224, "cross_person", Background((200, 200, 200), None, 0.7, 0.0, 0))
    lay_out(np.random.default_rng(1), cfg, scene, interactions=False)
    assert all(p.action is None and p.obj is None for p in scene.persons) and scene.no_interaction == []
    assert all(t.distractor for t in scene.objects)  # no ball, no held flag
    assert hico_record(scene, "x.jpg", 1, np.random.default_rng(0), 0.0) is None


def test_mix_validation_and_vcoco_has_no_cross_person_images(tmp_path: Path) -> None:
    only = {"sparse": 0, "crowded": 0, "group": 0, "tiny": 0, "occluded": 0, "cross_person": 1}
    with pytest.raises(ValueError, match="V-COCO images need a positive share"):
        tiny_config(mix=only)
    cfg = tiny_config(mix={"cross_person": 1.0}, hico_train=6, hico_test=4)
    summary = generate(cfg, 0, tmp_path)
    kinds = {(im.dataset, im.kind) for im in summary.images}
    assert ("hico", "cross_person") in kinds and ("vcoco", "cross_person") not in kinds
    assert summary.as_dict()["datasets"]["vcoco"]["splits"]["train"]["scenes"]["cross_person"] == 0


def test_cross_person_images_reach_the_scenes_split(tmp_path: Path) -> None:
    """synth -> ingest -> scenes: the tagged images form the cross_person split, every synthetic
    HICO-DET pair carries part labels, and A's pairs are kick / no_interaction balls."""
    summary = generate(tiny_config(hico_train=20, hico_test=10), 7, tmp_path)
    res = ingest(DatasetConfig(format="hico-det", root=tmp_path / "hico_20160224_det"), IngestConfig())
    kind = {Path(im.file).stem: im.kind for im in summary.images if im.dataset == "hico" and im.annotated}
    tagged = res.images.dropna(subset=["scene_kind"]).set_index("image_id")["scene_kind"].to_dict()
    assert tagged == kind and "cross_person" in tagged.values()
    assert res.pairs["part_labels"].notna().all()
    frames = {"images": res.images, "instances": res.instances, "pairs": res.pairs,
              "persons": tables.empty("persons"), "parts": tables.empty("parts")}
    scenes = compute_scenes(frames, ScenesConfig(), 3.0, HICO.no_interaction_verb_id).set_index("image_id")
    assert scenes["cross_person"].to_dict() == {i: kind.get(i) == "cross_person" for i in scenes.index}
    cross = res.pairs[res.pairs["image_id"].map(kind) == "cross_person"]
    ball = cross.merge(res.instances, left_on=["image_id", "object"], right_on=["image_id", "index"])
    ball = ball[ball["category_id"] == SPORTS_BALL]
    assert set(ball["verb_id"]) <= {VERB["kick"], VERB["no_interaction"]}
    assert len(ball) == (np.array(list(kind.values())) == "cross_person").sum()  # one target pair per image


def test_same_seed_same_cross_person_files(tmp_path: Path) -> None:
    cfg = tiny_config(mix={"cross_person": 1.0}, hico_train=4, hico_test=0, vcoco_train=0, vcoco_test=0)
    generate(cfg, 11, tmp_path / "a")
    generate(cfg, 11, tmp_path / "b")
    for sub in ("annotations/trainval_hico.json", "images/train2015/HICO_train2015_00000003.jpg"):
        path = Path("hico_20160224_det") / sub
        assert (tmp_path / "a" / path).read_bytes() == (tmp_path / "b" / path).read_bytes()
    assert json.loads((tmp_path / "a" / "hico_20160224_det/annotations/trainval_hico.json").read_text())
