"""COCO DETR-R50 import on a state dict written with DETR's exact names and shapes (built here
from a description of the checkpoint, independently of our modules)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from model.bpm import InteractivenessNet, VerbNet
from model.config import ModelConfig
from model.detr_import import COCO_OBJECT_IDS, load_detr, read_checkpoint, transfer

D, FFN = 256, 2048


def _bn(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.{n}": (c,) for n in ("weight", "bias", "running_mean", "running_var")}


def detr_r50_shapes() -> dict[str, tuple[int, ...]]:
    """Names and shapes of DETR-R50's ``model`` state dict (d 256, 6 + 6 layers, FFN 2048)."""
    s: dict[str, tuple[int, ...]] = {"backbone.0.body.conv1.weight": (64, 3, 7, 7), **_bn("backbone.0.body.bn1", 64)}
    cin = 64
    for i, (blocks, width) in enumerate([(3, 64), (4, 128), (6, 256), (3, 512)], start=1):
        for j in range(blocks):
            p = f"backbone.0.body.layer{i}.{j}"
            s |= {f"{p}.conv1.weight": (width, cin, 1, 1), **_bn(f"{p}.bn1", width),
                  f"{p}.conv2.weight": (width, width, 3, 3), **_bn(f"{p}.bn2", width),
                  f"{p}.conv3.weight": (4 * width, width, 1, 1), **_bn(f"{p}.bn3", 4 * width)}
            if j == 0:
                s |= {f"{p}.downsample.0.weight": (4 * width, cin, 1, 1), **_bn(f"{p}.downsample.1", 4 * width)}
            cin = 4 * width
    s |= {"input_proj.weight": (D, 2048, 1, 1), "input_proj.bias": (D,)}

    def attn(p: str) -> dict[str, tuple[int, ...]]:
        return {f"{p}.in_proj_weight": (3 * D, D), f"{p}.in_proj_bias": (3 * D,),
                f"{p}.out_proj.weight": (D, D), f"{p}.out_proj.bias": (D,)}

    def ffn_norms(p: str, norms: int) -> dict[str, tuple[int, ...]]:
        out = {f"{p}.linear1.weight": (FFN, D), f"{p}.linear1.bias": (FFN,),
               f"{p}.linear2.weight": (D, FFN), f"{p}.linear2.bias": (D,)}
        return out | {f"{p}.norm{k}.{n}": (D,) for k in range(1, norms + 1) for n in ("weight", "bias")}

    for i in range(6):
        s |= attn(f"transformer.encoder.layers.{i}.self_attn") | ffn_norms(f"transformer.encoder.layers.{i}", 2)
        p = f"transformer.decoder.layers.{i}"
        s |= attn(f"{p}.self_attn") | attn(f"{p}.multihead_attn") | ffn_norms(p, 3)
    s |= {"transformer.decoder.norm.weight": (D,), "transformer.decoder.norm.bias": (D,)}
    s |= {"query_embed.weight": (100, D), "class_embed.weight": (92, D), "class_embed.bias": (92,)}
    s |= {"bbox_embed.layers.0.weight": (D, D), "bbox_embed.layers.0.bias": (D,), "bbox_embed.layers.1.weight": (D, D),
          "bbox_embed.layers.1.bias": (D,), "bbox_embed.layers.2.weight": (4, D), "bbox_embed.layers.2.bias": (4,)}
    return s


@pytest.fixture(scope="module")
def detr_state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {k: torch.randn(shape, generator=g) for k, shape in detr_r50_shapes().items()}


def paper_cfg(**kw) -> ModelConfig:
    return ModelConfig.model_validate({"backbone": "resnet50", "num_queries": 64, **kw})


def test_stage1_import(detr_state: dict[str, torch.Tensor]) -> None:
    torch.manual_seed(0)
    net = InteractivenessNet(paper_cfg(), num_obj_classes=80)
    report = load_detr(net, detr_state)
    got = net.state_dict()
    same = {
        "extractor.backbone.body.layer3.5.conv3.weight": "backbone.0.body.layer3.5.conv3.weight",
        "extractor.backbone.body.bn1.running_var": "backbone.0.body.bn1.running_var",
        "extractor.input_proj.weight": "input_proj.weight",
        "extractor.encoder.layers.5.linear2.weight": "transformer.encoder.layers.5.linear2.weight",
        "detector.decoder.layers.3.multihead_attn.in_proj_weight": "transformer.decoder.layers.3.multihead_attn.in_proj_weight",
        "detector.decoder.norm.bias": "transformer.decoder.norm.bias",
    }
    for ours, theirs in same.items():
        assert torch.equal(got[ours], detr_state[theirs]), ours
    assert torch.equal(got["detector.query_embed.weight"], detr_state["query_embed.weight"][:64])
    for head in ("sub_bbox_embed", "obj_bbox_embed"):
        assert torch.equal(got[f"detector.{head}.layers.2.weight"], detr_state["bbox_embed.layers.2.weight"])
    cls = got["detector.obj_class_embed.weight"]
    assert cls.shape == (81, D)
    assert torch.equal(cls[0], detr_state["class_embed.weight"][1])  # person
    assert torch.equal(cls[79], detr_state["class_embed.weight"][90])  # toothbrush
    assert torch.equal(cls[80], detr_state["class_embed.weight"][91])  # no-object
    assert torch.equal(got["detector.obj_class_embed.bias"][11], detr_state["class_embed.bias"][COCO_OBJECT_IDS[11]])
    assert not report.skipped  # every DETR tensor has a place
    assert report.initialised and all(k.startswith("interactiveness.") for k in report.initialised)
    assert len(report.loaded) == len(detr_state) + 6  # bbox head loaded twice
    assert "loaded" in report.summary()


def test_stage2_import_fills_verb_decoder_and_vcoco_classes(detr_state: dict[str, torch.Tensor]) -> None:
    torch.manual_seed(0)
    net = VerbNet(paper_cfg(num_queries=100), num_obj_classes=81, num_verbs=29)  # V-COCO: 81 + no-object
    before = net.state_dict()["detector.obj_class_embed.weight"][80].clone()
    report = load_detr(net, detr_state)
    got = net.state_dict()
    decoder_w = detr_state["transformer.decoder.layers.5.linear1.weight"]
    assert torch.equal(got["verb.decoder.layers.5.linear1.weight"], decoder_w)
    assert torch.equal(got["detector.query_embed.weight"], detr_state["query_embed.weight"])
    assert torch.equal(got["detector.obj_class_embed.weight"][81], detr_state["class_embed.weight"][91])
    assert torch.equal(got["detector.obj_class_embed.weight"][80], before)  # extra class keeps its init
    assert set(report.initialised) == {"verb.verb_class_embed.weight", "verb.verb_class_embed.bias"}


def test_anchor_queries_skip_query_embed_and_transfer_stage1(detr_state: dict[str, torch.Tensor]) -> None:
    net = InteractivenessNet(paper_cfg(query_type="anchor", enc_layers=1, dec_layers_box=1), num_obj_classes=80)
    report = load_detr(net, detr_state)
    assert "query_embed.weight" in report.skipped
    assert "transformer.encoder.layers.3.linear1.weight" in report.skipped  # only 1 encoder layer here
    stage2 = VerbNet(paper_cfg(query_type="anchor", enc_layers=1, dec_layers_box=1, dec_layers_verb=1), 80, 117)
    moved = transfer(net.state_dict(), stage2)
    assert all(k.startswith(("extractor.", "detector.")) for k in moved.loaded)
    assert torch.equal(stage2.state_dict()["detector.anchors"], net.state_dict()["detector.anchors"])
    assert all(k.startswith("verb.") for k in moved.initialised)


def test_read_checkpoint_detr_layout_and_bare_state(tmp_path: Path) -> None:
    path = tmp_path / "detr.pth"  # DETR's file layout: argparse settings next to the weights
    settings = argparse.Namespace(lr=1e-4)
    torch.save({"model": {"query_embed.weight": torch.ones(3, 4)}, "args": settings, "epoch": 499}, path)
    assert torch.equal(read_checkpoint(path)["query_embed.weight"], torch.ones(3, 4))
    torch.save({"query_embed.weight": torch.zeros(3, 4)}, path)
    assert set(read_checkpoint(path)) == {"query_embed.weight"}
    net = InteractivenessNet(ModelConfig(backbone="demo", hidden_dim=8, nheads=1, dim_feedforward=8, num_queries=2,
                                         enc_layers=1, dec_layers_box=1), num_obj_classes=2)
    torch.save({"model": {"query_embed.weight": torch.ones(5, 8)}}, path)
    assert load_detr(net, path).loaded == ["detector.query_embed.weight"]
    assert torch.equal(net.detector.query_embed.weight, torch.ones(2, 8))


def test_read_checkpoint_errors_are_user_errors(tmp_path: Path) -> None:
    from model.common.errors import UserError

    with pytest.raises(UserError, match="not found"):
        read_checkpoint(tmp_path / "absent.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError):
        read_checkpoint(tmp_path / "junk.pth")
