"""``weights import-detr``: a tiny checkpoint in DETR's file layout and names (written here from
torch's own transformer layers, independently of our modules) -> verified, converted weights
that ``model.pretrained`` loads, tensor for tensor."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn
from typer.testing import CliRunner

from cli import app
from model.build import build
from model.config import ModelConfig
from model.label_space import for_format
from pipeline import params as P

D, HEADS, FFN, QUERIES = 16, 2, 32, 4
TINY = {"backbone": "demo", "hidden_dim": D, "nheads": HEADS, "dim_feedforward": FFN, "enc_layers": 1,
        "dec_layers_box": 1, "dec_layers_int": 1, "dec_layers_verb": 1, "num_queries": QUERIES, "query_type": "plain"}


def detr_style_state() -> dict[str, torch.Tensor]:
    """DETR's names at a tiny size: encoder/decoder layers as torch's nn.Transformer*Layer name
    them (DETR's do the same), the demo trunk's stem, one key without a counterpart and one of
    R50's shape (skipped), queries, class head [92, D] and box MLP."""
    torch.manual_seed(0)
    enc = nn.TransformerEncoderLayer(D, HEADS, FFN).state_dict()
    dec = nn.TransformerDecoderLayer(D, HEADS, FFN).state_dict()
    state = {f"transformer.encoder.layers.0.{k}": v for k, v in enc.items()}
    state |= {f"transformer.decoder.layers.0.{k}": v for k, v in dec.items()}
    shapes = {"transformer.decoder.norm.weight": (D,), "transformer.decoder.norm.bias": (D,),
              "backbone.0.body.conv1.weight": (32, 3, 7, 7), "backbone.0.body.bn1.weight": (32,),
              "backbone.0.body.bn1.running_var": (32,), "backbone.0.body.layer1.0.conv3.weight": (128, 32, 1, 1),
              "input_proj.weight": (D, 2048, 1, 1), "input_proj.bias": (D,), "query_embed.weight": (100, D),
              "class_embed.weight": (92, D), "class_embed.bias": (92,)}
    shapes |= {f"bbox_embed.layers.{i}.{n}": s for i, out in enumerate((D, D, 4))
               for n, s in (("weight", (out, D)), ("bias", (out,)))}
    return state | {k: torch.randn(s) for k, s in shapes.items()}


@pytest.fixture()
def setup(tmp_path: Path) -> tuple[Path, Path, dict[str, torch.Tensor]]:
    """(checkpoint in DETR's layout, params.yaml with the tiny model, the source tensors)."""
    state = detr_style_state()
    ckpt = tmp_path / "detr-tiny.pth"
    torch.save({"model": state, "args": argparse.Namespace(lr=1e-4), "epoch": 499}, ckpt)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"seed": 3, "dataset": {"format": "hico-det"}, "model": TINY}))
    return ckpt, params, state


def invoke(*args: str):
    return CliRunner().invoke(app, ["weights", "import-detr", *args])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_converted_weights_load_as_model_pretrained(setup, tmp_path: Path) -> None:
    ckpt, params, src = setup
    out, report = tmp_path / "init.pt", tmp_path / "import.json"
    r = invoke(str(ckpt), "--params", str(params), "--out", str(out), "--report", str(report), "--sha256", sha256(ckpt))
    assert r.exit_code == 0, r.output
    assert "SHA-256 match (--sha256)" in r.output and "extractor.encoder" in r.output
    rep = json.loads(report.read_text())
    assert rep["source"]["verification"] == "ok" and rep["source"]["sha256"] == sha256(ckpt)
    skipped = rep["stages"]["1"]["skipped_keys"]
    assert "shape (16, 2048, 1, 1) != model (16, 256, 1, 1)" in skipped["input_proj.weight"]
    assert skipped["backbone.0.body.layer1.0.conv3.weight"] == "no counterpart in this network"
    assert rep["stages"]["1"]["modules"]["extractor.input_proj"]["skipped"] == 0  # counted under DETR's name
    assert rep["stages"]["1"]["modules"]["input_proj"]["skipped"] == 1
    assert rep["stages"]["2"]["modules"]["verb.decoder"]["loaded"] > 0

    cfg_path = tmp_path / "train-params.yaml"
    cfg_path.write_text(yaml.safe_dump({"model": TINY | {"pretrained": str(out)}}))
    cfg = P.section("model", ModelConfig, cfg_path)
    space = for_format("hico-det")
    for stage in (1, 2):
        net, _, _ = build(cfg, stage, space)
        got = net.state_dict()
        assert len(net.import_report.loaded) == rep["stages"][str(stage)]["loaded"]
        assert all(k.startswith("verb.") for k in net.import_report.skipped)  # stage 2's, in a stage-1 net
        pairs = {"extractor.encoder.layers.0.linear1.weight": "transformer.encoder.layers.0.linear1.weight",
                 "extractor.backbone.body.conv1.weight": "backbone.0.body.conv1.weight",
                 "extractor.input_proj.bias": "input_proj.bias",
                 "detector.decoder.layers.0.multihead_attn.in_proj_weight":
                     "transformer.decoder.layers.0.multihead_attn.in_proj_weight",
                 "detector.decoder.norm.bias": "transformer.decoder.norm.bias",
                 "detector.obj_bbox_embed.layers.2.weight": "bbox_embed.layers.2.weight"}
        if stage == 2:
            pairs["verb.decoder.layers.0.linear2.weight"] = "transformer.decoder.layers.0.linear2.weight"
        for ours, theirs in pairs.items():
            assert torch.equal(got[ours], src[theirs]), ours
        assert torch.equal(got["detector.query_embed.weight"], src["query_embed.weight"][:QUERIES])
        assert torch.equal(got["detector.obj_class_embed.weight"][0], src["class_embed.weight"][1])  # person
        assert torch.equal(got["detector.obj_class_embed.bias"][-1], src["class_embed.bias"][91])  # no-object
        assert not torch.equal(got["extractor.input_proj.weight"][:, :1], src["input_proj.weight"][:, :1])


def test_checksum_mismatch_is_one_line_and_writes_nothing(setup, tmp_path: Path) -> None:
    ckpt, params, _ = setup
    out = tmp_path / "models" / "init.pt"
    r = invoke(str(ckpt), "--params", str(params), "--out", str(out), "--report", str(tmp_path / "r.json"))
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.output
    assert str(ckpt) in lines[0] and sha256(ckpt) in lines[0] and "e632da11" in lines[0] and "--no-verify" in lines[0]
    assert not out.parent.exists() and not (tmp_path / "r.json").exists()
    wrong = invoke(str(ckpt), "--params", str(params), "--out", str(out), "--sha256", "0" * 64)
    assert wrong.exit_code == 2 and "0" * 64 in wrong.stderr and not out.parent.exists()


def test_no_verify_is_reported_as_skipped(setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt, params, _ = setup
    monkeypatch.chdir(tmp_path)
    r = invoke(str(ckpt), "--params", str(params), "--no-verify")
    assert r.exit_code == 0, r.output
    assert "not checked (--no-verify)" in r.output
    rep = json.loads(Path("reports/import_detr.json").read_text())
    assert rep["source"]["verification"] == "skipped" and rep["source"]["sha256"] == sha256(ckpt)
    assert rep["output"] == "models/pretrained/detr-r50-bpm-hico-det.pt" and Path(rep["output"]).is_file()


class Payload:
    """Anything but tensors and plain data: weights-only loading must refuse it."""


def test_unrestricted_pickles_and_unfitting_networks_are_refused(setup, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt, params, src = setup
    monkeypatch.chdir(tmp_path)  # default --report lands here
    evil = tmp_path / "evil.pth"
    torch.save({"model": {"query_embed.weight": torch.ones(2, D)}, "extra": Payload()}, evil)
    out = tmp_path / "init.pt"
    r = invoke(str(evil), "--params", str(params), "--out", str(out), "--no-verify")
    assert r.exit_code == 2 and "DETR checkpoint refused: it holds objects other than tensors" in r.stderr and not out.exists()
    torch.save({"model": {k: v for k, v in src.items() if k.startswith("transformer.")}}, ckpt)
    wider = tmp_path / "wider.yaml"  # d 24, FFN 48: no transformer tensor fits
    wider.write_text(yaml.safe_dump({"model": TINY | {"hidden_dim": 24, "dim_feedforward": 48}}))
    r = invoke(str(ckpt), "--params", str(wider), "--out", str(out), "--no-verify")
    assert r.exit_code == 2 and "no tensor fits" in r.stderr and not out.exists()
    assert invoke(str(tmp_path / "absent.pth"), "--out", str(out)).exit_code == 2
    assert not Path("reports").exists()
