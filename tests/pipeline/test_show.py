"""``show`` on a tiny synthetic dataset (synth -> ingest -> pose (simulated AlphaPose) -> parts):
a PNG per image, deterministic per seed, with and without augmentation, HICO-DET and V-COCO,
and one-line errors for unknown ids and wrong splits."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from pipeline import ingest, parts, pose, show
from model.common.errors import UserError
from pipeline.synth import generate, tiny_config


def prepare(root: Path, fmt: str, folder: str) -> tuple[Path, Path]:
    """params.yaml and the processed tables of one format of the synthetic dataset."""
    params = root / f"params-{fmt}.yaml"
    params.write_text(yaml.safe_dump({
        "seed": 0,
        "dataset": {"name": "synthetic", "format": fmt, "root": str(root / "raw" / folder)},
        "train": {"augment": {"scales": [128], "max_size": 160, "flip": 0.5, "eval_size": 128, "eval_max_size": 160}},
    }))
    data, rep = root / f"processed-{fmt}", root / f"reports-{fmt}"
    ingest.run(params, data, rep / "ingest.json")
    pose.run(params, data / "images.parquet", data / "persons.parquet", rep / "shards", rep / "pose.json")
    parts.run(params, data / "persons.parquet", data / "images.parquet", data / "parts.parquet", rep / "parts.json")
    return params, data


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate(tiny_config(hico_train=4, hico_test=2, vcoco_train=3, vcoco_test=2), 0, root / "raw")
    return root


@pytest.fixture(scope="module")
def hico(synthetic) -> tuple[Path, Path, str]:
    params, data = prepare(synthetic, "hico-det", "hico_20160224_det")
    pairs = pd.read_parquet(data / "pairs.parquet")
    train = pd.read_parquet(data / "images.parquet").query("split == 'train'")["image_id"]
    return params, data, str(pairs[pairs["image_id"].isin(train)]["image_id"].iloc[0])


def test_show_writes_a_png(hico, tmp_path):
    params, data, image_id = hico
    path = show.run(image_id, "train", True, 0, params, data, tmp_path / "a.png")
    with Image.open(path) as im:
        assert im.mode == "RGB" and im.width > 1000 and im.height > 500


def test_same_seed_same_png_and_no_augment(hico, tmp_path):
    params, data, image_id = hico
    one = show.run(image_id, None, True, 7, params, data, tmp_path / "one.png").read_bytes()
    two = show.run(image_id, None, True, 7, params, data, tmp_path / "two.png").read_bytes()
    assert one == two
    plain = show.run(image_id, None, False, 7, params, data, tmp_path / "plain.png")
    assert plain.exists()


def test_flip_shows_in_the_masks(hico):
    """Some seed flips the image: its part masks are then not those of the evaluation chain."""
    params, data, image_id = hico
    plain = show.load_sample(image_id, None, False, 0, params, data).masks
    flipped = [show.load_sample(image_id, None, True, s, params, data).masks for s in range(6)]
    assert any((m != plain).any() for m in flipped) and any((m == plain).all() for m in flipped)


def test_vcoco_pairs_without_object(synthetic, tmp_path):
    params, data = prepare(synthetic, "v-coco", "v-coco")
    pairs = pd.read_parquet(data / "pairs.parquet")
    image_id = str(pairs["image_id"].iloc[0])
    assert show.run(image_id, None, True, 1, params, data, tmp_path / "v.png").exists()


def test_unknown_id_and_wrong_split_are_one_line_errors(hico, tmp_path):
    params, data, image_id = hico
    with pytest.raises(UserError, match="not in the images table"):
        show.run("nope", None, True, 0, params, data, tmp_path / "x.png")
    with pytest.raises(UserError, match="is in split 'train', not 'test'"):
        show.run(image_id, "test", True, 0, params, data, tmp_path / "x.png")


def test_cli_show(hico, tmp_path):
    from cli import app

    params, data, image_id = hico
    runner = CliRunner()
    out = tmp_path / "cli.png"
    ok = runner.invoke(app, ["show", image_id, "--split", "train", "--no-augment", "--seed", "3",
                             "--params", str(params), "--data", str(data), "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    assert out.exists()
    bad = runner.invoke(app, ["show", "nope", "--params", str(params), "--data", str(data), "--out", str(out)])
    assert bad.exit_code == 2 and "not in the images table" in bad.output
