"""The ``synth`` stage: the built-in synthetic HOI dataset, written in the exact on-disk formats
of HICO-DET and V-COCO so that the real readers and evaluators are the code under test.

Layout of OUT (default ``data/raw/synthetic``)::

    hico_20160224_det/  annotations/{trainval_hico,test_hico}.json, annotations/corre_hico.npy,
                        images/{train2015,test2015}/HICO_{train,test}2015_%08d.jpg,
                        alphapose-results.json
    v-coco/             annotations/{trainval_vcoco,test_vcoco}.json, annotations/corre_vcoco.npy,
                        images/{train2014,val2014}/COCO_{train,val}2014_%012d.jpg,
                        data/vcoco/vcoco_{trainval,test}.json, data/splits/vcoco_{trainval,test}.ids,
                        data/instances_vcoco_all_2014.json, alphapose-results.json
    synth_summary.json  counts per dataset, split and scene kind; simulated pose faults

Everything is a function of (params, seed): each image draws from its own numpy Generator
keyed by (seed, dataset, split, index, purpose), so the same seed gives byte-identical files.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from model.common import labels
from pipeline import params as params_mod
from pipeline.synth import hico as hico_fmt
from pipeline.synth import vcoco as vcoco_fmt
from model.common.errors import UserError
from pipeline.synth.alphapose import PoseCounts, detect
from pipeline.synth.catalog import vcoco_correspondence
from pipeline.synth.config import HICO_ONLY_KINDS, SCENE_KINDS, SynthConfig, tiny_config
from pipeline.synth.draw import render
from pipeline.synth.scene import Scene, make_scene
from pipeline.tables import atomic_write, write_json

__all__ = ["SynthConfig", "Summary", "generate", "run", "tiny_config"]

HICO_DIR, VCOCO_DIR, SUMMARY = "hico_20160224_det", "v-coco", "synth_summary.json"
_DATASET = {"hico": 1, "vcoco": 2}
_SPLIT = {"train": 0, "test": 1}
_LAYOUT, _LABELS, _POSE, _PLAN = 0, 1, 2, 3  # independent random streams per image
_SPLIT_WIDE = 2**32  # the "index" of a split-wide stream (scene plan, omitted images, ids)
MARKER = ".synthetic"  # in each dataset folder: this stage may replace it
COCO_MAX_IMAGE_ID = 581929  # COCO 2014 image ids lie in 1..581929
PARAMS = ("seed", "synth")  # the params keys this stage reads (dvc.yaml lists exactly these)


@dataclass(frozen=True)
class ImageInfo:
    """One generated image (the tests and the end-to-end checks read these)."""

    dataset: str  # hico | vcoco
    split: str  # train | test
    file: str  # path relative to the dataset folder
    kind: str  # scene kind (SCENE_KINDS)
    persons: int  # figures drawn
    hois: int  # entries in the annotation file's hoi_annotation
    annotated: bool  # listed in the split's annotation file


@dataclass
class Summary:
    """What ``generate`` wrote: one entry per image, pose-simulation counts, output files."""

    seed: int
    images: list[ImageInfo] = field(default_factory=list)
    pose: dict[str, PoseCounts] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def as_dict(self) -> dict:
        out: dict = {"seed": self.seed, "datasets": {}}
        for ds in ("hico", "vcoco"):
            splits = {}
            for split in ("train", "test"):
                rows = [im for im in self.images if im.dataset == ds and im.split == split]
                kinds = Counter(im.kind for im in rows)
                splits[split] = {"images": len(rows), "annotated": sum(im.annotated for im in rows),
                                 "persons": sum(im.persons for im in rows), "hois": sum(im.hois for im in rows),
                                 "scenes": {k: kinds.get(k, 0) for k in SCENE_KINDS}}
            out["datasets"][ds] = {"splits": splits, "alphapose": self.pose[ds].as_dict() if ds in self.pose else {}}
        return out


def image_rng(seed: int, dataset: str, split: str, index: int, stream: int) -> np.random.Generator:
    """The random stream ``stream`` of one image, independent of every other image's."""
    return np.random.default_rng([seed, _DATASET[dataset], _SPLIT[split], index, stream])


def allocate(n: int, shares: dict[str, float]) -> dict[str, int]:
    """Split ``n`` images among scene kinds in proportion to ``shares`` (largest remainder,
    ties to the earlier kind), so the mix is exact rather than sampled."""
    raw = {k: n * s for k, s in shares.items()}
    counts = {k: int(np.floor(v)) for k, v in raw.items()}
    order = sorted(raw, key=lambda k: (-(raw[k] - counts[k]), list(raw).index(k)))
    for k in order[: n - sum(counts.values())]:
        counts[k] += 1
    return counts


def scene_plan(cfg: SynthConfig, seed: int, dataset: str, split: str, n: int) -> list[str]:
    """The scene kind of every image of a split, in a seeded random order (V-COCO: without the
    HICO-DET-only kinds)."""
    if n == 0:  # e.g. no V-COCO images with a mix of HICO-DET-only kinds: no shares to normalise
        return []
    shares = cfg.mix.shares(exclude=HICO_ONLY_KINDS if dataset == "vcoco" else ())
    kinds = [k for k, c in allocate(n, shares).items() for _ in range(c)]
    return [kinds[i] for i in image_rng(seed, dataset, split, _SPLIT_WIDE, _PLAN).permutation(n)]


def unannotated_test_images(cfg: SynthConfig, seed: int, n: int) -> set[int]:
    """Indices of the HICO-DET test images that test_hico.json omits (at least one when the
    rate is positive and there are two or more test images)."""
    if cfg.hico_unannotated_test_rate <= 0 or n < 2:
        return set()
    k = max(1, int(round(cfg.hico_unannotated_test_rate * n)))
    rng = image_rng(seed, "hico", "test", _SPLIT_WIDE + 1, _PLAN)
    return {int(i) for i in rng.choice(n, size=min(k, n - 1), replace=False)}


def _scenes(cfg: SynthConfig, seed: int, dataset: str, split: str, n: int, folder: Path,
            name: Callable[[int], str], omit: set[int]) -> Iterator[tuple[int, Scene, str]]:
    """Lay out, draw and save every image of a split; yields (index, scene, file name) with
    each person's visible keypoints filled in."""
    kinds = scene_plan(cfg, seed, dataset, split, n)
    folder.mkdir(parents=True, exist_ok=True)
    for i in tqdm(range(n), desc=f"synth: {dataset} {split}", unit="img", disable=None, leave=False):
        rng = image_rng(seed, dataset, split, i, _LAYOUT)
        size = (int(rng.integers(cfg.width[0], cfg.width[1] + 1)), int(rng.integers(cfg.height[0], cfg.height[1] + 1)))
        scene = make_scene(rng, cfg, kinds[i], size, interactions=i not in omit)
        img, visible = render(scene)
        for person, vis in zip(scene.persons, visible, strict=True):
            person.visible = vis
        file_name = name(i)
        img.save(folder / file_name, format="JPEG", quality=cfg.jpeg_quality)
        yield i, scene, file_name


def _dump(obj: object, path: Path) -> Path:
    """Compact JSON, as the dataset tools write it (``json.dump`` default separators)."""
    text = json.dumps(obj)
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def _save_npy(array: np.ndarray, path: Path) -> Path:
    def writer(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array)
    return atomic_write(path, writer)


@dataclass
class _PoseLog:
    """The simulated AlphaPose entries of one dataset, image after image."""

    entries: list[dict] = field(default_factory=list)
    counts: PoseCounts = field(default_factory=PoseCounts)

    def add(self, scene: Scene, name: str, rng: np.random.Generator, cfg: SynthConfig) -> None:
        entries, counts = detect(scene, name, rng, cfg.pose)
        self.entries.extend(entries)
        self.counts.add(counts)


def _write_hico(cfg: SynthConfig, seed: int, root: Path, summary: Summary) -> None:
    """HICO-DET: images, trainval/test json (test omits a few images), corre_hico.npy, poses."""
    pose = _PoseLog()
    splits = (("train", cfg.hico_train, hico_fmt.train_name, "trainval_hico.json"),
              ("test", cfg.hico_test, hico_fmt.test_name, "test_hico.json"))
    for split, n, namer, ann_file in splits:
        omit = unannotated_test_images(cfg, seed, n) if split == "test" else set()
        folder = root / "images" / f"{split}2015"
        records = []
        for i, scene, name in _scenes(cfg, seed, "hico", split, n, folder, lambda i, f=namer: f(i + 1), omit):
            labels_rng = image_rng(seed, "hico", split, i, _LABELS)
            rec = None if i in omit else hico_fmt.hico_record(scene, name, i + 1, labels_rng,
                                                              cfg.duplicate_box_rate, test=split == "test")
            records += [rec] if rec is not None else []
            pose.add(scene, name, image_rng(seed, "hico", split, i, _POSE), cfg)
            hois = len(rec["hoi_annotation"]) if rec else 0
            summary.images.append(ImageInfo("hico", split, f"images/{folder.name}/{name}", scene.kind,
                                            len(scene.persons), hois, rec is not None))
        summary.files.append(_dump(records, root / "annotations" / ann_file))
    summary.files.append(_save_npy(labels.hico().correspondence(), root / "annotations" / "corre_hico.npy"))
    summary.files.append(_dump(pose.entries, root / "alphapose-results.json"))
    summary.pose["hico"] = pose.counts


def _coco_image_ids(seed: int, n: int) -> list[int]:
    """Distinct COCO-like image ids (sparse in 1..581929, like COCO 2014's)."""
    rng = image_rng(seed, "vcoco", "train", _SPLIT_WIDE + 1, _PLAN)
    return [int(v) + 1 for v in rng.choice(COCO_MAX_IMAGE_ID, size=n, replace=False)]


def _vcoco_images(cfg: SynthConfig, seed: int, root: Path, summary: Summary,
                  pose: _PoseLog) -> list[vcoco_fmt.VImage]:
    """Draw every V-COCO image (train as COCO train2014, test as val2014) and annotate it."""
    ids = _coco_image_ids(seed, cfg.vcoco_train + cfg.vcoco_test)
    images: list[vcoco_fmt.VImage] = []
    next_ann = 1
    splits = (("train", cfg.vcoco_train, 0, vcoco_fmt.train_name, "train2014"),
              ("test", cfg.vcoco_test, cfg.vcoco_train, vcoco_fmt.test_name, "val2014"))
    for split, n, first, namer, folder in splits:
        name_of = lambda i, f=namer, o=first: f(ids[o + i])  # noqa: E731
        for i, scene, name in _scenes(cfg, seed, "vcoco", split, n, root / "images" / folder, name_of, set()):
            image = vcoco_fmt.vcoco_image(scene, split, ids[first + i], name, next_ann,
                                          image_rng(seed, "vcoco", split, i, _LABELS), cfg)
            next_ann += len(image.anns)  # annotation ids run on across images, as in COCO
            images.append(image)
            pose.add(scene, name, image_rng(seed, "vcoco", split, i, _POSE), cfg)
            summary.images.append(ImageInfo("vcoco", split, f"images/{folder}/{name}", scene.kind,
                                            len(scene.persons), len(image.record["hoi_annotation"]), True))
    return images


def _write_vcoco(cfg: SynthConfig, seed: int, root: Path, summary: Summary) -> None:
    """V-COCO: images, QPIC json, official vcoco_*.json + ids, COCO instances, corre, poses."""
    pose = _PoseLog()
    images = _vcoco_images(cfg, seed, root, summary, pose)
    for split, tag, qpic in (("train", "trainval", "trainval_vcoco.json"), ("test", "test", "test_vcoco.json")):
        mine = [im for im in images if im.split == split]
        people = [p for im in mine for p in im.people]
        summary.files.append(_dump([im.record for im in mine], root / "annotations" / qpic))
        summary.files.append(_dump(vcoco_fmt.official_annotations(people, cfg.actions),
                                   root / "data" / "vcoco" / f"vcoco_{tag}.json"))
        text = vcoco_fmt.split_ids(people)
        summary.files.append(atomic_write(root / "data" / "splits" / f"vcoco_{tag}.ids",
                                          lambda tmp, t=text: tmp.write_text(t)))
    summary.files.append(_dump(vcoco_fmt.instances(images), root / "data" / "instances_vcoco_all_2014.json"))
    summary.files.append(_save_npy(vcoco_correspondence(cfg.actions), root / "annotations" / "corre_vcoco.npy"))
    summary.files.append(_dump(pose.entries, root / "alphapose-results.json"))
    summary.pose["vcoco"] = pose.counts


@contextmanager
def _staged(final: Path) -> Iterator[Path]:
    """Build a dataset folder beside its final place and swap it in when complete, so that no
    stale file of an earlier, larger run survives and a crash leaves the old folder intact."""
    if final.exists() and any(final.iterdir()) and not (final / MARKER).exists():
        raise UserError(f"{final}: exists and was not written by the synth stage (no {MARKER} file); "
                        "choose another --out or remove it")
    tmp = final.with_name(f".{final.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / MARKER).write_text("written by `python cli.py synth`; replaced on every run\n")
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)


def generate(cfg: SynthConfig, seed: int, out: Path) -> Summary:
    """Write the synthetic HICO-DET and V-COCO datasets under ``out``; return what was written
    (paths in ``Summary.files`` are the final ones)."""
    if seed < 0:
        raise UserError(f"seed: expected a non-negative integer, got {seed}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = Summary(seed)
    for folder, writer in ((HICO_DIR, _write_hico), (VCOCO_DIR, _write_vcoco)):
        start = len(summary.files)
        with _staged(out / folder) as tmp:
            writer(cfg, seed, tmp, summary)
        summary.files[start:] = [out / folder / p.relative_to(tmp) for p in summary.files[start:]]
    summary.files.append(write_json(summary.as_dict(), out / SUMMARY))
    return summary


def run(params_path: Path, out: Path) -> Summary:
    """CLI entry: read params (``synth`` section, ``seed``), generate, print what was written."""
    cfg = params_mod.section("synth", SynthConfig, params_path, keys=PARAMS)
    seed = params_mod.seed(params_path, keys=PARAMS)
    start = time.perf_counter()
    summary = generate(cfg, seed, out)
    report(summary, Path(out), time.perf_counter() - start)
    return summary


def report(summary: Summary, out: Path, seconds: float) -> None:
    stats = summary.as_dict()["datasets"]
    for ds, folder in (("hico", HICO_DIR), ("vcoco", VCOCO_DIR)):
        for split, s in stats[ds]["splits"].items():
            mix = ", ".join(f"{k} {v}" for k, v in s["scenes"].items())
            print(f"synth: {out / folder} {split}: {s['images']} images ({s['annotated']} annotated), "
                  f"{s['persons']} persons, {s['hois']} HOIs; scenes: {mix}")
        p = stats[ds]["alphapose"]
        print(f"synth: {out / folder / 'alphapose-results.json'}: {p['detected']} of {p['persons']} persons "
              f"detected ({p['missed']} missed), {p['spurious']} spurious")
    print(f"synth: wrote {len(summary.files)} annotation files and {len(summary.images)} images "
          f"to {out} in {seconds:.1f} s (seed {summary.seed})")


def main() -> None:
    """The DVC stage's command (``python -m pipeline.stage synth``): default paths."""
    run(params_mod.DEFAULT_PARAMS, Path("data/raw/synthetic"))
