"""Augmentation keeps every box (human, object, parts) consistent with the image."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from model.transforms import IMAGENET_MEAN, IMAGENET_STD, AugmentConfig, ToTensor, crop, hflip, make_transforms, resize
from model.collate import Batch, pad_images
from pipeline.tables import PART_NAMES
from train_fixtures import person_parts

W, H = 120, 90


def _sample():
    """An image whose pixels mark every box: red human, blue object, and a green dot at the
    centre of the person's right hand only."""
    arr = np.zeros((H, W, 3), dtype=np.uint8)
    sub = np.array([[10, 10, 50, 80]], dtype=np.float32)
    obj = np.array([[60, 30, 80, 50]], dtype=np.float32)
    arr[10:80, 10:50, 0] = 255
    arr[30:50, 60:80, 2] = 255
    parts = person_parts(sub[0])[None]  # [1, 10, 4]
    rh = parts[0, PART_NAMES.index("right_hand")]
    cx, cy = int((rh[0] + rh[2]) / 2), int((rh[1] + rh[3]) / 2)
    arr[cy - 1:cy + 2, cx - 1:cx + 2, 1] = 255
    tgt = {"sub_boxes": sub, "obj_boxes": obj, "has_obj": np.array([True]), "obj_labels": np.array([3]),
           "verbs": np.array([[1.0, 0.0]], dtype=np.float32), "interactive": np.array([1.0], dtype=np.float32),
           "part_boxes": parts, "part_valid": np.ones((1, 10), dtype=bool), "size": (H, W)}
    return Image.fromarray(arr), tgt


def _mean_in(img: Image.Image, box, channel: int) -> float:
    a = np.asarray(img, dtype=np.float32)[..., channel]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    return float(a[y1 + 1:y2 - 1, x1 + 1:x2 - 1].mean())


def test_flip_twice_is_identity():
    img, tgt = _sample()
    img2, tgt2 = hflip(*hflip(img, tgt))
    assert np.array_equal(np.asarray(img2), np.asarray(img))
    for k in ("sub_boxes", "obj_boxes", "part_boxes", "part_valid"):
        assert np.allclose(tgt2[k], tgt[k])


def test_flip_moves_boxes_with_pixels_and_swaps_hands():
    img, tgt = _sample()
    f_img, f_tgt = hflip(img, tgt)
    assert _mean_in(f_img, f_tgt["sub_boxes"][0], 0) > 250
    assert _mean_in(f_img, f_tgt["obj_boxes"][0], 2) > 250
    # the green dot was the right hand; after the flip it lies in the LEFT hand's box
    lh = f_tgt["part_boxes"][0, PART_NAMES.index("left_hand")]
    assert _mean_in(f_img, lh, 1) > 10
    rh = f_tgt["part_boxes"][0, PART_NAMES.index("right_hand")]
    assert _mean_in(f_img, rh, 1) == 0
    # parts stay inside their (flipped) person
    sb = f_tgt["sub_boxes"][0]
    pb = f_tgt["part_boxes"][0]
    centres = (pb[:, :2] + pb[:, 2:]) / 2
    assert ((centres[:, 0] >= sb[0]) & (centres[:, 0] <= sb[2])).all()


def test_resize_scales_every_box():
    img, tgt = _sample()
    r_img, r_tgt = resize(img, tgt, 45, None)
    assert r_img.size == (60, 45) and r_tgt["size"] == (45, 60)
    for k in ("sub_boxes", "obj_boxes", "part_boxes"):
        assert np.allclose(r_tgt[k], tgt[k] * 0.5)


def test_resize_caps_the_long_side():
    img, tgt = _sample()
    r_img, _ = resize(img, tgt, 90, max_size=100)
    assert max(r_img.size) == 100


def test_crop_shifts_clips_and_drops_consistently():
    img, tgt = _sample()
    # keep x in [40, 120): the person is cut to x 40..50, the object stays whole
    c_img, c_tgt = crop(img, tgt, top=0, left=40, h=H, w=80)
    assert np.allclose(c_tgt["sub_boxes"][0], [0, 10, 10, 80])
    assert np.allclose(c_tgt["obj_boxes"][0], [20, 30, 40, 50])
    assert _mean_in(c_img, c_tgt["obj_boxes"][0], 2) > 250
    # parts left of x = 40 are gone (invalid), the others shifted
    orig = tgt["part_boxes"][0]
    gone = orig[:, 2] <= 40
    assert (c_tgt["part_valid"][0] == ~gone).all()
    kept = ~gone
    assert np.allclose(c_tgt["part_boxes"][0][kept, 2], np.clip(orig[kept, 2] - 40, 0, 80))
    # crop the object away: the pair goes, with all of its per-pair fields
    _, d_tgt = crop(img, tgt, top=0, left=0, h=H, w=55)
    assert len(d_tgt["sub_boxes"]) == len(d_tgt["verbs"]) == len(d_tgt["obj_labels"]) == 0
    assert d_tgt["part_boxes"].shape == (1, 10, 4)


def test_crop_keeps_pairs_without_object():
    img, tgt = _sample()
    tgt["has_obj"] = np.array([False])
    tgt["obj_boxes"] = np.zeros((1, 4), dtype=np.float32)
    _, c_tgt = crop(img, tgt, top=0, left=0, h=H, w=55)
    assert len(c_tgt["sub_boxes"]) == 1 and not c_tgt["obj_boxes"].any()


def test_to_tensor_relative_cxcywh_and_raw_pixels():
    img, tgt = _sample()
    x, t = ToTensor()(img, tgt)
    assert x.shape == (3, H, W) and x.dtype == torch.uint8  # normalised later, per batch on the device
    assert torch.allclose(t["sub_boxes"][0], torch.tensor([30 / W, 45 / H, 40 / W, 70 / H]))
    assert t["part_boxes"].shape == (1, 10, 4) and t["size"].tolist() == [H, W]
    assert torch.equal(x, torch.from_numpy(np.array(img)).permute(2, 0, 1))


def test_normalised_batch_equals_the_plain_formula_per_image_with_zero_padding():
    """ToTensor + Batch.to (normalize_images) give exactly (v / 255 - mean) / std of every pixel
    of an RGB image and of one of another mode (converted), and 0 in the padding: the values
    the networks were trained on when each image was normalised on the CPU before padding."""
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    small = rng.integers(0, 256, (H - 10, W - 20, 3), dtype=np.uint8)
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    per_image = lambda a: torch.from_numpy(a).permute(2, 0, 1).float().div(255.0).sub(mean).div(std)  # noqa: E731
    _, tgt = _sample()
    for img in (Image.fromarray(arr), Image.fromarray(arr).convert("RGBA")):
        x, _ = ToTensor()(img, tgt)
        y, _ = ToTensor()(Image.fromarray(small), tgt)
        assert x.is_contiguous() and x.dtype == torch.uint8
        batch = Batch(*pad_images([x, y]), None, [{}, {}]).to("cpu")
        assert batch.images.dtype == torch.float32
        assert torch.equal(batch.images[0], per_image(arr))
        assert torch.equal(batch.images[1, :, : H - 10, : W - 20], per_image(small))
        assert not batch.images[1, :, H - 10:].any() and not batch.images[1, :, :, W - 20:].any()
        assert torch.equal(batch.to("cpu").images, batch.images)  # a second .to() does not normalise again


def test_training_chain_is_a_function_of_the_seed():
    img, tgt = _sample()
    chain = make_transforms(AugmentConfig(crop=0.5, jitter=0.4, scales=[60, 70], max_size=100,
                                          crop_scales=[80], crop_min=40, crop_max=70), train=True)
    runs = [chain(img, tgt, np.random.default_rng(7)) for _ in range(2)]
    assert torch.equal(runs[0][0], runs[1][0])
    assert torch.equal(runs[0][1]["sub_boxes"], runs[1][1]["sub_boxes"])


def test_random_chain_keeps_parts_inside_person():
    """Under random flips, crops and resizes, a part box that lies inside its person's box
    stays inside it (containment survives mirroring, scaling and clipping)."""
    img, tgt = _sample()
    pb = tgt["part_boxes"]
    centre = (pb[..., :2] + pb[..., 2:]) / 2
    tgt["part_boxes"] = np.concatenate([centre - 2, centre + 2], -1)  # small parts, inside the person
    chain = make_transforms(AugmentConfig(flip=0.5, crop=1.0, scales=[64], max_size=200, crop_scales=[90],
                                          crop_min=60, crop_max=100), train=True)
    seen = 0
    for seed in range(30):
        _, t = chain(img, tgt, np.random.default_rng(seed))
        if len(t["sub_boxes"]) == 0:
            continue
        h, w = t["size"].tolist()
        cx, cy, bw, bh = t["sub_boxes"][0].tolist()
        sub = torch.tensor([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h])
        parts = t["part_boxes"][0][t["part_valid"][0]]
        seen += len(parts)
        assert (parts[:, :2] >= sub[:2] - 1e-3).all() and (parts[:, 2:] <= sub[2:] + 1e-3).all()
    assert seen > 0
