"""The synthetic dataset: determinism, the exact structure of every file it writes (read back
with the real formats' rules: PPDM/QPIC JSON, pycocotools, vsrl_eval's reshaping), the
body-part geometry of interactions, the scene mix and the simulated pose faults."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from model.common import labels
from model.common.errors import UserError
from pipeline.params import ParamsError, section
from pipeline.synth import allocate, generate, run
from pipeline.synth.alphapose import detect
from pipeline.synth.body import ARM, LEG, POSES, pose_body
from pipeline.synth.catalog import (
    ACTIONS, BOTTLE, CUP, SPORTS_BALL, TV, check_catalog, hico_verb_ids, vcoco_correspondence,
)
from pipeline.synth.config import SCENE_KINDS, PoseFaults, SynthConfig, tiny_config
from pipeline.synth.draw import render
from pipeline.synth.hico import hico_box, hico_record
from pipeline.synth.scene import DISTRACTOR_CLEARANCE, intersects, make_scene

HICO = "hico_20160224_det"
VCOCO = "v-coco"
# part_labels by HICO-DET verb, groups foot, leg, hip, hand, arm, head (written out by hand)
HAND_ARM, FOOT_LEG, HIP_LEG = [0, 0, 0, 1, 1, 0], [1, 1, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0]
PARTS_OF_VERB = {"hold": HAND_ARM, "carry": HAND_ARM, "kick": FOOT_LEG, "sit_on": HIP_LEG, "ride": HIP_LEG,
                 "straddle": HIP_LEG, "watch": [0, 0, 0, 0, 0, 1], "no_interaction": [0] * 6}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, SynthConfig]:
    cfg = tiny_config()
    out = tmp_path_factory.mktemp("synth")
    return out, generate(cfg, 3, out), cfg


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _load(path: Path) -> object:
    return json.loads(path.read_text())


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tiny, tmp_path: Path) -> None:
    out, _, cfg = tiny
    again = generate(cfg, 3, tmp_path / "again")
    first, second = _files(out), _files(tmp_path / "again")
    assert sorted(first) == sorted(second)
    assert [k for k in first if first[k] != second[k]] == []
    assert {str(p.relative_to(tmp_path / "again")) for p in again.files} <= set(second)

    other = _files(generate(cfg, 4, tmp_path / "other") and tmp_path / "other")
    assert other[f"{HICO}/annotations/trainval_hico.json"] != first[f"{HICO}/annotations/trainval_hico.json"]
    images = [k for k in first if k.endswith(".jpg") and k in other]
    assert sum(first[k] != other[k] for k in images) >= 0.9 * len(images)


def test_rerun_replaces_a_larger_earlier_run(tmp_path: Path) -> None:
    generate(tiny_config(hico_train=14), 0, tmp_path)
    generate(tiny_config(), 0, tmp_path)
    assert len(list((tmp_path / HICO / "images" / "train2015").iterdir())) == 12


def test_refuses_to_replace_a_folder_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / HICO).mkdir()
    (tmp_path / HICO / "anno.mat").write_text("real data")
    with pytest.raises(UserError, match="not written by the synth stage"):
        generate(tiny_config(), 0, tmp_path)
    assert (tmp_path / HICO / "anno.mat").read_text() == "real data"


# ---------------------------------------------------------------- HICO-DET files


def test_hico_box_is_one_based_inclusive() -> None:
    # pixels 0..9 (columns) and 0..4 (rows) covered -> 1-based indices 1..10, 1..5
    assert hico_box(np.array([0.0, 0.0, 10.0, 5.0]), 20, 20) == [1, 1, 10, 5]
    # a box starting inside pixel 3 and ending inside pixel 10 covers pixels 3..10 -> 4..11
    assert hico_box(np.array([3.2, 4.7, 10.1, 9.0]), 20, 20) == [4, 5, 11, 9]
    assert hico_box(np.array([-3.0, 2.0, 25.0, 30.0]), 20, 16) == [1, 3, 20, 16]


def test_hico_annotation_files(tiny) -> None:
    out, summary, cfg = tiny
    hico = labels.hico()
    root = out / HICO
    for split, ann, folder, pattern in (("train", "trainval_hico.json", "train2015", r"HICO_train2015_(\d{8})\.jpg"),
                                        ("test", "test_hico.json", "test2015", r"HICO_test2015_(\d{8})\.jpg")):
        records = _load(root / "annotations" / ann)
        assert isinstance(records, list) and records
        for rec in records:
            match = re.fullmatch(pattern, rec["file_name"])
            assert match
            if split == "train":
                assert list(rec) == ["file_name", "img_id", "annotations", "hoi_annotation", "scene"]
                assert rec["img_id"] == int(match.group(1))
            else:  # PPDM's test_hico.json has no img_id and no hoi_category_id
                assert list(rec) == ["file_name", "annotations", "hoi_annotation", "scene"]
            assert rec["scene"] in SCENE_KINDS
            with Image.open(root / "images" / folder / rec["file_name"]) as im:
                w, h = im.size
            for a in rec["annotations"]:
                assert set(a) == {"bbox", "category_id"} and a["category_id"] in hico.object_coco_ids
                x1, y1, x2, y2 = a["bbox"]
                assert all(isinstance(v, int) for v in a["bbox"])
                assert 1 <= x1 <= x2 <= w and 1 <= y1 <= y2 <= h
            assert rec["hoi_annotation"]
            for hoi in rec["hoi_annotation"]:
                keys = ["subject_id", "object_id", "category_id"] + (["hoi_category_id"] if split == "train" else [])
                assert list(hoi) == keys + ["part_labels"]
                verb = hico.verb_names[hoi["category_id"]]
                assert hoi["part_labels"] == PARTS_OF_VERB[verb]
                subject, obj = rec["annotations"][hoi["subject_id"]], rec["annotations"][hoi["object_id"]]
                assert subject["category_id"] == labels.PERSON_COCO_ID
                hoi_id = hico.hoi_id(hoi["category_id"], obj["category_id"])
                assert hoi_id is not None and hoi.get("hoi_category_id", hoi_id) == hoi_id
        on_disk = {p.name for p in (root / "images" / folder).iterdir()}
        listed = {r["file_name"] for r in records}
        assert listed <= on_disk
        expected = [im for im in summary.images if im.dataset == "hico" and im.split == split]
        assert len(on_disk) == len(expected)
        assert len(on_disk - listed) == sum(not im.annotated for im in expected)
    omitted = [im for im in summary.images if im.dataset == "hico" and im.split == "test" and not im.annotated]
    assert len(omitted) >= 1  # like HICO-DET's 112 test images without annotations
    corre = np.load(root / "annotations" / "corre_hico.npy")
    assert corre.shape == (117, 80) and corre.sum() == 600
    assert np.array_equal(corre, hico.correspondence())


def test_hico_near_duplicate_human_boxes_and_no_interaction(tmp_path: Path) -> None:
    cfg = tiny_config(actions=("ride", "carry"), duplicate_box_rate=1.0, no_interaction_rate=1.0,
                      distractors=(2, 2), hico_test=0)
    generate(cfg, 1, tmp_path)
    records = _load(tmp_path / HICO / "annotations" / "trainval_hico.json")
    dup = no_inter = 0
    for rec in records:
        boxes = [np.array(a["bbox"]) for a in rec["annotations"]]
        by_object: dict[int, set[int]] = {}
        for hoi in rec["hoi_annotation"]:
            if hoi["category_id"] == labels.hico().no_interaction_verb_id:
                no_inter += 1  # several idle persons may share one distractor
            else:
                by_object.setdefault(hoi["object_id"], set()).add(hoi["subject_id"])
        for subjects in by_object.values():
            s = sorted(subjects)
            for a, b in zip(s, s[1:]):
                diff = np.abs(boxes[a] - boxes[b])
                assert 0 < diff.max() <= 2  # near-identical, never exact copies
                dup += 1
    assert dup >= len(records)  # every ride/carry pair has two verbs, each with its own box
    assert no_inter >= 1


def test_hico_test_records_give_every_hoi_its_own_boxes(tmp_path: Path) -> None:
    cfg = tiny_config(actions=("ride", "carry"), duplicate_box_rate=0.5, hico_train=0, hico_test=8,
                      no_interaction_rate=0.0, hico_unannotated_test_rate=0.0, mix={"cross_person": 0.0})
    generate(cfg, 5, tmp_path)
    records = _load(tmp_path / HICO / "annotations" / "test_hico.json")
    near = exact = 0
    for rec in records:
        hois = rec["hoi_annotation"]
        assert len(rec["annotations"]) == 2 * len(hois)  # a human and an object box per HOI
        used = [h["subject_id"] for h in hois] + [h["object_id"] for h in hois]
        assert len(set(used)) == len(used)
        for a, b in zip(hois[::2], hois[1::2]):  # ride and carry pairs have two verbs each
            for key in ("subject_id", "object_id"):
                diff = np.abs(np.subtract(rec["annotations"][a[key]]["bbox"], rec["annotations"][b[key]]["bbox"]))
                assert diff.max() <= 2
                near, exact = near + (diff.max() > 0), exact + (diff.max() == 0)
    assert near > 0 and exact > 0


# ---------------------------------------------------------------- V-COCO files


def test_vcoco_qpic_files(tiny) -> None:
    out, _, cfg = tiny
    vcoco = labels.vcoco()
    for ann, folder, n, tag in (("trainval_vcoco.json", "train2014", cfg.vcoco_train, "train"),
                                ("test_vcoco.json", "val2014", cfg.vcoco_test, "val")):
        records = _load(out / VCOCO / "annotations" / ann)
        assert len(records) == n
        for rec in records:
            assert list(rec) == ["annotations", "hoi_annotation", "file_name"]
            assert re.fullmatch(rf"COCO_{tag}2014_\d{{12}}\.jpg", rec["file_name"])
            assert (out / VCOCO / "images" / folder / rec["file_name"]).is_file()
            for a in rec["annotations"]:
                assert list(a) == ["category_id", "bbox"]
                assert a["bbox"][0] <= a["bbox"][2] and a["bbox"][1] <= a["bbox"][3]
            for hoi in rec["hoi_annotation"]:
                action, role = vcoco.verb_roles[hoi["category_id"]]
                assert rec["annotations"][hoi["subject_id"]]["category_id"] == labels.PERSON_COCO_ID
                if role is None:
                    assert hoi["object_id"] == -1
                else:
                    assert -1 <= hoi["object_id"] < len(rec["annotations"])
    corre = np.load(out / VCOCO / "annotations" / "corre_vcoco.npy")
    assert corre.shape == (29, 80)  # QPIC's loaders append the 81st, "missing object", column
    col = {c: i for i, c in enumerate(labels.hico().object_coco_ids)}
    assert corre[vcoco.verb_role_index("stand", None)].all()
    assert corre[vcoco.verb_role_index("kick", "obj"), col[SPORTS_BALL]] == 1
    assert corre[vcoco.verb_role_index("kick", "obj"), col[CUP]] == 0
    assert np.array_equal(corre, vcoco_correspondence(cfg.actions))


def test_instances_load_with_pycocotools(tiny) -> None:
    out, _, cfg = tiny
    coco = COCO(str(out / VCOCO / "data" / "instances_vcoco_all_2014.json"))
    assert len(coco.getImgIds()) == cfg.vcoco_train + cfg.vcoco_test
    assert len(coco.getCatIds()) == 80 and coco.loadCats(1)[0]["name"] == "person"
    for ann in coco.loadAnns(coco.getAnnIds()):
        img = coco.loadImgs(ann["image_id"])[0]
        x, y, w, h = ann["bbox"]
        assert ann["area"] > 0 and w > 0 and h > 0 and ann["iscrowd"] == 0
        assert 0 <= x and x + w <= img["width"] + 1e-6 and y + h <= img["height"] + 1e-6
    assert coco.annToMask(coco.loadAnns(coco.getAnnIds())[0]).sum() > 0


def _vsrl(path: Path) -> list[dict]:
    """vsrl_eval._load_vcoco's reshaping of the official annotation file."""
    data = _load(path)
    for entry in data:
        entry["role_object_id"] = np.array(entry["role_object_id"]).reshape((len(entry["role_name"]), -1)).T
        for key in ("ann_id", "label", "image_id"):
            entry[key] = np.array(entry[key]).reshape((-1, 1))
    return data


def test_official_vcoco_files_follow_vsrl_eval(tiny) -> None:
    out, _, _ = tiny
    vcoco = labels.vcoco()
    coco = COCO(str(out / VCOCO / "data" / "instances_vcoco_all_2014.json"))
    data = _vsrl(out / VCOCO / "data" / "vcoco" / "vcoco_test.json")
    assert [d["action_name"] for d in data] == list(vcoco.actions.values())
    ids = np.loadtxt(out / VCOCO / "data" / "splits" / "vcoco_test.ids")
    assert np.all(np.equal(np.sort(np.unique(data[0]["image_id"])), ids))  # vsrl_eval's own check
    positives = 0
    for d in data:
        assert tuple(d["role_name"]) == vcoco.action_roles[d["action_name"]]
        assert d["role_object_id"].shape == (len(d["ann_id"]), len(d["role_name"]))
        assert np.array_equal(d["role_object_id"][:, 0], d["ann_id"][:, 0])
        assert len(d["include"]) == len(d["role_name"])
        for row in np.where(d["label"][:, 0] == 1)[0]:
            positives += 1
            image = int(d["image_id"][row, 0])
            assert coco.loadAnns(int(d["ann_id"][row, 0]))[0]["category_id"] == labels.PERSON_COCO_ID
            in_image = set(coco.getAnnIds(imgIds=image))
            for rid in d["role_object_id"][row, 1:]:
                assert rid == 0 or rid in in_image  # vsrl_eval asserts the role object exists
    assert positives > 0


def test_vcoco_quirks_unlabelled_persons_and_roleless_positives(tmp_path: Path) -> None:
    cfg = tiny_config(vcoco_unlabelled_rate=1.0, vcoco_roleless_rate=0.5, hico_train=0, hico_test=0,
                      vcoco_train=0, vcoco_test=10)
    generate(cfg, 2, tmp_path)
    coco = COCO(str(tmp_path / VCOCO / "data" / "instances_vcoco_all_2014.json"))
    data = _vsrl(tmp_path / VCOCO / "data" / "vcoco" / "vcoco_test.json")
    in_vcoco = set(data[0]["ann_id"][:, 0].tolist())
    persons = set(coco.getAnnIds(catIds=[labels.PERSON_COCO_ID]))
    assert persons - in_vcoco  # persons in COCO but not in V-COCO (vsrl_eval ignores them)
    roleless = sum(int(np.sum((d["label"][:, 0] == 1) & (d["role_object_id"][:, 1:] == 0).all(axis=1)))
                   for d in data if len(d["role_name"]) > 1)
    assert roleless >= 1
    records = _load(tmp_path / VCOCO / "annotations" / "test_vcoco.json")
    role_hois = [h for r in records for h in r["hoi_annotation"] if labels.vcoco().verb_roles[h["category_id"]][1]]
    assert any(h["object_id"] == -1 for h in role_hois)


# ---------------------------------------------------------------- AlphaPose results


def test_alphapose_result_files(tiny) -> None:
    out, summary, _ = tiny
    for ds, folder in (("hico", HICO), ("vcoco", VCOCO)):
        entries = _load(out / folder / "alphapose-results.json")
        files = {Path(im.file).name: out / folder / im.file for im in summary.images if im.dataset == ds}
        counts = summary.pose[ds]
        assert len(entries) == counts.detected + counts.spurious
        for e in entries:
            assert list(e) == ["image_id", "category_id", "keypoints", "score", "box"]
            assert e["category_id"] == 1 and e["image_id"] in files
            kps = np.array(e["keypoints"]).reshape(17, 3)
            assert ((kps[:, 2] >= 0) & (kps[:, 2] <= 1)).all()
            assert e["score"] > 0  # AlphaPose's proposal score, not bounded by 1
            with Image.open(files[e["image_id"]]) as im:
                w, h = im.size
            x, y, bw, bh = e["box"]
            assert 0 <= x and 0 <= y and bw > 0 and bh > 0 and x + bw <= w + 0.01 and y + bh <= h + 0.01
            present = kps[:, 2] > 0
            assert (kps[present, 0] <= w).all() and (kps[present, 1] <= h).all()


def test_alphapose_faults_match_their_rates() -> None:
    faults = PoseFaults(miss_rate=0.2, tiny_miss_rate=0.7, low_score_rate=0.3, missing_keypoint_rate=0.1,
                        spurious_rate=0.5)
    cfg = SynthConfig()
    rng = np.random.default_rng(0)
    for kinds, miss in ((("sparse", "crowded"), 0.2), (("tiny",), 0.7)):
        persons = missed = spurious = kps = low = missing = 0
        for i in range(120):
            scene = make_scene(rng, cfg, kinds[i % len(kinds)], (224, 224))
            tiny = [p.body.height < faults.tiny_below * 224 for p in scene.persons]
            assert all(tiny) if kinds == ("tiny",) else not any(tiny)
            entries, c = detect(scene, f"{i}.jpg", rng, faults)
            assert len(entries) == c.detected + c.spurious and c.detected + c.missed == len(scene.persons)
            persons, missed, spurious = persons + len(scene.persons), missed + c.missed, spurious + c.spurious
            kps, low, missing = kps + c.keypoints, low + c.low_score, missing + c.missing
        assert abs(missed / persons - miss) < 0.08
        assert abs(spurious / 120 - 0.5) < 0.2
        assert abs(low / kps - 0.3) < 0.04  # every keypoint is visible here (no renderer run)
        assert abs(missing / kps - 0.1) < 0.03


def test_occluded_keypoints_get_low_scores() -> None:
    cfg = SynthConfig(occluder_rate=1.0, pose=PoseFaults(low_score_rate=0.0, missing_keypoint_rate=0.0,
                                                         miss_rate=0.0, spurious_rate=0.0))
    rng = np.random.default_rng(5)
    hidden_scores, shown_scores = [], []
    for _ in range(20):
        scene = make_scene(rng, cfg, "occluded", (224, 224))
        _, visible = render(scene)
        for p, v in zip(scene.persons, visible, strict=True):
            p.visible = v
        entries, _ = detect(scene, "x.jpg", rng, cfg.pose)
        assert scene.occluders and any((~v).sum() > 0 for v in visible)
        for p in scene.persons:
            # the detection of this person: its box is the person's box plus a little noise
            e = min(entries, key=lambda e: np.abs(np.array(e["box"][:2]) - p.box[:2]).sum())
            s = np.array(e["keypoints"]).reshape(17, 3)[:, 2]
            hidden_scores += s[~p.visible].tolist()
            shown_scores += s[p.visible].tolist()
    assert max(hidden_scores) <= 0.3 < min(shown_scores)


# ---------------------------------------------------------------- scenes and geometry


def _scenes(action: str, n: int = 12, kind: str = "sparse"):
    cfg = SynthConfig(actions=(action,), distractors=(0, 0), sparse_interact_rate=1.0)
    for seed in range(n):
        scene = make_scene(np.random.default_rng(seed), cfg, kind, (224, 224))
        person = next(p for p in scene.persons if p.action == action)
        yield person, scene.objects[person.obj], person.body


def test_catalog_uses_real_label_ids() -> None:
    check_catalog()
    hico = labels.hico()
    assert hico_verb_ids("hold") == (next(v for v, n in hico.verb_names.items() if n == "hold"),)
    for action in ACTIONS.values():
        assert action.pose in POSES


def test_hold_puts_the_object_at_the_wrist() -> None:
    for person, thing, body in _scenes("hold"):
        wrist = body.keypoints[ARM[body.active][2]]
        assert thing.coco_id in (CUP, BOTTLE, SPORTS_BALL)
        assert thing.box[0] - 1 <= wrist[0] <= thing.box[2] + 1 and thing.box[1] - 1 <= wrist[1] <= thing.box[3] + 1


def test_kick_puts_the_ball_at_a_raised_ankle() -> None:
    for person, thing, body in _scenes("kick"):
        kicking, standing = LEG[body.active][2], LEG["right" if body.active == "left" else "left"][2]
        ankle = body.keypoints[kicking]
        centre = (thing.box[:2] + thing.box[2:]) / 2
        assert thing.coco_id == SPORTS_BALL
        assert np.linalg.norm(centre - ankle) < 0.3 * body.height
        assert ankle[1] < body.keypoints[standing, 1] - 0.15 * body.height  # the ankle is raised


def test_sit_and_ride_put_the_hip_on_the_object() -> None:
    for action in ("sit_on", "ride"):
        for person, thing, body in _scenes(action):
            hip = body.keypoints[[11, 12]].mean(axis=0)
            x1, y1, x2, y2 = thing.box
            assert x1 < hip[0] < x2 and y1 < hip[1] < y1 + 0.6 * (y2 - y1)
            assert hip[1] < body.keypoints[[15, 16], 1].min()  # feet below the hip


def test_carry_holds_the_object_in_both_hands_and_look_faces_it() -> None:
    for person, thing, body in _scenes("carry"):
        for wrist in body.keypoints[[9, 10]]:
            assert thing.box[0] - 0.05 * body.height <= wrist[0] <= thing.box[2] + 0.05 * body.height
            assert abs(wrist[1] - thing.box[1]) < 0.2 * body.height
    for person, thing, body in _scenes("look"):
        cx, cy, r = body.head
        centre = (thing.box[:2] + thing.box[2:]) / 2
        assert thing.coco_id == TV
        assert (centre[0] - cx) * body.facing > 0 and abs(centre[1] - cy) < 0.12 * body.height


def test_distractors_are_kept_clear_of_persons() -> None:
    cfg = SynthConfig(distractors=(2, 3))
    n_distractors = 0
    for seed in range(30):
        scene = make_scene(np.random.default_rng(seed), cfg, ("sparse", "crowded", "group")[seed % 3], (224, 224))
        for thing in scene.objects:
            if thing.distractor:
                n_distractors += 1
                for p in scene.persons:
                    assert not intersects(thing.box, p.box, 0.99 * DISTRACTOR_CLEARANCE * p.body.height)
    assert n_distractors >= 20


def test_scene_kinds_have_their_shape() -> None:
    cfg = SynthConfig()
    rng = np.random.default_rng(11)
    for _ in range(15):
        sparse = make_scene(rng, cfg, "sparse", (224, 224))
        assert len(sparse.persons) == 1
        assert 0.40 * 224 <= sparse.persons[0].body.height <= 0.75 * 224 + 1e-6
        crowded = make_scene(rng, cfg, "crowded", (224, 224))
        assert 2 <= len(crowded.persons) <= 4
        boxes = [p.box for p in crowded.persons]
        assert not any(intersects(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
        group = make_scene(rng, cfg, "group", (224, 224))
        assert len({p.action for p in group.persons}) == 1 and group.persons[0].action is not None
        tiny = make_scene(rng, cfg, "tiny", (224, 224))
        assert all(p.body.height <= 0.25 * 224 + 1e-6 for p in tiny.persons)
        occluded = make_scene(rng, cfg, "occluded", (224, 224))
        boxes = [p.box for p in occluded.persons]
        assert any(intersects(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
        for scene in (sparse, crowded, group, tiny, occluded):
            assert any(p.action for p in scene.persons)  # an annotated HOI in every image
            for p in scene.persons:
                b = p.box
                assert 0 <= b[0] and 0 <= b[1] and b[2] <= 224 and b[3] <= 224


def test_allocate_is_exact() -> None:
    shares = {"sparse": 0.4, "crowded": 0.25, "group": 0.15, "tiny": 0.1, "occluded": 0.1}
    # 12 x shares = 4.8, 3, 1.8, 1.2, 1.2 -> floors 4, 3, 1, 1, 1; the two largest remainders
    # (0.8, 0.8) go to sparse and group
    assert allocate(12, shares) == {"sparse": 5, "crowded": 3, "group": 2, "tiny": 1, "occluded": 1}
    assert allocate(0, shares) == {k: 0 for k in shares}


def test_scene_mix_follows_params(tmp_path: Path) -> None:
    mix = {"sparse": 0.5, "crowded": 0.0, "group": 0.25, "tiny": 0.25, "occluded": 0.0, "cross_person": 0.0}
    cfg = tiny_config(mix=mix, hico_train=8, hico_test=4, vcoco_train=4, vcoco_test=4)
    summary = generate(cfg, 0, tmp_path)
    stats = summary.as_dict()["datasets"]
    assert stats["hico"]["splits"]["train"]["scenes"] == {"sparse": 4, "crowded": 0, "group": 2, "tiny": 2,
                                                          "occluded": 0, "cross_person": 0}
    assert stats["vcoco"]["splits"]["test"]["scenes"] == {"sparse": 2, "crowded": 0, "group": 1, "tiny": 1,
                                                          "occluded": 0, "cross_person": 0}
    # every V-COCO person is a COCO person annotation: the counts per image match the scene kind
    coco = COCO(str(tmp_path / VCOCO / "data" / "instances_vcoco_all_2014.json"))
    by_name = {Path(im.file).name: im for im in summary.images if im.dataset == "vcoco"}
    for img in coco.loadImgs(coco.getImgIds()):
        info = by_name[img["file_name"]]
        n = len(coco.getAnnIds(imgIds=img["id"], catIds=[1]))
        assert n == info.persons
        assert (n == 1) if info.kind == "sparse" else (n >= 2 if info.kind == "group" else n >= 1)
    assert json.loads((tmp_path / "synth_summary.json").read_text())["datasets"] == stats


def test_hico_record_boxes_are_the_scene_boxes() -> None:
    scene = make_scene(np.random.default_rng(4), SynthConfig(), "crowded", (224, 200))
    rec = hico_record(scene, "x.jpg", 1, np.random.default_rng(0), duplicate_rate=0.0)
    expected = {tuple(hico_box(p.box, 224, 200)) for p in scene.persons if p.action}
    expected |= {tuple(hico_box(scene.objects[p.obj].box, 224, 200)) for p in scene.persons if p.action}
    assert {tuple(a["bbox"]) for a in rec["annotations"]} >= expected


def test_pose_body_proportions() -> None:
    body = pose_body("stand", 100.0, np.random.default_rng(0), view="front", facing=1, active="left", wobble=0)
    box = body.box()
    assert box[3] - box[1] == pytest.approx(100.0, abs=3.0)  # head top to soles = H
    assert body.keypoints[5, 0] > body.keypoints[6, 0]  # front view: left shoulder on the image's right


# ---------------------------------------------------------------- config and CLI entry


def test_config_rejects_bad_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown action"):
        SynthConfig(actions=("juggle",))
    with pytest.raises(ValueError):
        SynthConfig(person_height=(0.8, 0.4))
    params = tmp_path / "params.yaml"
    params.write_text("seed: 1\nsynth:\n  hico_train: 5\n"
                      "  mix: {sparse: 1, crowded: 0, group: 0, tiny: 0, occluded: 0}\n")
    assert section("synth", SynthConfig, params).hico_train == 5
    params.write_text("seed: 1\nsynth:\n  colour: red\n")
    with pytest.raises(ParamsError, match="synth.colour"):
        section("synth", SynthConfig, params)


def test_repo_params_validate() -> None:
    root = Path(__file__).resolve().parents[3]
    assert section("synth", SynthConfig, root / "params.yaml").hico_train >= 1


def test_run_reads_params_and_prints_what_it_wrote(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("seed: 7\nsynth:\n  hico_train: 3\n  hico_test: 2\n  vcoco_train: 2\n  vcoco_test: 2\n"
                      "  width: [96, 128]\n  height: [96, 96]\n")
    summary = run(params, tmp_path / "out")
    printed = capsys.readouterr().out
    assert f"{tmp_path / 'out' / HICO} train: 3 images" in printed and "alphapose-results.json" in printed
    written = json.loads((tmp_path / "out" / "synth_summary.json").read_text())
    assert written["seed"] == 7 and written == summary.as_dict()
    sizes = {Image.open(tmp_path / "out" / HICO / im.file).size for im in summary.images
             if im.dataset == "hico"}
    assert all(96 <= w <= 128 and h == 96 for w, h in sizes)


def test_a_cross_person_only_set_without_vcoco_images(tmp_path: Path) -> None:
    """The larger cross-person test set (tests/benchmarks/cross_person_testset.sh): a mix of the
    HICO-DET-only kind alone is valid when there are no V-COCO images, and every image is one."""
    mix = {k: 0.0 for k in SCENE_KINDS} | {"cross_person": 1.0}
    cfg = tiny_config(vcoco_train=0, vcoco_test=0, mix=mix, hico_unannotated_test_rate=0.0)
    summary = generate(cfg, 0, tmp_path)
    assert [(i.dataset, i.split, i.kind) for i in summary.images] == (
        [("hico", "train", "cross_person")] * 12 + [("hico", "test", "cross_person")] * 6)
    assert len(_load(tmp_path / HICO / "annotations" / "test_hico.json")) == 6
    assert _load(tmp_path / VCOCO / "annotations" / "test_vcoco.json") == []
