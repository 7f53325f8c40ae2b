"""Forward contract of both networks: shapes for every ablation, no NaN in degenerate scenes,
gradients reach every trainable parameter, padding invariance, and each ablation changes what
reaches attention (decision 6). Tiny configurations: demo backbone, d 32, 8 queries, <= 128 px."""

from __future__ import annotations

import pytest
import torch

from model.bpm import InteractivenessNet, VerbNet
from model.build import build, from_spec
from model.criterion import SetCriterion
from model.label_space import LabelSpace, for_format
from model.postprocess import PostProcess, PostprocessConfig
from model.engine import LoopConfig, make_optimizer
from model.train_config import LossConfig, TrainConfig
from model.config import ModelConfig, preset
from model.masks import rasterize_part_masks
from pipeline.tables import SCHEMAS

ABLATIONS = ["full", "no_parts", "no_saliency", "intuitive", "no_progressive", "no_one_time"]
N_OBJ, N_VERB, Q = 5, 7, 8
TOY = LabelSpace("hico-det", tuple(range(1, N_OBJ + 1)), tuple(f"verb{i}" for i in range(N_VERB)), None)


def tiny(**kw) -> ModelConfig:
    base = dict(hidden_dim=32, nheads=4, dim_feedforward=64, num_queries=Q, enc_layers=1,
                dec_layers_box=2, dec_layers_verb=2, dropout=0.0)
    return preset("demo", **{**base, **kw})


def batch(sizes: list[tuple[int, int]], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of the given (H, W), zero-padded top-left into one batch, and the pixel mask."""
    g = torch.Generator().manual_seed(seed)
    hp, wp = max(h for h, _ in sizes), max(w for _, w in sizes)
    images = torch.zeros(len(sizes), 3, hp, wp)
    mask = torch.ones(len(sizes), hp, wp, dtype=torch.bool)
    for i, (h, w) in enumerate(sizes):
        images[i, :, :h, :w] = torch.randn(3, h, w, generator=g)
        mask[i, :h, :w] = False
    return images, mask


def part_masks(images: torch.Tensor, image_index: list[int]) -> torch.Tensor:
    """Two persons per listed image with distinct part boxes, on the batch's grid."""
    hp, wp = images.shape[-2:]
    grid = (-(-hp // 32), -(-wp // 32))
    one = torch.tensor([[8, 40, 30, 60], [10, 20, 30, 40], [10, 20, 30, 40], [8, 40, 30, 60], [10, 15, 30, 25],
                        [12, 0, 28, 12], [0, 20, 10, 30], [2, 10, 12, 20], [28, 10, 38, 20], [30, 20, 40, 30.0]])
    boxes = torch.stack([one, one + torch.tensor([40.0, 0, 40, 0])] * len(image_index))
    index = torch.tensor([i for i in image_index for _ in range(2)])
    return rasterize_part_masks(boxes, index, images.shape[0], grid)


def trained_biases(net: torch.nn.Module) -> torch.nn.Module:
    """Attention biases start at zero, which hides the gradient of the first decoder layer's
    out_proj/norm1 until the first optimiser step; give them the values a step would."""
    for m in net.modules():
        if isinstance(m, torch.nn.MultiheadAttention):
            m.in_proj_bias.data.uniform_(-0.1, 0.1)
            m.out_proj.bias.data.uniform_(-0.1, 0.1)
    return net


def dead_parameters(net: torch.nn.Module) -> list[str]:
    return [n for n, p in net.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]


def float_outputs(out: dict) -> list[torch.Tensor]:
    tensors = [v for k, v in out.items() if torch.is_tensor(v) and v.is_floating_point()]
    return tensors + [v for aux in out["aux_outputs"] for v in aux.values()]


@pytest.mark.parametrize("ablation", ABLATIONS)
@pytest.mark.parametrize("query_type", ["plain", "anchor"])
def test_stage1_shapes(ablation: str, query_type: str) -> None:
    torch.manual_seed(0)
    net = InteractivenessNet(tiny(ablation=ablation, query_type=query_type), N_OBJ).eval()
    images, mask = batch([(64, 96), (96, 64)])
    out = net(images, mask, part_masks(images, [0, 1]), return_attention=True)
    assert out["pred_obj_logits"].shape == (2, Q, N_OBJ + 1)
    assert out["pred_sub_boxes"].shape == out["pred_obj_boxes"].shape == (2, Q, 4)
    assert out["pred_int_logits"].shape == (2, Q) and out["pred_part_scores"].shape == (2, Q, 6)
    assert ((out["pred_part_scores"] >= 0) & (out["pred_part_scores"] <= 1)).all()
    assert len(out["aux_outputs"]) == 1
    assert set(out["aux_outputs"][0]) == {"pred_obj_logits", "pred_sub_boxes", "pred_obj_boxes"}
    passes = 7 if ablation in ("intuitive", "no_saliency", "no_one_time") else 1
    assert out["attention"]["weights"].shape == (3, 2, passes, Q, 3, 3)
    assert ("pred_part_int_logits" in out) == (passes == 7)
    for t in float_outputs(out):
        assert torch.isfinite(t).all()


def test_stage2_shapes_and_spec_roundtrip() -> None:
    net = VerbNet(tiny(), N_OBJ, N_VERB).eval()
    images, mask = batch([(64, 64)])
    out = net(images, mask, None, return_attention=True)
    assert out["pred_verb_logits"].shape == (1, Q, N_VERB) and "pred_int_logits" not in out
    assert out["attention"]["weights"].shape == (2, 1, 1, Q, 2, 2)
    clone = from_spec(net.spec())
    clone.load_state_dict(net.state_dict())
    assert torch.allclose(clone.eval()(images, mask)["pred_verb_logits"], out["pred_verb_logits"])


def degenerate(net: torch.nn.Module) -> None:
    """Every predicted box at (1, 1) with zero size: outside a multiple-of-32 image, no cell."""
    for head in (net.detector.sub_bbox_embed, net.detector.obj_bbox_embed):
        torch.nn.init.zeros_(head.layers[-1].weight)
        head.layers[-1].bias.data = torch.tensor([100.0, 100.0, -100.0, -100.0])


@pytest.mark.parametrize("ablation", ["full", "intuitive", "no_one_time", "no_progressive"])
@pytest.mark.parametrize("with_parts", [False, True])
def test_no_nan_without_persons_or_with_degenerate_boxes(ablation: str, with_parts: bool) -> None:
    torch.manual_seed(0)
    net = InteractivenessNet(tiny(ablation=ablation, query_type="plain"), N_OBJ)
    degenerate(net)
    images, mask = batch([(64, 64), (64, 32)])
    parts = part_masks(images, [1]) if with_parts else torch.zeros(2, 6, 2, 2, dtype=torch.bool)
    out = net(images, mask, parts, return_attention=True)
    sum(t.sum() for t in float_outputs(out)).backward()
    assert all(torch.isfinite(t).all() for t in float_outputs(out))
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
    visible = out["attention"]["visible"]  # [L, B, S, Q, h, w]
    assert visible.flatten(-2).any(-1).all()  # every row sees at least one token
    assert not visible[:, 1, ..., :, 1].any()  # image 1's padded column stays hidden
    assert net(images, mask, None)["pred_int_logits"].isfinite().all()


@pytest.mark.parametrize("ablation", ABLATIONS)
def test_every_stage1_parameter_gets_a_gradient(ablation: str) -> None:
    torch.manual_seed(0)
    # fraction 1.0 keeps every part, so every per-part FFN of eq. 7 is on the path
    net = trained_biases(InteractivenessNet(tiny(ablation=ablation, part_filter_fraction=1.0), N_OBJ)).train()
    images, mask = batch([(64, 96), (96, 64)])
    out = net(images, mask, part_masks(images, [0, 1]))
    sum(t.sum() for t in float_outputs(out)).backward()
    assert not dead_parameters(net)


@pytest.mark.parametrize("query_type", ["plain", "anchor"])
def test_every_stage2_parameter_gets_a_gradient(query_type: str) -> None:
    torch.manual_seed(0)
    net = trained_biases(VerbNet(tiny(query_type=query_type), N_OBJ, N_VERB)).train()
    images, mask = batch([(64, 96), (96, 64)])
    out = net(images, mask)
    sum(t.sum() for t in float_outputs(out)).backward()
    assert not dead_parameters(net)
    groups = make_optimizer(net, LoopConfig(TrainConfig(), 1, 1, 1, 1, 1)).param_groups
    assert sum(len(g["params"]) for g in groups) == sum(1 for p in net.parameters() if p.requires_grad)


@pytest.mark.parametrize("ablation", ["full", "intuitive", "no_one_time"])
@pytest.mark.parametrize("query_type", ["plain", "anchor"])
def test_padding_invariance(ablation: str, query_type: str) -> None:
    torch.manual_seed(0)
    net = InteractivenessNet(tiny(ablation=ablation, query_type=query_type), N_OBJ)
    for m in net.modules():  # non-trivial BN statistics, so padding would leak without the fix
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.bias.data.uniform_(-0.5, 0.5)
    net.eval()
    alone, mask_a = batch([(70, 100)], seed=1)
    both, mask_b = batch([(70, 100), (128, 160)], seed=1)
    both[1] = torch.randn_like(both[1]) * ~mask_b[1]  # a different second image
    with torch.no_grad():
        a = net(alone, mask_a, part_masks(alone, [0]))
        b = net(both, mask_b, part_masks(both, [0, 1]))
    for key in ("pred_obj_logits", "pred_sub_boxes", "pred_obj_boxes", "pred_int_logits", "pred_part_scores"):
        assert torch.allclose(a[key][0], b[key][0], atol=1e-4), key


def test_ablations_change_what_reaches_attention() -> None:
    torch.manual_seed(0)
    images, mask = batch([(96, 128)])
    parts = part_masks(images, [0])
    seen = {}
    for ablation in ABLATIONS:
        net = InteractivenessNet(tiny(ablation=ablation), N_OBJ).eval()
        seen[ablation] = net(images, mask, parts, return_attention=True)["attention"]["visible"]  # [3, 1, S, Q, h, w]
    grid = parts[0]  # [6, h, w]
    assert seen["no_saliency"].all() and seen["no_parts"].all()
    assert seen["no_saliency"].shape[2] == 7 and seen["no_parts"].shape[2] == 1
    for k in range(6):  # intuitive: pass k sees exactly part k (or everything when k is empty)
        expected = grid[k] if grid[k].any() else torch.ones_like(grid[k])
        assert (seen["intuitive"][:, 0, 1 + k] == expected).all()
    assert seen["intuitive"][:, 0, 0].all()  # E^0 is unmasked
    full, flat = seen["full"], seen["no_progressive"]
    assert torch.equal(flat[0], flat[1]) and torch.equal(flat[1], flat[2])
    assert not torch.equal(full[0], full[2])  # progressive: layer 1 differs from layer 3
    assert not torch.equal(seen["no_one_time"][0], seen["no_one_time"][2])


def test_build_returns_network_and_criterion() -> None:
    net, criterion, post = build(tiny(), 1, TOY)
    assert isinstance(net, InteractivenessNet) and net.import_report is None
    assert isinstance(criterion, SetCriterion) and criterion.stage == 1
    assert criterion.w == LossConfig() and criterion.matcher.w == LossConfig()
    assert isinstance(post, PostProcess) and post.labels == TOY and post.cfg == PostprocessConfig()
    focal = build(tiny(), 1, TOY, LossConfig(focal_gamma=1.5, cost_bbox=5.0))[1]
    assert focal.w.focal_gamma == 1.5 and focal.matcher.w.cost_bbox == 5.0
    net2, _, _ = build(tiny(), 2, TOY)
    assert isinstance(net2, VerbNet)
    assert set(net2.state_dict()) >= {k for k in net.state_dict() if k.startswith(("extractor.", "detector."))}


def test_build_post_processor_turns_outputs_into_table_rows() -> None:
    """build()'s post-processor is the one the stages use: stage-1 outputs -> one pair row per
    query, stage-2 outputs -> triplets after NIS / pair NMS / top-K in the predictions schema."""
    torch.manual_seed(0)
    space = for_format("hico-det")
    net1, _, post = build(tiny(), 1, space, post=PostprocessConfig(nis="product", top_k=5))
    net2 = build(tiny(), 2, space)[0]
    images, mask = batch([(64, 96), (96, 64)])
    sizes = torch.tensor([[64, 96], [96, 64]])
    with torch.no_grad():
        o1, o2 = net1.eval()(images, mask, part_masks(images, [0, 1])), net2.eval()(images, mask)
    pairs = post.pairs(o1, sizes, ["a", "b"])
    assert len(pairs) == 2 * Q and list(pairs["image_id"].unique()) == ["a", "b"]
    rows = post.finalize([post.candidates(o2, o1, sizes, ["a", "b"])])
    assert list(rows.columns) == SCHEMAS["predictions"].names
    assert rows.groupby("image_id").size().max() <= 5


def test_params_yaml_model_section_validates() -> None:
    from pathlib import Path

    from pipeline.params import section

    root = Path(__file__).resolve().parents[2]
    assert isinstance(section("model", ModelConfig, root / "params.yaml"), ModelConfig)
    with pytest.raises(ValueError):
        ModelConfig(hidden_dim=100, nheads=8)
