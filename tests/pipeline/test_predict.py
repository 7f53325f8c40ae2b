"""``predict`` end to end with a tiny untrained bundle: the predictions schema, the files
written, deterministic output (ultralytics backend with random fixed weights), and every kind
of bad input in one folder (file backend): unreadable files, greyscale / CMYK / alpha / 16-bit
images, EXIF-rotated photos, huge images, an image without a person, a missing path."""

from __future__ import annotations

from tests.conftest import save_random_pose_weights

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from pipeline import predict, tables
from pipeline.inputs import images as image_input

TINY = {"backbone": "demo", "hidden_dim": 32, "nheads": 4, "dim_feedforward": 64, "enc_layers": 1,
        "dec_layers_box": 2, "dec_layers_verb": 1, "num_queries": 4, "query_type": "anchor", "dropout": 0.0}
# COCO-17 keypoints as fractions of a person box (a figure facing the camera)
KEYPOINTS = np.array([(.5, .08), (.55, .06), (.45, .06), (.6, .08), (.4, .08), (.65, .22), (.35, .22), (.7, .38),
                      (.3, .38), (.72, .5), (.28, .5), (.58, .55), (.42, .55), (.6, .75), (.4, .75), (.6, .95),
                      (.4, .95)])


def make_bundle(path: Path, **model: object) -> Path:
    """Both stages of the tiny model (``model`` overrides), untrained (seeded), NIS threshold 0,
    64 px inputs."""
    from model import checkpoint as ckpt_io
    from model.build import build
    from model.bundle_file import make_bundle as assemble
    from model.bundle_file import save_bundle
    from model.config import ModelConfig
    from model.label_space import for_format
    from model.postprocess import PostprocessConfig
    from model.transforms import AugmentConfig

    cfg, space = ModelConfig.model_validate({**TINY, **model}), for_format("hico-det")
    torch.manual_seed(0)
    cks = []
    for stage in (1, 2):
        net, _, _ = build(cfg, stage, space)
        cks.append({"format": ckpt_io.FORMAT, "stage": stage, "model": net.state_dict(), "model_spec": net.spec(),
                    "model_config": cfg.model_dump(mode="json"), "labels": space.to_dict(),
                    "train_config": {"augment": AugmentConfig(eval_size=64, eval_max_size=96).model_dump(mode="json")},
                    "dataset": {"name": "test", "format": "hico-det", "root": "."}, "iteration": 0, "best": {}})
    nis = {"mode": "threshold", "threshold": 0.0}
    return save_bundle(path, assemble(cks[0], cks[1], nis, PostprocessConfig().model_dump(mode="json")))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("bundle") / "bundle.pt")


def figure(size: tuple[int, int], box: tuple[float, float, float, float], bg=(150, 190, 220)) -> Image.Image:
    """A stick figure inside ``box`` on a plain background; size = (w, h)."""
    img = Image.new("RGB", size, bg)
    d = ImageDraw.Draw(img)
    kp = person_keypoints(box)
    for a, b in ((5, 7), (7, 9), (6, 8), (8, 10), (5, 11), (6, 12), (11, 13), (13, 15), (12, 14), (14, 16), (5, 6)):
        d.line([tuple(kp[a, :2]), tuple(kp[b, :2])], fill=(20, 20, 20), width=3)
    r = (box[2] - box[0]) * 0.12
    d.ellipse([kp[0, 0] - r, kp[0, 1] - r, kp[0, 0] + r, kp[0, 1] + r], fill=(230, 180, 150))
    return img


def person_keypoints(box) -> np.ndarray:
    x1, y1, x2, y2 = box
    xy = KEYPOINTS * [x2 - x1, y2 - y1] + [x1, y1]
    return np.c_[xy, np.full(17, 0.9)].astype(np.float32)


def pose_entry(name: str, box, k: float = 1.0) -> dict:
    """An AlphaPose result entry for a person in ``box``, coordinates times ``k``."""
    kp = person_keypoints(box) * [k, k, 1]
    b = np.asarray(box, np.float64) * k
    return {"image_id": name, "category_id": 1, "keypoints": kp.ravel().round(3).tolist(),
            "score": 2.5, "box": [b[0], b[1], b[2] - b[0], b[3] - b[1]]}


def run(inputs, bundle: Path, out: Path, params: Path | None = None, **options) -> dict:
    return predict.run(inputs, bundle, out, predict.PredictOptions(device="cpu", **options), params)


# ----------------------------------------------------------------------------- ultralytics


@pytest.fixture(scope="module")
def pose_weights(tmp_path_factory) -> Path:
    """yolo11n-pose with random (fixed) weights: it 'finds' persons at a tiny threshold."""
    return save_random_pose_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def ultralytics_runs(tmp_path_factory, bundle, pose_weights) -> tuple[Path, Path, dict]:
    """The same folder predicted twice (attention on), with the random pose model."""
    root = tmp_path_factory.mktemp("ultra")
    images = root / "images"
    (images / "sub").mkdir(parents=True)
    figure((96, 128), (20, 10, 70, 120)).save(images / "a.jpg")
    figure((128, 96), (50, 5, 90, 90)).save(images / "sub" / "b.png")
    (images / "notes.txt").write_text("not an image: ignored in folders")
    params = root / "params.yaml"
    ultra = {"imgsz": 64, "conf": 1e-6, "max_det": 3, "workers": 1}
    params.write_text(yaml.safe_dump({"pose": {"ultralytics": ultra}}))
    out1, out2 = root / "out1", root / "out2"
    summary = run([images], bundle, out1, params, pose_weights=str(pose_weights), attention=True, batch=2,
                  trust_weights=True)
    run([images], bundle, out2, params, pose_weights=str(pose_weights), attention=True, batch=2,
        trust_weights=True)
    return out1, out2, summary


def test_predictions_schema_and_files(ultralytics_runs):
    out, _, summary = ultralytics_runs
    preds = tables.read(out / "predictions.parquet", "predictions")  # refuses a schema mismatch
    assert summary["inputs"] == 2 and summary["ok"] == 2 and summary["triplets"] == len(preds) > 0
    assert set(preds["image_id"]) <= {"a", "b"}
    doc = json.loads((out / "predictions.json").read_text())
    assert [e["image_id"] for e in doc["images"]] == ["a", "b"]
    entry = doc["images"][0]
    assert entry["status"] == "ok" and (entry["width"], entry["height"]) == (96, 128)
    det = entry["detections"][0]
    assert {"verb", "object", "score", "interactiveness", "part_scores", "human_box", "object_box"} <= set(det)
    assert set(det["part_scores"]) == {"foot", "leg", "hip", "hand", "arm", "head"}
    for image_id in ("a", "b"):
        for folder in ("images", "attention"):
            with Image.open(out / folder / f"{image_id}.png") as im:
                assert im.mode == "RGB" and im.width >= 640


def test_two_runs_are_identical(ultralytics_runs):
    out1, out2, _ = ultralytics_runs
    pd.testing.assert_frame_equal(tables.read(out1 / "predictions.parquet", "predictions"),
                                  tables.read(out2 / "predictions.parquet", "predictions"))
    strip = lambda p: {k: v for k, v in json.loads(p.read_text()).items() if k != "bundle"}  # noqa: E731
    assert strip(out1 / "predictions.json") == strip(out2 / "predictions.json")
    for png in sorted((out1 / "images").glob("*.png")) + sorted((out1 / "attention").glob("*.png")):
        assert png.read_bytes() == (out2 / png.parent.name / png.name).read_bytes()


# ----------------------------------------------------------------------------- bad input

BOX = (20, 10, 70, 120)  # person box of every 96 x 128 test image


def write_bad_folder(folder: Path) -> list[dict]:
    """Every kind of difficult input; returns the pose entries (displayed, original frame)."""
    folder.mkdir(parents=True)
    base = figure((96, 128), BOX)
    base.save(folder / "plain.png")
    base.convert("L").save(folder / "gray.png")
    base.convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    rgba = base.convert("RGBA")
    rgba.putalpha(Image.new("L", base.size, 0).point(lambda _: 255).crop((0, 0, 96, 128)))
    rgba.putpixel((0, 0), (0, 0, 0, 0))
    rgba.save(folder / "alpha.png")
    pal = base.convert("P", palette=Image.Palette.ADAPTIVE)
    pal.info["transparency"] = 0
    pal.save(folder / "palette.png", transparency=0)
    Image.fromarray((np.asarray(base.convert("L"), np.uint16) * 257)).save(folder / "sixteen.png")
    exif = Image.Exif()
    exif[image_input.EXIF_ORIENTATION] = 6  # viewer rotates 90 degrees clockwise
    base.transpose(Image.Transpose.ROTATE_90).save(folder / "rotated.png", exif=exif)
    base.resize((384, 512), Image.Resampling.NEAREST).save(folder / "huge.png")  # exactly 4 x plain
    figure((6000, 4000), (2000, 200, 3500, 3900)).save(folder / "big.jpg", quality=80)
    figure((96, 128), BOX).save(folder / "nobody.png")
    (folder / "broken.jpg").write_bytes(b"this is not a jpeg")
    (folder / "empty.png").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes((folder / "cmyk.jpg").read_bytes()[:300])
    names = ["plain.png", "gray.png", "cmyk.jpg", "alpha.png", "palette.png", "sixteen.png", "rotated.png"]
    entries = [pose_entry(n, BOX) for n in names]
    return entries + [pose_entry("huge.png", BOX, 4.0), pose_entry("big.jpg", (2000, 200, 3500, 3900))]


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory, bundle) -> tuple[Path, dict, dict]:
    root = tmp_path_factory.mktemp("bad")
    entries = write_bad_folder(root / "images")
    (root / "alphapose-results.json").write_text(json.dumps(entries))
    out = root / "out"
    summary = run([root / "images", root / "missing.jpg"], bundle, out, pose_backend="alphapose-file",
                  pose_file=root / "alphapose-results.json", max_side=128, batch=3)
    doc = json.loads((out / "predictions.json").read_text())
    return out, summary, {e["image_id"]: e for e in doc["images"]}


def test_bad_inputs_are_counted_not_fatal(bad_run):
    out, summary, entries = bad_run
    assert summary["inputs"] == 14
    assert summary["unreadable"] == 4  # broken, empty, truncated, missing path
    assert summary["no_pose_entry"] == 1 and summary["no_person"] == 0 and summary["ok"] == 9
    for image_id in ("broken", "empty", "truncated", "missing"):
        assert entries[image_id]["status"] == "error" and entries[image_id]["message"]
        assert not (out / "images" / f"{image_id}.png").exists()


def test_image_missing_from_pose_file_gets_an_entry_and_a_png(bad_run):
    """The pose file has no entry for it: reported as such, not as 'no person found'."""
    out, _, entries = bad_run
    e = entries["nobody"]
    assert e["status"] == "no_pose_entry" and e["detections"] == [] and "no entry" in e["message"]
    assert (out / "images" / "nobody.png").exists()


@pytest.mark.parametrize(("image_id", "note"), [("gray", "L -> RGB"), ("cmyk", "CMYK -> RGB"),
                                                ("alpha", "transparency"), ("palette", "transparency"),
                                                ("sixteen", "greyscale"), ("rotated", "EXIF orientation 6"),
                                                ("huge", "reduced from 384x512"), ("big", "reduced from 6000x4000")])
def test_conversions_are_reported(bad_run, image_id, note):
    e = bad_run[2][image_id]
    assert e["status"] == "ok" and e["detections"]
    assert any(note in c for c in e["conversions"]), e["conversions"]


def _boxes(out: Path, image_id: str) -> np.ndarray:
    p = tables.read(out / "predictions.parquet", "predictions")
    cols = ["hx1", "hy1", "hx2", "hy2", "ox1", "oy1", "ox2", "oy2", "score"]
    return p[p["image_id"] == image_id].sort_values(["query", "verb_id"])[cols].to_numpy(np.float64)


def test_exif_rotation_is_applied_before_everything(bad_run):
    out, _, entries = bad_run
    assert (entries["rotated"]["width"], entries["rotated"]["height"]) == (96, 128)  # displayed frame
    np.testing.assert_allclose(_boxes(out, "rotated"), _boxes(out, "plain"), atol=1e-4)


def test_huge_image_boxes_come_back_in_original_pixels(bad_run):
    out, _, entries = bad_run
    assert (entries["huge"]["width"], entries["huge"]["height"]) == (384, 512)
    huge, plain = _boxes(out, "huge"), _boxes(out, "plain")
    np.testing.assert_allclose(huge[:, :8], 4 * plain[:, :8], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(huge[:, 8], plain[:, 8], rtol=1e-5)


def test_to_rgb_composites_alpha_on_white_and_rescales_16_bit():
    clear = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    notes: list[str] = []
    assert np.asarray(image_input.to_rgb(clear, notes)).min() == 255 and notes
    deep = Image.fromarray(np.full((4, 4), 65535, np.uint16))
    assert np.asarray(image_input.to_rgb(deep, [])).min() == 255


def test_discover_makes_ids_unique(tmp_path):
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / sub / "same.png")
    sources, missing = image_input.discover([tmp_path, tmp_path / "x" / "same.png", tmp_path / "nope"])
    assert [s.image_id for s in sources] == ["same", "same-2"] and missing == [tmp_path / "nope"]


def write_pose_file(kind: str, path: Path, name: str) -> Path:
    """The persons of ``name`` (one figure in BOX) in the format of ``kind``."""
    e = pose_entry(name, BOX)
    if kind == "alphapose-file":
        path.write_text(json.dumps([e]))
    elif kind == "coco-file":  # COCO ids: the number ending the file stem
        path.write_text(json.dumps([{**e, "image_id": 42, "score": 0.9, "bbox": e.pop("box")}]))
    else:
        x, y, w, h = e["box"]
        row = {"image_id": Path(name).stem, "person": 0, "x1": x, "y1": y, "x2": x + w, "y2": y + h, "score": 0.9,
               "keypoints": np.asarray(e["keypoints"], np.float32), "part_boxes": None, "backend": "test"}
        tables.write(pd.DataFrame([row]), "persons", path)
    return path


def test_file_backends_agree(tmp_path, bundle):
    """The same persons given as AlphaPose json, COCO json or a persons table: same triplets."""
    figure((96, 128), BOX).save(tmp_path / "img_000042.png")
    found = {}
    for kind, suffix in (("alphapose-file", "json"), ("coco-file", "json"), ("persons-table", "parquet")):
        pose = write_pose_file(kind, tmp_path / f"{kind}.{suffix}", "img_000042.png")
        out = tmp_path / kind
        summary = run([tmp_path / "img_000042.png"], bundle, out, pose_backend=kind, pose_file=pose)
        assert summary["ok"] == 1 and summary["persons"] == 1
        found[kind] = _boxes(out, "img_000042")
    np.testing.assert_array_equal(found["alphapose-file"], found["coco-file"])
    np.testing.assert_array_equal(found["alphapose-file"], found["persons-table"])


@pytest.mark.parametrize("ablation", ["intuitive", "no_parts"])
def test_attention_figure_for_other_schemes(tmp_path, ablation):
    """Six-pass schemes (attention per part pass, no filtering) and the instance-level model."""
    bundle = make_bundle(tmp_path / "b.pt", ablation=ablation)
    figure((96, 128), BOX).save(tmp_path / "one.png")
    pose = write_pose_file("alphapose-file", tmp_path / "pose.json", "one.png")
    summary = run([tmp_path / "one.png"], bundle, tmp_path / "out", pose_backend="alphapose-file", pose_file=pose,
                  attention=True)
    assert summary["with_detections"] == 1
    with Image.open(tmp_path / "out" / "attention" / "one.png") as im:
        assert im.width > 1000


def test_device_choice_is_checked():
    assert predict.resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(predict.UserError, match="CUDA is not available"):
            predict.resolve_device("cuda")
    with pytest.raises(predict.UserError, match="expected auto, cpu"):
        predict.resolve_device("tpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(tmp_path, bundle):
    figure((96, 128), BOX).save(tmp_path / "one.png")
    pose = write_pose_file("alphapose-file", tmp_path / "pose.json", "one.png")
    found = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        predict.run([tmp_path / "one.png"], bundle, out, predict.PredictOptions(
            device=device, pose_backend="alphapose-file", pose_file=pose, attention=True), None)
        found[device] = _boxes(out, "one")
        assert (out / "attention" / "one.png").exists()
    np.testing.assert_allclose(found["cuda"], found["cpu"], rtol=1e-3, atol=1e-2)


# ----------------------------------------------------------------------------- CLI


def test_cli_predict_and_its_errors(tmp_path, bundle):
    from cli import app

    img = tmp_path / "one.png"
    figure((96, 128), BOX).save(img)
    pose = tmp_path / "pose.json"
    pose.write_text(json.dumps([pose_entry("one.png", BOX)]))
    runner = CliRunner()
    args = ["predict", str(img), "--checkpoint", str(bundle), "--out", str(tmp_path / "out"), "--device", "cpu",
            "--pose-backend", "alphapose-file", "--pose-file", str(pose), "--top", "3",
            "--params", str(tmp_path / "none.yaml")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "images" / "one.png").exists()
    bad = runner.invoke(app, [*args[:3], str(tmp_path / "nope.pt"), *args[4:]])
    assert bad.exit_code == 2 and "bundle not found" in bad.output
    nothing = runner.invoke(app, ["predict", str(tmp_path / "empty_dir"), "--checkpoint", str(bundle)])
    assert nothing.exit_code == 2 and "no image files" in nothing.output
    no_file = runner.invoke(app, [*args[:8], "--pose-backend", "coco-file"])
    assert no_file.exit_code == 2 and "--pose-file" in no_file.output
