"""``data verify``: small HICO-DET and V-COCO folders built here (from the official files via
convert-hico / build-vcoco) and the synthetic dataset's layout pass; each kind of problem
(missing file, missing image, wrong size, wrong count, wrong checksum, bad corre) is reported
with its fix and exit status 1."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from pipeline.interop import hico_convert, vcoco_build
from pipeline.interop.verify import verify
from tests.interop.test_hico_convert import write_images, write_official
from tests.interop.test_vcoco_build import write_inputs


@pytest.fixture()
def hico(tmp_path: Path) -> Path:
    root = tmp_path / "hico_20160224_det"
    anno_bbox, anno = write_official(root)
    hico_convert.run(anno_bbox, anno, root / "annotations")
    write_images(root)
    return root


@pytest.fixture()
def vcoco(tmp_path: Path) -> Path:
    root = write_inputs(tmp_path / "v-coco")
    vcoco_build.run(root, None)
    for split, ids in (("train", (9, 25)), ("val", (42, 73))):
        folder = root / "images" / f"{split}2014"
        folder.mkdir(parents=True, exist_ok=True)
        for i in ids:
            Image.new("RGB", (64, 48)).save(folder / f"COCO_{split}2014_{i:012d}.jpg")
    return root


def messages(report, level: str) -> list[str]:
    return [f"{f.subject}: {f.message} | {f.fix}" for f in report.findings if f.level == level]


def test_hico_folder_passes(hico: Path) -> None:
    report = verify("hico-det", hico, sample=0, official=False)
    assert report.exit_code == 0, report.render()
    text = report.render()
    assert "have the sizes anno_bbox.mat gives" in text and "all 2 images it names are present" in text
    assert "verify: OK" in text


def test_hico_against_official_figures_fails_with_fixes(hico: Path) -> None:
    report = verify("hico-det", hico, sample=0, official=True)
    assert report.exit_code == 1
    errors = messages(report, "error")
    assert any("3 image files, the official release has 38,118" in e for e in errors)
    assert any("1 image records, the official release has 9,546" in e for e in errors)
    assert any("sha256 unknown, not checked" in m for m in messages(report, "info"))


def test_hico_missing_json_points_to_convert(hico: Path) -> None:
    (hico / "annotations/test_hico.json").unlink()
    report = verify("hico-det", hico, official=False)
    assert report.exit_code == 1
    assert any("test_hico.json: missing" in e and "data convert-hico" in e for e in messages(report, "error"))


def test_hico_missing_image_wrong_size_and_bad_corre(hico: Path) -> None:
    (hico / "images/train2015/HICO_train2015_00000002.jpg").unlink()
    Image.new("RGB", (10, 10)).save(hico / "images/train2015/HICO_train2015_00000001.jpg")
    np.save(hico / "annotations/corre_hico.npy", np.ones((117, 80)))
    report = verify("hico-det", hico, sample=0, official=False)
    errors = messages(report, "error")
    assert any("1 of 2 images it names are missing (images/train2015/HICO_train2015_00000002.jpg)" in e for e in errors)
    assert any("differ in size from anno_bbox.mat" in e and "10x10, expected 64x48" in e for e in errors)
    assert any("corre_hico.npy: not HICO-DET's verb-object matrix" in e for e in errors)
    assert any("lie outside their image" in w for w in messages(report, "warning"))


def test_hico_without_anno_mat_is_a_warning(hico: Path) -> None:
    (hico / "anno.mat").unlink()
    report = verify("hico-det", hico, official=False)
    assert report.exit_code == 0
    assert any("anno.mat: missing" in w for w in messages(report, "warning"))


def test_missing_root(tmp_path: Path) -> None:
    report = verify("hico-det", tmp_path / "nowhere")
    assert report.exit_code == 1 and "folder not found" in report.render()


def test_vcoco_folder_passes(vcoco: Path) -> None:
    report = verify("v-coco", vcoco, sample=0, official=False)
    assert report.exit_code == 0, report.render()
    assert "have the sizes data/instances_vcoco_all_2014.json gives" in report.render()


def test_vcoco_problems(vcoco: Path) -> None:
    (vcoco / "data/splits/vcoco_test.ids").write_text("42\n")
    (vcoco / "images/val2014/COCO_val2014_000000000073.jpg").unlink()
    report = verify("v-coco", vcoco, sample=0, official=True)
    errors = messages(report, "error")
    assert any("differ from vcoco_test.ids" in e for e in errors)
    assert any("1 test image ids, the official release has 4,946" in e for e in errors)
    assert any("images it names are missing" in e and "coco_val2014.zip" in e for e in errors)
    # official mode: vcoco_test.json is not the published file (Git blob id and size known)
    assert any("data/vcoco/vcoco_test.json: content differs" in e and "--force" in e for e in errors)


def test_synthetic_layout_passes(tmp_path: Path) -> None:
    from pipeline.synth import generate, tiny_config

    generate(tiny_config(), 0, tmp_path)
    for fmt, folder in (("hico-det", "hico_20160224_det"), ("v-coco", "v-coco")):
        report = verify(fmt, tmp_path / folder, sample=0, official=False)
        assert report.exit_code == 0, report.render()


def canonical(records: list[dict]) -> list[dict]:
    """Records sorted by file name, each record's HOIs sorted (both orders are immaterial)."""
    def hois(r: dict) -> list:
        return sorted(r["hoi_annotation"], key=lambda h: tuple(h.values()))
    return [r | {"hoi_annotation": hois(r)} for r in sorted(records, key=lambda r: r["file_name"])]


def test_build_vcoco_reproduces_the_synthetic_qpic_files(tmp_path: Path) -> None:
    """Two implementations of QPIC's conversion (synth's writer, our builder) agree."""
    from pipeline.synth import generate, tiny_config

    generate(tiny_config(), 0, tmp_path)
    root = tmp_path / "v-coco"
    instances = json.loads((root / vcoco_build.INSTANCES).read_text())
    from pipeline.interop.vcoco_official import load_split

    for split, name in (("trainval", "trainval_vcoco.json"), ("test", "test_vcoco.json")):
        ours = vcoco_build.qpic_records(load_split(root / "data/vcoco", split), instances, split)
        theirs = json.loads((root / "annotations" / name).read_text())
        assert canonical(ours) == canonical(theirs)


def test_cli_verify_exit_status(hico: Path) -> None:
    from cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["data", "verify", "hico-det", str(hico), "--no-official", "--sample", "0"])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, ["data", "verify", "hico-det", str(hico)])
    assert bad.exit_code == 1 and "ERROR" in bad.output and "fix:" in bad.output


def test_hico_empty_annotation_list_is_an_error_not_a_crash(hico: Path) -> None:
    (hico / "anno_bbox.mat").unlink()  # the PPDM/QPIC layout alone
    (hico / "annotations/test_hico.json").write_text("[]")
    report = verify("hico-det", hico, sample=0, official=False)
    assert report.exit_code == 1
    assert any("test_hico.json: lists no image record" in e for e in messages(report, "error"))


def test_hico_zero_byte_truncated_and_unreadable_images_without_anno_bbox(hico: Path) -> None:
    (hico / "anno_bbox.mat").unlink()  # the PPDM/QPIC layout alone: no sizes to compare with
    train = hico / "images/train2015"
    (train / "HICO_train2015_00000001.jpg").write_bytes(b"")
    noise = Image.effect_noise((128, 128), 60).convert("RGB")
    noise.save(train / "HICO_train2015_00000002.jpg", "JPEG")
    data = (train / "HICO_train2015_00000002.jpg").read_bytes()
    (train / "HICO_train2015_00000002.jpg").write_bytes(data[: len(data) // 2])  # header fine, pixels cut
    report = verify("hico-det", hico, sample=0, official=False)
    errors = messages(report, "error")
    assert report.exit_code == 1
    assert any("1 empty (zero-byte) image file(s) (images/train2015/HICO_train2015_00000001.jpg)" in e for e in errors)
    assert any("1 truncated image file(s) (images/train2015/HICO_train2015_00000002.jpg)" in e for e in errors)
    assert any("1 unreadable image(s) (images/train2015/HICO_train2015_00000001.jpg)" in e for e in errors)


def test_hico_image_in_both_splits(hico: Path) -> None:
    import shutil

    shutil.copy(hico / "images/test2015/HICO_test2015_00000001.jpg", hico / "images/train2015/HICO_test2015_00000001.jpg")
    report = verify("hico-det", hico, sample=0, official=False)
    assert report.exit_code == 1
    assert any("train/test: 1 image id(s) in both splits (HICO_test2015_00000001)" in e for e in messages(report, "error"))
