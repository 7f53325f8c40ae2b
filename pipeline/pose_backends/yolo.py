"""Ultralytics backend: YOLO pose inference on the dataset's images, batched, resumable and
shardable across ``torchrun`` ranks.

Images are decoded by a few threads ahead of the model, run in batches on CPU or CUDA, and the
persons of every ``shard_size`` images are written atomically to a shard
(:mod:`pipeline.pose_backends.shards`). A rerun skips the images already in shards; rank r of
W takes every W-th image (by position in the images table); the process that finds every image
covered merges the shards into the persons table.

Each image is letterboxed to a fixed ``imgsz`` square (``rect=False``), so a person's result
does not depend on which images share its batch, and a resumed run equals an uninterrupted one.
Boxes are ultralytics' ``xyxy`` in original-image pixels; keypoint scores are its keypoint
confidences (sigmoid outputs in [0, 1]); the person score is the box confidence.
"""

from __future__ import annotations

import os
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pydantic import Field
from tqdm import tqdm

from model.common.errors import UserError
from pipeline.params import Device, Section
from pipeline.pose_backends.persons import PersonArrays, to_persons
from pipeline.pose_backends.shards import ShardStore

if TYPE_CHECKING:  # ultralytics is imported lazily: only this backend needs it
    from ultralytics import YOLO

REPO = Path(__file__).resolve().parents[2]
WEIGHTS_DIR = Path("models/pose")  # where official weights named without a folder are downloaded


class UltralyticsConfig(Section):
    """params ``pose.ultralytics``.

    weights: a local ``.pt`` file, an official model name (downloaded by ultralytics into
    models/pose/ on first use; needs internet) or a model ``.yaml`` (random weights, tests);
    device: auto (CUDA ``LOCAL_RANK`` when available, else CPU) | cpu | cuda | cuda:N;
    batch: images per forward pass; imgsz: letterbox side in pixels; conf, iou, max_det:
    ultralytics' detection threshold, NMS IoU and cap per image; half: fp16 (CUDA only);
    shard_size: images per shard file; workers: image-decoding threads; trust_weights: load a
    ``.pt`` that is not a known official file (ultralytics unpickles it: it can run code; see
    :mod:`pipeline.pose_backends.weights_trust`).
    """

    weights: str = "yolo11x-pose.pt"
    device: Device = "auto"
    batch: int = Field(16, gt=0)
    imgsz: int = Field(640, gt=0)
    conf: float = Field(0.25, ge=0, le=1)
    iou: float = Field(0.7, ge=0, le=1)
    max_det: int = Field(100, gt=0)
    half: bool = False
    shard_size: int = Field(256, gt=0)
    workers: int = Field(2, ge=0)
    trust_weights: bool = False

    def settings(self) -> dict:
        """What determines the results (a change starts fresh shards); device/batch do not."""
        return self.model_dump(include={"weights", "imgsz", "conf", "iou", "max_det", "half"})


def run(
    images: pd.DataFrame, root: Path, cfg: UltralyticsConfig, shard_root: Path,
    rank: int, world: int, limit: int | None, counts: Counter,
) -> pd.DataFrame | None:
    """Detect persons in this rank's pending images; the merged persons table when every image
    of ``images`` is covered, else None (other ranks still running, or ``limit`` reached)."""
    store = ShardStore(shard_root, cfg.settings())
    order = pd.Series(np.arange(len(images)), index=images["image_id"].to_numpy())
    done = store.done()
    mine = images.iloc[rank::world]
    pending = mine[~mine["image_id"].isin(done)]
    if len(mine) > len(pending):
        counts["images already in shards (skipped)"] += len(mine) - len(pending)
    if limit is not None:
        pending = pending.iloc[:limit]
    if len(pending):
        model, device = load_model(cfg)
        _detect_into_shards(model, device, pending, order, root, cfg, store, rank, counts)
    done = store.done()
    missing = int((~images["image_id"].isin(done)).sum())
    if missing:
        counts["images not yet covered (other ranks or --limit)"] = missing
        return None
    stale = store.remove_stale()
    if stale:
        counts["stale shard folders removed"] += len(stale)
    return store.merge(order)


def _detect_into_shards(model: YOLO, device: str, pending: pd.DataFrame, order: pd.Series, root: Path,
                        cfg: UltralyticsConfig, store: ShardStore, rank: int, counts: Counter) -> None:
    progress = tqdm(total=len(pending), desc=f"pose (rank {rank})", unit="img")
    with progress:
        for start in range(0, len(pending), cfg.shard_size):
            chunk = pending.iloc[start:start + cfg.shard_size]
            found = []
            for ids, imgs, n in _batches(chunk, root, cfg, counts):
                found.append(predict_arrays(model, device, imgs, ids, cfg, counts))
                progress.update(n)
            raw = PersonArrays.concat(found)
            persons = to_persons(raw, chunk, "ultralytics", counts)
            ids = chunk["image_id"].tolist()
            store.write(int(order[ids[0]]), persons, ids)
            counts["images processed"] += len(ids)


def _batches(chunk: pd.DataFrame, root: Path, cfg: UltralyticsConfig,
             counts: Counter) -> Iterator[tuple[list[str], list[np.ndarray], int]]:
    """(image_ids, BGR uint8 images, images consumed) per batch of readable images; decoding
    runs ``workers`` threads ahead of the model."""
    ids, files = chunk["image_id"].tolist(), chunk["file"].tolist()
    sizes = chunk[["height", "width"]].to_numpy()
    groups = [range(i, min(i + cfg.batch, len(ids))) for i in range(0, len(ids), cfg.batch)]
    with ThreadPoolExecutor(max(1, cfg.workers)) as pool:
        queue: deque[list[Future]] = deque()
        for n, group in enumerate(groups):
            # Keep at most two batches in flight so memory stays bounded on 40k-image runs.
            while len(queue) < 2 and n + len(queue) < len(groups):
                queue.append([pool.submit(_imread, root / files[i]) for i in groups[n + len(queue)]])
            loaded = [f.result() for f in queue.popleft()]
            keep = [k for k, img in enumerate(loaded) if img is not None]
            if len(keep) < len(loaded):
                counts["unreadable images (no persons)"] += len(loaded) - len(keep)
            for k in keep:
                if tuple(loaded[k].shape[:2]) != tuple(sizes[group[k]]):
                    counts["image size differs from the images table"] += 1
            yield [ids[group[k]] for k in keep], [loaded[k] for k in keep], len(group)


def _imread(path: Path) -> np.ndarray | None:
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_COLOR)


def predict_arrays(model: YOLO, device: str, imgs: list[np.ndarray], ids: list[str], cfg: UltralyticsConfig,
                   counts: Counter) -> PersonArrays:
    """One batch through the model -> raw persons.

    ``imgs``: images as OpenCV gives them (HxWx3 BGR uint8, contiguous), any sizes; ``ids``:
    the image_id of each, in the same order; ``device``: ``cpu`` or ``cuda:N``; settings
    (imgsz, conf, iou, max_det, half) from ``cfg``. Returns one :class:`PersonArrays` row per
    person found (unfiltered, before records.to_persons): ``box`` xyxy and ``keypoints``
    [17, 3] (x, y, confidence in [0, 1], COCO-17 order) in pixels of the image as given,
    ``score`` the box confidence; ``part_boxes`` NaN (added later). ``counts`` is not written.
    Raises UserError when the weights are not a COCO-17 pose model."""
    if not imgs:
        return PersonArrays.empty()
    results = model.predict(imgs, imgsz=cfg.imgsz, conf=cfg.conf, iou=cfg.iou, max_det=cfg.max_det,
                            device=device, rect=False, verbose=False, save=False, **_precision(cfg.half))
    out = []
    for image_id, res in zip(ids, results):
        if res.keypoints is None:
            raise UserError(f"pose.ultralytics.weights={cfg.weights!r} is not a pose model (no keypoints)")
        raw = PersonArrays.empty(len(res.boxes))
        raw.image_id[:] = image_id
        raw.box[:] = res.boxes.xyxy.float().cpu().numpy()
        raw.score[:] = res.boxes.conf.float().cpu().numpy()
        kp = res.keypoints.data.float().cpu().numpy()
        if kp.shape[1:] != (17, 3):
            raise UserError(f"pose.ultralytics.weights={cfg.weights!r}: keypoints {kp.shape[1:]}, expected COCO-17 (17, 3)")
        raw.keypoints[:] = kp
        out.append(raw)
    return PersonArrays.concat(out)


def _precision(half: bool) -> dict:
    """fp16 switch: ``quantize`` since ultralytics 8.4 (``half`` warns there), ``half`` before."""
    from ultralytics.utils import DEFAULT_CFG_DICT

    if "quantize" in DEFAULT_CFG_DICT:
        return {"quantize": 16} if half else {}
    return {"half": half}


def set_ultralytics_env() -> None:
    """Project-local ultralytics settings, no pip auto-installs; downloads stay possible."""
    os.environ.setdefault("YOLO_CONFIG_DIR", str(REPO / ".yolo"))
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")


def resolve_weights(weights: str) -> str:
    """A local file as is; a bare official ``.pt`` name -> models/pose/<name> (downloaded there)."""
    path = Path(weights)
    if path.exists() or path.suffix != ".pt" or path.parent != Path("."):
        return weights
    return str(WEIGHTS_DIR / path.name)


def select_device(device: str) -> str:
    """``auto`` -> ``cuda:LOCAL_RANK`` when CUDA is available, else ``cpu``; ``cuda`` -> this
    rank's GPU; ``cuda:N`` (GPU N exactly), ``mps`` and ``cpu`` as given (checked by
    model.distributed.pick_device)."""
    from model.distributed import pick_device

    return str(pick_device(device, int(os.environ.get("LOCAL_RANK", 0))))


def load_model(cfg: UltralyticsConfig) -> tuple[YOLO, str]:
    """The ultralytics model and the device string to run it on."""
    set_ultralytics_env()
    from model.torchvision_fallback import ensure_torchvision

    ensure_torchvision()  # before ultralytics imports torchvision (CPU torch, CUDA wheel)
    from ultralytics import YOLO

    weights = resolve_weights(cfg.weights)
    _vet_weights(weights, cfg)
    try:
        model = YOLO(weights, task="pose")
    except (FileNotFoundError, ConnectionError, OSError, RuntimeError) as exc:
        raise UserError(
            f"pose.ultralytics.weights={cfg.weights!r}: cannot load ({exc}); put the .pt file at "
            f"{weights} or give a path (official weights download by name only with internet)"
        ) from None
    return model, select_device(cfg.device)


def _vet_weights(weights: str, cfg: UltralyticsConfig) -> None:
    """Download an official name (no loading), then refuse what is not known to be safe to unpickle."""
    from pipeline.pose_backends import weights_trust as trust

    if cfg.trust_weights or trust.is_architecture(cfg.weights):
        return
    trust.check_before_download(cfg.weights, cfg.trust_weights)
    if not Path(weights).exists() and trust.official_name(cfg.weights) is not None:
        from ultralytics.utils.downloads import attempt_download_asset

        try:
            weights = str(attempt_download_asset(weights))
        except (ConnectionError, OSError, RuntimeError) as exc:
            raise UserError(f"pose.ultralytics.weights={cfg.weights!r}: download failed ({exc}); put the .pt "
                            f"file at {weights} or give a path") from None
    if not Path(weights).exists():
        raise UserError(f"pose.ultralytics.weights={cfg.weights!r}: {weights} not found, and not an official name "
                        f"with a known digest ({trust.TABLE.name}); give a local file, or {trust.OPT_IN}")
    trust.vet(Path(weights), cfg.weights, cfg.trust_weights)
