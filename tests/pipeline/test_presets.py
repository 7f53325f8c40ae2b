"""The `paper` params presets (data/presets/paper-*.yaml, paper Sec. 5.2): complete params files
with params.yaml's sections and keys, valid in every section, with the paper's values; and
params.yaml itself valid in every section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from model import config as model_config
from model.postprocess import PostprocessConfig
from pipeline import params as P
from pipeline.evaluate_core import EvaluateConfig
from pipeline.ingest import IngestConfig
from pipeline.parts import PartsConfig
from pipeline.pose import PoseConfig
from pipeline.scenes import ScenesConfig
from pipeline.synth.config import SynthConfig
from pipeline.train import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "params.yaml"
PRESETS = {"hico-det": ROOT / "data" / "presets" / "paper-hico-det.yaml",
           "v-coco": ROOT / "data" / "presets" / "paper-v-coco.yaml"}
SECTIONS: dict[str, type[P.Section]] = {
    "dataset": P.DatasetConfig, "synth": SynthConfig, "ingest": IngestConfig, "pose": PoseConfig,
    "parts": PartsConfig, "scenes": ScenesConfig, "model": model_config.ModelConfig, "train": TrainConfig,
    "postprocess": PostprocessConfig, "evaluate": EvaluateConfig, "runtime": P.RuntimeConfig,
}
DETR_R50 = "models/pretrained/detr-r50-e632da11.pth"

# Sec. 5.2 (and where it is silent, the released config / QPIC, as noted), both datasets
PAPER = {
    "model.backbone": "resnet50",  # "ResNet-50 followed by a six-layer transformer encoder"
    "model.enc_layers": 6,
    "model.dec_layers_box": 6,  # box detector and verb classifier: six-layer decoders
    "model.dec_layers_verb": 6,
    "model.dec_layers_int": 3,  # interactiveness classifier: a three-layer decoder
    "model.pretrained": DETR_R50,  # "initialized from COCO pretrained DETR"
    "model.hidden_dim": 256,  # DETR-R50 / released config
    "model.nheads": 8,
    "model.dim_feedforward": 2048,
    "model.dropout": 0.1,
    "model.query_type": "plain",
    "model.mask_rule": "touch",  # decision 4
    "model.part_filter": "fraction",  # decision 5: top 25 % per image
    "model.part_filter_fraction": 0.25,
    "model.ablation": "full",
    "train.alpha": 3.0,  # Sec. 4
    "train.weight_decay": 1e-4,  # "AdamW with the weight decay of 1e-4"
    "train.lr": 1e-4,  # "a learning rate of 1e-4"
    "train.lr_backbone": 1e-5,  # released config
    "train.batch_size": 16,  # "a batch size of 16"
    "train.accumulate": 1,
    "train.stage1": {"unit": "epochs", "length": 90, "lr_drop": 60},  # 90 epochs, x0.1 at the 60th
    "train.stage2.unit": "epochs",  # "fine-tuned for 60 epochs"
    "train.stage2.length": 60,
    "train.stage2_init": "pretrained",  # decision 1
    "train.warmup": 0,
    "train.clip_max_norm": 0.1,  # released config
    "train.loss.obj_ce": 1.0,  # lambda_1..3 = 1, 2.5, 1 "exactly the same as QPIC" (decision 3)
    "train.loss.bbox": 2.5,
    "train.loss.giou": 1.0,
    "train.loss.consistency": 0.0,
    "train.augment.flip": 0.5,  # QPIC's augmentation
    "train.augment.scales": list(range(480, 801, 32)),
    "train.augment.max_size": 1333,
    "train.augment.crop": 0.5,
    "train.augment.crop_scales": [400, 500, 600],
    "train.augment.crop_min": 384,
    "train.augment.crop_max": 600,
    "train.augment.jitter": 0.4,
    "train.augment.eval_size": 800,
    "train.augment.eval_max_size": 1333,
    "train.val_every": 0,  # once per epoch
    "train.checkpoint_every": 0,
    "train.amp": True,
    "postprocess.pair_nms_threshold": 0.6,  # "a pairwise NMS with a threshold of 0.6"
}
PER_DATASET = {
    "hico-det": {"dataset.format": "hico-det", "dataset.root": "data/raw/hico_20160224_det", "model.num_queries": 64},
    "v-coco": {"dataset.format": "v-coco", "dataset.root": "data/raw/v-coco", "model.num_queries": 100},
}


def key_paths(tree: dict, prefix: str = "") -> set[str]:
    """Dotted paths of every key of a nested mapping (lists are values)."""
    out = set()
    for k, v in tree.items():
        path = f"{prefix}{k}"
        out.add(path)
        if isinstance(v, dict):
            out |= key_paths(v, f"{path}.")
    return out


def lookup(tree: dict, path: str) -> Any:
    for k in path.split("."):
        tree = tree[k]
    return tree


def validated(path: Path) -> dict[str, dict]:
    """Every section of ``path`` validated by its config class, dumped as JSON-like values."""
    return {name: P.section(name, cls, path).model_dump(mode="json") for name, cls in SECTIONS.items()}


def test_every_params_section_has_a_config_class():
    assert set(P.load(PARAMS)) == {"seed", *SECTIONS}


@pytest.mark.parametrize("path", [PARAMS, *PRESETS.values()], ids=["params.yaml", *PRESETS])
def test_every_section_validates(path):
    assert isinstance(P.seed(path), int)
    validated(path)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_has_exactly_the_keys_of_params_yaml(name):
    want, got = key_paths(P.load(PARAMS)), key_paths(P.load(PRESETS[name]))
    assert got == want, f"missing: {sorted(want - got)}, extra: {sorted(got - want)}"


@pytest.mark.parametrize("name", PRESETS)
def test_preset_keeps_the_synth_section(name):
    assert P.load(PRESETS[name])["synth"] == P.load(PARAMS)["synth"]


@pytest.mark.parametrize("name", PRESETS)
def test_preset_has_the_paper_values(name):
    cfg = validated(PRESETS[name])
    for path, value in {**PAPER, **PER_DATASET[name]}.items():
        assert lookup(cfg, path) == pytest.approx(value), path


@pytest.mark.parametrize("name", PRESETS)
def test_preset_model_is_the_documented_paper_preset(name):
    got = P.section("model", model_config.ModelConfig, PRESETS[name])
    assert got == model_config.preset("paper", num_queries=PER_DATASET[name]["model.num_queries"],
                                      pretrained=Path(DETR_R50))


@pytest.mark.parametrize("name", PRESETS)
def test_preset_trains_on_several_workers(name):
    assert P.runtime(PRESETS[name]).num_workers > 0


def test_model_presets_in_code_are_the_preset_files() -> None:
    """model.config.PRESETS is not a second definition: ``paper`` is the paper files' model
    section (but the DETR weight file and V-COCO's 100 queries), ``demo`` params.yaml's."""
    paper = P.load(PRESETS["hico-det"])["model"]
    assert model_config.preset("paper", pretrained=paper["pretrained"]) == model_config.ModelConfig(**paper)
    assert model_config.preset("demo") == model_config.ModelConfig(**P.load(PARAMS)["model"])
