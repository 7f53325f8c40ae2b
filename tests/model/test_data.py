"""Torch dataset, label space and collate over the parquet tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from model.collate import Collate, pad_images
from model.data import HOIDataset, build_records, split_validation
from model.label_space import for_format
from model.transforms import AugmentConfig, make_transforms
from model.common.labels import hico
from train_fixtures import BALL, CUP, HOLD, NO_INTERACTION, make_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    return root, make_dataset(root, n=6)


def _records(data, ids=None, fmt="hico-det"):
    root, t = data
    ids = ids or sorted(t["images"]["image_id"])
    return build_records(root, t["images"], t["instances"], t["pairs"], t["parts"], for_format(fmt), ids)


def test_one_target_per_unique_pair_with_multi_hot_verbs(data):
    root, t = data
    pairs = pd.concat([t["pairs"], t["pairs"].iloc[[0]].assign(verb_id=HOLD + 1)])  # a second verb for pair 0
    recs, dropped = build_records(root, t["images"], t["instances"], pairs, t["parts"], for_format("hico-det"), ["img_000"])
    tg = recs[0].target
    assert dropped == 0 and tg["verbs"].shape == (1, 117)
    assert tg["verbs"][0, HOLD - 1] == 1 and tg["verbs"][0, HOLD] == 1 and tg["verbs"].sum() == 2


def test_labels_interactiveness_and_parts(data):
    recs, _ = _records(data)
    two = recs[1].target  # odd image: two persons, hold + no_interaction
    coco = hico().object_coco_ids
    assert two["obj_labels"].tolist() == [coco.index(CUP), coco.index(BALL)]
    assert two["interactive"].tolist() == [1.0, 0.0]  # no_interaction pair is not interactive
    assert two["verbs"][1, NO_INTERACTION - 1] == 1
    assert two["part_boxes"].shape == (2, 10, 4) and two["part_valid"].all()
    assert recs[0].target["part_boxes"].shape == (1, 10, 4)


def test_degenerate_pairs_dropped(data):
    root, t = data
    inst = t["instances"].copy()
    bad = (inst["image_id"] == "img_000") & (inst["index"] == 1)
    inst.loc[bad, "x2"] = inst.loc[bad, "x1"]  # zero-width cup
    recs, dropped = build_records(root, t["images"], inst, t["pairs"], t["parts"], for_format("hico-det"), ["img_000"])
    assert dropped == 1 and len(recs[0].target["sub_boxes"]) == 0


def test_vcoco_missing_object_gets_the_extra_class(data):
    root, t = data
    pairs = t["pairs"][t["pairs"]["image_id"] == "img_000"].assign(verb_id=1, role="obj")  # hold_obj
    pairs = pd.concat([pairs, pairs.assign(object=np.nan, verb_id=2, role=None)])  # stand, agent only
    recs, _ = build_records(root, t["images"], t["instances"], pairs, t["parts"], for_format("v-coco"), ["img_000"])
    tg = recs[0].target
    space = for_format("v-coco")
    assert space.num_objects == 81 and space.num_verbs == 29
    no_obj = ~tg["has_obj"]
    assert no_obj.sum() == 1 and tg["obj_labels"][no_obj][0] == 80 and not tg["obj_boxes"][no_obj].any()
    assert tg["verbs"][no_obj][0, 1] == 1  # 'stand' is verb-role 1
    assert tg["interactive"].tolist() == [1.0, 1.0]


def test_validation_split_is_deterministic_and_disjoint():
    ids = [f"i{k}" for k in range(50)]
    tr, va = split_validation(ids, 0.1, seed=0)
    assert len(va) == 5 and not set(tr) & set(va) and sorted(tr + va) == sorted(ids)
    assert split_validation(list(reversed(ids)), 0.1, seed=0)[1] == list(reversed(va))
    assert set(split_validation(ids, 0.1, seed=1)[1]) != set(va)
    assert split_validation(ids, 0.0, seed=0) == (ids, [])


def test_dataset_and_collate(data):
    recs, _ = _records(data)
    ds = HOIDataset(recs, make_transforms(AugmentConfig(scales=[64], max_size=96, flip=0.5), train=True))
    a, b = ds[(1, 123)], ds[(1, 123)]
    assert torch.equal(a[0], b[0])  # same seed, same sample
    batch = Collate()([ds[(0, 1)], ds[(1, 2)]])
    B, _, H, W = batch.images.shape
    assert B == 2 and batch.pixel_mask.shape == (2, H, W)
    assert batch.part_masks.shape == (2, 6, -(-H // 32), -(-W // 32))
    assert batch.part_masks[1].any() and batch.targets[1]["orig_size"].tolist() == [80, 96]
    # the padding of the smaller image is marked
    for i, t in enumerate(batch.targets):
        h, w = t["size"].tolist()
        assert not batch.pixel_mask[i, :h, :w].any() and batch.pixel_mask[i].sum() == H * W - h * w


def test_pad_images_copies_each_image_and_zeros_only_the_padding():
    images = [torch.rand(3, 5, 7) + 1, torch.rand(3, 8, 4) + 1, torch.rand(3, 8, 7) + 1]
    for _ in range(3):  # the allocator hands freed NaN-filled memory back from the second round
        images[0].new_full((3, 3, 8, 7), float("nan"))
        x, mask = pad_images(images)
        assert x.shape == (3, 3, 8, 7) and mask.shape == (3, 8, 7)
        for i, im in enumerate(images):
            h, w = im.shape[1:]
            expected = torch.ones(8, 7, dtype=torch.bool)
            expected[:h, :w] = False
            assert torch.equal(x[i, :, :h, :w], im) and torch.equal(mask[i], expected)
            assert torch.equal(x[i][:, mask[i]], torch.zeros(3, int(mask[i].sum())))


def test_pad_images_in_a_worker_is_the_same_batch_in_shared_memory(monkeypatch):
    images = [torch.rand(3, 5, 7), torch.rand(3, 8, 4)]
    x, mask = pad_images(images)
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: object())  # as in a DataLoader worker
    xs, ms = pad_images(images)
    assert xs.is_shared() and ms.is_shared() and not x.is_shared()
    assert torch.equal(xs, x) and torch.equal(ms, mask)


def test_cropped_away_parts_light_no_cell(data):
    recs, _ = _records(data)
    x, t = HOIDataset(recs, make_transforms(AugmentConfig(scales=[80], max_size=200), train=False))[0]
    t["part_valid"][:] = False
    masks = Collate()([(x, t)]).part_masks
    assert not masks.any()
