"""Run AlphaPose through its Python API to write ``alphapose-results.json`` (when the AlphaPose
package and its ``detector`` package are importable, i.e. inside an AlphaPose checkout).

The steps are those of AlphaPose's single-image API (``scripts/demo_api.py``): YOLOv3 person
detection (``detector.apis.get_detector``), crops by ``SimpleTransform.test_transform``, the
pose network (``builder.build_sppe``), ``heatmap_to_coord``, parametric pose NMS
(``pose_nms``), and entries written exactly as AlphaPose's ``write_json`` does (image file
name, keypoints, ``score`` = proposal score, ``box`` x, y, w, h). AlphaPose cannot be installed
on the CI machine, so this path is exercised only by its import guard there; the file it
writes is read by the tested reader.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from model.common.errors import UserError
from pipeline.tables import atomic_write

if TYPE_CHECKING:
    from pipeline.pose_backends.alphapose import AlphaPoseConfig


def _import_alphapose() -> SimpleNamespace:
    try:
        from alphapose.models import builder
        from alphapose.utils.config import update_config
        from alphapose.utils.pPose_nms import pose_nms
        from alphapose.utils.presets import SimpleTransform
        from alphapose.utils.transforms import get_func_heatmap_to_coord
        from detector.apis import get_detector
    except ImportError as exc:
        raise UserError(
            f"AlphaPose is not importable ({exc}): run AlphaPose's scripts/demo_inference.py on the "
            "images and put its alphapose-results.json under the dataset root, or install AlphaPose "
            "(README, 'Pose backends')"
        ) from None
    return SimpleNamespace(builder=builder, update_config=update_config, pose_nms=pose_nms,
                           SimpleTransform=SimpleTransform, heatmap_to_coord=get_func_heatmap_to_coord,
                           get_detector=get_detector)


def write_results(images: pd.DataFrame, root: Path, cfg: AlphaPoseConfig, out: Path) -> Path:
    """Run AlphaPose on every image of ``images`` and write its result file to ``out``.

    ``cfg``: the ``pose.alphapose`` params (AlphaPose ``cfg`` yaml, ``checkpoint``, ``detector``).
    """
    ap = _import_alphapose()
    import cv2
    import torch

    device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    opt = SimpleNamespace(detector=cfg.detector, gpus=[0] if device.type == "cuda" else [-1],
                          device=device, tracking=False, min_box_area=0)
    model_cfg = ap.update_config(str(cfg.cfg))
    model = ap.builder.build_sppe(model_cfg.MODEL, preset_cfg=model_cfg.DATA_PRESET)
    from model.torch_file import read_torch_file

    model.load_state_dict(read_torch_file(cfg.checkpoint, "AlphaPose checkpoint", device))  # type: ignore[arg-type]
    model.to(device).eval()
    transform = ap.SimpleTransform(
        ap.builder.retrieve_dataset(model_cfg.DATASET.TRAIN), scale_factor=0,
        input_size=model_cfg.DATA_PRESET.IMAGE_SIZE, output_size=model_cfg.DATA_PRESET.HEATMAP_SIZE,
        rot=0, sigma=model_cfg.DATA_PRESET.SIGMA, train=False, add_dpg=False, gpu_device=device)
    to_coord = ap.heatmap_to_coord(model_cfg)
    detector = ap.get_detector(opt)
    entries = []
    for file in tqdm(images["file"], desc="alphapose", unit="img"):
        rgb = cv2.imread(str(root / file))
        if rgb is None:
            continue
        rgb = cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB)
        entries += _one_image(ap, detector, transform, model, to_coord, model_cfg, opt, rgb, Path(file).name)
    return atomic_write(out, lambda tmp: tmp.write_text(json.dumps(entries)))


def _one_image(ap: SimpleNamespace, detector: Any, transform: Any, model: Any, to_coord: Any, model_cfg: Any,
               opt: SimpleNamespace, rgb: np.ndarray, name: str) -> list[dict]:
    """AlphaPose entries of one RGB image (AlphaPose's objects are untyped, hence Any)."""
    import torch

    with torch.no_grad():
        img = torch.as_tensor(detector.image_preprocess(rgb))
        img = img[None] if img.dim() == 3 else img
        dim = torch.FloatTensor([rgb.shape[1], rgb.shape[0]]).repeat(1, 2)
        dets = detector.images_detection(img, dim)
        if isinstance(dets, int) or dets.shape[0] == 0:
            return []
        dets = torch.as_tensor(dets).cpu()
        dets = dets[dets[:, 0] == 0]
        boxes, scores = dets[:, 1:5], dets[:, 5:6]
        inps = torch.zeros(len(boxes), 3, *model_cfg.DATA_PRESET.IMAGE_SIZE)
        crops = torch.zeros(len(boxes), 4)
        for i, box in enumerate(boxes):
            inps[i], crop = transform.test_transform(rgb, box)
            crops[i] = torch.FloatTensor(crop)
        heat = model(inps.to(opt.device)).cpu()
        coords, kp_scores = zip(*(
            to_coord(heat[i], crops[i].tolist(), hm_shape=model_cfg.DATA_PRESET.HEATMAP_SIZE,
                     norm_type=model_cfg.LOSS.get("NORM_TYPE", None))
            for i in range(len(boxes))))
        boxes, scores, _, poses, pose_scores, _ = ap.pose_nms(
            boxes, scores, torch.zeros(scores.shape), torch.as_tensor(np.stack(coords)),
            torch.as_tensor(np.stack(kp_scores)), opt.min_box_area)
    out = []
    for box, det, pose, kp_score in zip(boxes, scores, poses, pose_scores):
        s = np.asarray(kp_score, np.float64).reshape(-1)
        xy = np.asarray(pose, np.float64).reshape(-1, 2)
        box = [float(v) for v in box]
        out.append({
            "image_id": name, "category_id": 1,
            "keypoints": np.column_stack([xy, s]).reshape(-1).tolist(),
            "score": float(s.mean() + float(det) + 1.25 * s.max()),  # AlphaPose's proposal score
            "box": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
        })
    return out
