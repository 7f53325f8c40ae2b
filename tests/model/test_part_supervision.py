"""Optional body-part supervision (paper Sec. 5.3): part labels from the pairs table into the
targets (null -> unknown), the BCE on matched queries' part scores, its weight in the criterion."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from model.criterion import SetCriterion
from model.data import build_records, pair_part_labels
from model.label_space import for_format
from model.losses import part_label_loss
from model.train_config import LossConfig
from model.transforms import AugmentConfig, make_transforms
from test_criterion import _outputs, _target
from train_fixtures import HOLD, make_dataset

NAN = float("nan")


def test_part_label_loss_ignores_unknown_rows() -> None:
    logits = torch.tensor([[0.0] * 6, [2.0, -2.0, 0.0, 0.0, 0.0, 0.0], [5.0] * 6])
    labels = torch.tensor([[1.0, 0, 0, 0, 0, 0], [1.0, 0, 0, 0, 0, 1], [NAN] * 6])
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731 - softplus: BCE(logit, 1) = sp(-logit)
    row0 = 6 * math.log(2)
    row1 = sp(-2) + sp(-2) + 3 * math.log(2) + math.log(2)
    assert math.isclose(part_label_loss(logits, labels).item(), (row0 + row1) / 12, rel_tol=1e-6)
    assert part_label_loss(logits[2:], labels[2:]).item() == 0.0  # nothing labelled: no loss


def test_pair_labels_merge_verb_rows_and_keep_nulls_unknown() -> None:
    pairs = pd.DataFrame({"part_labels": [np.array([1, 0, 0, 1, 0, 0], np.int8), np.array([0, 0, 0, 0, 1, 0], np.int8),
                                          None, None, np.array([0] * 6, np.int8)]})
    group = np.array([0, 0, 0, 1, 2])
    out = pair_part_labels(pairs, group, 3)
    np.testing.assert_array_equal(out[0], [1, 0, 0, 1, 1, 0])  # any verb row's 1; the null row ignored
    assert np.isnan(out[1]).all()  # only a null row: unknown
    np.testing.assert_array_equal(out[2], [0] * 6)
    assert np.isnan(pair_part_labels(pairs.drop(columns="part_labels"), group, 3)).all()  # no column: unknown


def test_records_and_transforms_carry_part_labels(tmp_path) -> None:
    t = make_dataset(tmp_path, n=2)
    pairs = t["pairs"].copy()
    pairs["part_labels"] = [np.array([0, 0, 0, 1, 1, 0], np.int8) if v == HOLD else None for v in pairs["verb_id"]]
    ids = sorted(t["images"]["image_id"])
    recs, _ = build_records(tmp_path, t["images"], t["instances"], pairs, t["parts"], for_format("hico-det"), ids)
    two = recs[1].target  # image 1: a hold pair (labelled) and a no_interaction pair (null)
    hold = two["interactive"] == 1
    np.testing.assert_array_equal(two["part_labels"][hold][0], [0, 0, 0, 1, 1, 0])
    assert np.isnan(two["part_labels"][~hold]).all()
    aug = AugmentConfig(flip=1.0, scales=[64], max_size=96, crop=1.0, crop_scales=[60], crop_min=50, crop_max=60)
    from model.data import HOIDataset
    x, tgt = HOIDataset(recs, make_transforms(aug, train=True))[1]
    assert tgt["part_labels"].shape == (len(tgt["interactive"]), 6)  # cropped together with the pairs
    known = ~tgt["part_labels"].isnan().any(-1)
    assert torch.equal(known, tgt["interactive"] == 1)


def _crit(**kw) -> SetCriterion:
    return SetCriterion(1, num_obj_classes=2, num_verbs=2, weights=LossConfig(**kw))


def test_criterion_adds_the_weighted_part_loss_for_matched_queries_only() -> None:
    out = _outputs()
    out["pred_part_logits"] = torch.zeros(1, 3, 6, requires_grad=True)
    tgt = _target()
    tgt["part_labels"] = torch.tensor([[0.0, 0, 0, 1, 1, 0]])
    assert "loss_part" not in _crit()(out, [tgt])  # weight 0 (default): off
    crit = _crit(part=0.5)
    losses = crit(out, [tgt])
    assert math.isclose(losses["loss_part"].item(), math.log(2), rel_tol=1e-6)
    assert crit.weight("loss_part") == 0.5
    crit.total(losses).backward()
    g = out["pred_part_logits"].grad[0]
    assert g[0].abs().sum() > 0 and g[1:].abs().sum() == 0  # query 0 is the matched one
    tgt["part_labels"] = torch.full((1, 6), NAN)
    assert crit(out, [tgt])["loss_part"].item() == 0.0  # unknown labels: no loss, no NaN
