"""The batched matching, losses and training step (issue #18) against the former per-image
implementation (tests/reference_criterion.py): the same assignments for every decoder layer, the
same losses (aux included), the same gradients and the same weights after an optimiser step, on a
tiny real network, for both stages. CPU, fp32."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from model.build import build
from model.collate import Collate
from model.config import preset
from model.criterion import SetCriterion
from model.data import HOIDataset, build_records
from model.distributed import DistContext
from model.engine import LoopConfig, Run, Trainer
from model.train_config import LossConfig, TrainConfig
from model.label_space import for_format
from model.matcher import BOX_KEYS
from model.packed_targets import PAIR_KEYS, pack
from model.transforms import AugmentConfig, make_transforms
from reference_criterion import ReferenceCriterion, reference_step
from train_fixtures import make_dataset

CPU = DistContext(0, 1, 0, torch.device("cpu"))


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    t = make_dataset(root, n=6, size=(96, 80))
    ids = sorted(t["images"]["image_id"])
    recs, _ = build_records(root, t["images"], t["instances"], t["pairs"], t["parts"], for_format("hico-det"), ids)
    aug = AugmentConfig(scales=[64, 72], max_size=96)
    ds = HOIDataset(recs, make_transforms(aug, train=True))
    items = [ds[(i, 7 * i)] for i in range(len(ds))]
    x, t2 = items[2]  # one image without any pair (its persons stay: the part masks need them)
    items[2] = (x, {**t2, **{k: t2[k][:0] for k in PAIR_KEYS}})
    return items


def _net(stage: int, seed: int = 0):
    torch.manual_seed(seed)
    cfg = preset("demo", dec_layers_box=3, num_queries=6, dropout=0.0, query_type="plain")  # 2 aux layers
    return build(cfg, stage, for_format("hico-det"))[0]


def _pair(stage: int, **kw):
    w = LossConfig(**kw)
    return SetCriterion(stage, 80, 117, weights=w), ReferenceCriterion(stage, 80, 117, weights=w)


@pytest.mark.parametrize("stage,kw", [(1, {}), (1, {"int_loss": "focal", "consistency": 1.0}), (2, {})])
def test_losses_gradients_and_assignments_equal_the_per_image_reference(samples, stage, kw):
    batch = Collate(with_part_masks=stage == 1)(samples).to("cpu")
    net = _net(stage)
    out = net(batch.images, batch.pixel_mask, batch.part_masks)
    new, ref = _pair(stage, **kw)
    got = new(out, batch.packed)
    want = ref(out, batch.targets)
    assert list(got) == list(want) and len(out["aux_outputs"]) == 2 and "loss_obj_ce_1" in got
    for k in want:
        assert torch.allclose(got[k], want[k], rtol=1e-5, atol=1e-7), (k, got[k], want[k])
    # every layer's assignment (final first in the reference, last in the stacked layers)
    layers = {k: torch.stack([a[k] for a in out["aux_outputs"]] + [out[k]]) for k in BOX_KEYS}
    matches = new.matcher.match_layers(layers, out, pack(batch.targets))
    order = [2, 0, 1]  # reference layer i -> stacked layer
    offsets = torch.tensor(batch.packed.offsets)
    for ref_indices, lay in zip(ref.last_indices, order):
        b, q, t = matches.layer(lay)
        for i, (rq, rt) in enumerate(ref_indices):
            assert torch.equal(q[b == i], rq) and torch.equal(t[b == i] - offsets[i], rt), (lay, i)
    assert sum(len(q) for q, _ in ref.last_indices[0]) == len(matches.layer(2)[0]) > 0
    # gradients of the weighted total
    g_new = torch.autograd.grad(new.total(got), [p for p in net.parameters() if p.requires_grad], allow_unused=True,
                                retain_graph=True)
    g_ref = torch.autograd.grad(ref.total(want), [p for p in net.parameters() if p.requires_grad], allow_unused=True)
    for a, b in zip(g_new, g_ref):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("stage", [1, 2])
def test_trainer_step_equals_the_reference_step(samples, stage, tmp_path):
    """One optimiser step (two micro-batches: accumulation and shared normalisers too)."""
    collate = Collate(with_part_masks=stage == 1)
    micro = [collate(samples[:3]), collate(samples[3:])]
    loop = LoopConfig(TrainConfig(batch_size=6, accumulate=2, lr=1e-3, lr_backbone=1e-5, warmup=50), iterations=10, lr_drop=10,
                      epoch_size=6, val_every=250, checkpoint_every=250)
    trainers = []
    for _ in range(2):
        run = Run(_net(stage), SetCriterion(stage, 80, 117), None, np.ones(6), collate,
                  tmp_path / "b.pt", tmp_path / "l.pt", meta={"stage": stage})
        trainers.append(Trainer(run, loop, CPU))
    fast, slow = trainers
    losses = fast.step(fast.net, micro)
    want = reference_step(slow, slow.net, micro, ReferenceCriterion(stage, 80, 117))
    assert set(losses) == set(want)
    for k, v in want.items():
        assert np.isclose(losses[k].item(), v, rtol=1e-5, atol=1e-7), k
    for (name, a), b in zip(fast.net.named_parameters(), slow.net.parameters()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), name


def test_packed_targets_round_trip(samples):
    targets = [t for _, t in samples]
    p = pack(targets)
    assert p.sizes == [len(t["obj_labels"]) for t in targets] and 0 in p.sizes
    index, valid = p.padded_index()
    assert index.shape == (len(targets), max(p.sizes)) and int(valid.sum()) == sum(p.sizes)
    for i, t in enumerate(targets):
        n = p.sizes[i]
        assert torch.equal(p.sub_boxes[index[i, :n]], t["sub_boxes"]) and valid[i, :n].all() and not valid[i, n:].any()
    copied = copy.deepcopy(p).to("cpu")
    assert torch.equal(copied.verbs, p.verbs) and copied.sizes == p.sizes
