"""The real network under the training machinery: a few steps lower the loss, and the train
stage runs end to end (stage 1, stage 2 from stage 1, resume) on a tiny on-disk dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from model import checkpoint as ckpt_io
from model.collate import Collate
from model.data import HOIDataset, build_records
from model.label_space import for_format
from model.transforms import AugmentConfig, make_transforms
from train_fixtures import make_dataset, write_tables

build_mod = pytest.importorskip("model.build")
config_mod = pytest.importorskip("model.config")

TINY_MODEL = {"backbone": "demo", "hidden_dim": 32, "nheads": 4, "dim_feedforward": 64, "enc_layers": 1,
              "dec_layers_box": 2, "dec_layers_verb": 1, "num_queries": 4, "query_type": "anchor", "dropout": 0.0}


@pytest.mark.parametrize("stage", [1, 2])
def test_a_few_steps_lower_the_loss(tmp_path, stage):
    from model.criterion import build_criterion

    t = make_dataset(tmp_path, n=4)
    ids = sorted(t["images"]["image_id"])
    recs, _ = build_records(tmp_path, t["images"], t["instances"], t["pairs"], t["parts"], for_format("hico-det"), ids)
    ds = HOIDataset(recs, make_transforms(AugmentConfig(scales=[64], max_size=96, flip=0.0), train=True))
    batch = Collate(with_part_masks=stage == 1)([ds[(i, i)] for i in range(4)]).to("cpu")
    torch.manual_seed(0)
    cfg = config_mod.ModelConfig.model_validate(TINY_MODEL)
    net, _, _ = build_mod.build(cfg, stage, for_format("hico-det"))
    crit = build_criterion(stage, 80, 117)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    totals = []
    for _ in range(8):
        losses = crit(net(batch.images, batch.pixel_mask, batch.part_masks), batch.targets)
        total = crit.total(losses)
        opt.zero_grad()
        total.backward()
        opt.step()
        totals.append(total.item())
    assert totals[-1] < 0.8 * totals[0]


def _params(tmp: Path, root: Path) -> Path:
    p = {
        "seed": 0,
        "dataset": {"name": "test", "format": "hico-det", "root": str(root)},
        "model": TINY_MODEL,
        "train": {"batch_size": 4, "warmup": 1, "lr": 1e-3, "lr_backbone": 1e-3,
                  "stage1": {"length": 4, "lr_drop": 3}, "stage2": {"length": 2, "lr_drop": 1},
                  "val_fraction": 0.2, "val_every": 2, "checkpoint_every": 2,
                  "augment": {"scales": [64], "max_size": 96, "eval_size": 64, "eval_max_size": 96}},
        "runtime": {"num_workers": 0, "log_every": 1, "progress": False},
    }
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(p))
    return path


def test_train_stage_end_to_end(tmp_path):
    from pipeline import train

    root = tmp_path / "data"
    write_tables(make_dataset(root, n=10), tmp_path / "processed")
    params = _params(tmp_path, root)
    dirs = dict(processed=tmp_path / "processed", models=tmp_path / "models", reports=tmp_path / "reports")
    s1 = train.run(params, 1, **dirs)
    assert s1["iterations"] == 4 and s1["counts"]["val_images"] == 2
    best = ckpt_io.load(tmp_path / "models" / "stage1.pt")
    assert best["stage"] == 1 and best["labels"]["format"] == "hico-det"
    assert best["model_config"]["hidden_dim"] == 32 and best["train_config"]["batch_size"] == 4
    assert best["best"]["metric"] == "int_ap"
    s2 = train.run(params, 2, **dirs)
    assert s2["best"]["metric"] == "hoi_map"
    assert (tmp_path / "reports" / "train" / "stage2" / "plots" / "metrics" / "train" / "loss_verb.tsv").exists()
    # resuming a finished run changes nothing
    before = ckpt_io.load(tmp_path / "models" / "stage2-last.pt")["model"]
    train.run(params, 2, resume=True, **dirs)
    after = ckpt_io.load(tmp_path / "models" / "stage2-last.pt")["model"]
    assert all(torch.equal(before[k], after[k]) for k in before)
    # the bundle: both networks + tau chosen on the validation images
    from model.bundle_file import load_bundle, network
    from pipeline import bundle

    summary = bundle.run(params, tmp_path / "models", tmp_path / "processed", report=tmp_path / "reports" / "bundle.json")
    b = load_bundle(tmp_path / "models" / "bundle.pt")
    assert b["stage1"]["stage"] == 1 and b["stage2"]["stage"] == 2 and "optimizer" not in b["stage1"]
    assert b["nis"]["mode"] == "threshold" and b["nis"]["chosen_on"] == "validation" and b["nis"]["val_images"] == 2
    assert 0.0 <= summary["nis_threshold"] <= 1.0
    assert isinstance(network(b["stage2"]), torch.nn.Module)


def test_a_non_dividing_accumulate_fails_before_reading_data(tmp_path):
    from pipeline import train
    from model.common.errors import UserError

    params = _params(tmp_path, tmp_path / "absent")
    p = yaml.safe_load(params.read_text())
    p["train"]["accumulate"] = 3  # batch 4 on one process
    params.write_text(yaml.safe_dump(p))
    with pytest.raises(UserError, match="train.accumulate 3"):
        train.run(params, 1, processed=tmp_path / "absent", models=tmp_path / "models", reports=tmp_path / "reports")
