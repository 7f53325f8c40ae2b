"""``weights import-detr``: the public COCO DETR-R50 checkpoint -> the network's initial weights.

Steps, in this order:

1. verify the file's SHA-256 against ``data/labels/checksums.json`` (the catalog knows the
   digest prefix the file name carries, ``e632da11``) or against ``--sha256``; a mismatch stops
   here. ``--no-verify`` skips the check (other DETR-style checkpoints) and says so;
2. read it with ``torch.load(weights_only=True)`` (model/detr_import.py: no code in the file
   runs);
3. build both stages' networks for the ``model`` and ``dataset`` params (the label space sets the
   class-head size) and map the checkpoint onto each with model/detr_import.py's QPIC/CDN rules;
4. write the union of the mapped tensors, in our names, to ``out`` (atomically), with a JSON
   report of what each stage loaded, skipped (and why) and left at its initialisation.

The output is a ``{"format", "model": state dict, ...}`` file that ``model.pretrained`` accepts:
model/detr_import.py loads our own names name for name. It fits the params it was made for;
convert again after changing ``model`` or ``dataset.format`` (a shape change shows up as
skipped tensors in the training log).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from model import checkpoint as ckpt_io
from model.config import ModelConfig
from model.detr_import import ImportReport, convert, read_checkpoint
from model.label_space import LabelSpace, for_format
from pipeline import params as P
from pipeline import tables
from model.common.errors import UserError
from pipeline.interop import catalog, digests
from pipeline.interop.catalog import Entry
from pipeline.interop.digests import ContentCheck

DETR_R50 = "detr-r50-e632da11.pth"  # catalog name of the COCO DETR-R50 checkpoint
FORMAT = "bpm-detr-init/1"
SHOW_SKIPPED = 10  # skipped checkpoint keys printed per stage (the report lists all)
STAGES: tuple[Literal[1, 2], ...] = (1, 2)
LOW_SHARE = 0.5  # warn when a stage uses less than this share of the checkpoint's values


@dataclass(frozen=True)
class StageImport:
    """One stage's mapping: the report of model/detr_import.py and the network's own tensors
    (names -> shapes and sizes, for the per-module counts)."""

    stage: int
    report: ImportReport
    target: dict[str, Tensor]
    source_values: int  # values (elements) in the checkpoint
    used_values: int  # ... in its tensors that found a place in this network

    def modules(self) -> dict[str, dict[str, int]]:
        """{module: {loaded, loaded_values, initialised, initialised_values, skipped}}; modules
        are our names' first two components (extractor.backbone, detector.decoder, ...), skipped
        checkpoint keys count under the checkpoint's module (backbone.0, input_proj, ...)."""
        out: dict[str, dict[str, int]] = {}
        blank = {"loaded": 0, "loaded_values": 0, "initialised": 0, "initialised_values": 0, "skipped": 0}
        for kind, keys in (("loaded", self.report.loaded), ("initialised", self.report.initialised)):
            for key in keys:
                row = out.setdefault(module_of(key), dict(blank))
                row[kind] += 1
                row[f"{kind}_values"] += self.target[key].numel()
        for key in self.report.skipped:
            out.setdefault(module_of(key), dict(blank))["skipped"] += 1
        return out

    def to_dict(self) -> dict:
        return {"loaded": len(self.report.loaded), "skipped": len(self.report.skipped),
                "initialised": len(self.report.initialised), "checkpoint_values": self.source_values,
                "checkpoint_values_used": self.used_values, "modules": self.modules(),
                "skipped_keys": dict(self.report.skipped), "initialised_keys": list(self.report.initialised)}


def module_of(key: str) -> str:
    """The module a state-dict key belongs to: ``extractor.backbone.body.conv1.weight`` ->
    ``extractor.backbone``; DETR's ``transformer.encoder.layers.0...`` -> ``transformer.encoder``,
    ``query_embed.weight`` -> ``query_embed``."""
    parts = key.split(".")
    nested = parts[0] in {"extractor", "detector", "interactiveness", "verb", "backbone", "transformer"}
    return ".".join(parts[:2]) if nested and len(parts) > 2 else parts[0]


def verify(path: Path, expected: str | None = None, skip: bool = False) -> ContentCheck:
    """Check ``path``'s SHA-256 against ``expected`` (64 hex digits) or the catalog's DETR-R50
    entry; a mismatch is a one-line UserError naming the file and both digests. Returns the
    check (status 'ok' or 'skipped', with the file's digest for the report)."""
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found (python cli.py data fetch {DETR_R50})")
    if skip:
        return ContentCheck("skipped", "SHA-256 not checked (--no-verify)", digests.digest(path))
    entry, source = expected_entry(expected)
    check = digests.check_file(path, entry)
    if check.status != "ok":
        raise UserError(f"{path}: {check.detail} ({source}); give the right file, or --no-verify for another "
                        "DETR-style checkpoint")
    return ContentCheck("ok", f"{check.detail} ({source})", check.digest)


def expected_entry(expected: str | None) -> tuple[Entry, str]:
    """(the catalog entry to check against, where its digest comes from); ``expected`` (a full
    SHA-256) replaces what the catalog knows about DETR-R50's content."""
    entry = catalog.find(DETR_R50)
    if expected is None:
        return entry, f"{DETR_R50} in {catalog.CATALOG_PATH.name}"
    if not re.fullmatch(r"[0-9a-fA-F]{64}", expected):
        raise UserError(f"--sha256 {expected}: expected 64 hexadecimal digits")
    return replace(entry, sha256=expected.lower(), sha256_prefix=None, git_blob_sha1=None, bytes=None), "--sha256"


def convert_stages(state: dict[str, Tensor], mcfg: ModelConfig, space: LabelSpace,
                   seed: int) -> tuple[dict[str, Tensor], list[StageImport]]:
    """Map ``state`` onto both stages' networks -> (union of the mapped tensors, per stage).

    The networks are built with the params' seed (rows the checkpoint cannot give, such as
    V-COCO's extra object class, keep that init); for the modules both stages share, stage 1's
    tensors are kept (they are the same checkpoint tensors)."""
    from model.build import build

    cfg = mcfg.model_copy(update={"pretrained": None, "backbone_weights": None})
    merged: dict[str, Tensor] = {}
    stages = []
    total = sum(v.numel() for v in state.values())
    for stage in STAGES:
        torch.manual_seed(seed)
        net, _, _ = build(cfg, stage, space)
        mapped, report = convert(state, net)
        merged = mapped | merged
        used = sum(v.numel() for k, v in state.items() if k not in report.skipped)
        stages.append(StageImport(stage, report, net.state_dict(), total, used))
    return merged, stages


def default_output(dataset_format: str) -> Path:
    """Where the converted weights go by default: one file per dataset format (class heads and
    query counts differ)."""
    return Path(f"models/pretrained/detr-r50-bpm-{dataset_format}.pt")


def run(source: Path, out: Path | None, report_path: Path, params_path: Path = P.DEFAULT_PARAMS,
        expected_sha256: str | None = None, skip_verify: bool = False) -> dict:
    """Verify, read, map and write (see the module docstring); ``out`` None =
    :func:`default_output`. Returns the JSON report."""
    check = verify(source, expected_sha256, skip_verify)
    print(f"import-detr: {source}: {check.detail}")
    state = read_checkpoint(source)
    mcfg = P.section("model", ModelConfig, params_path)
    ds = P.section("dataset", P.DatasetConfig, params_path)
    out = out if out is not None else default_output(ds.format)
    merged, stages = convert_stages(state, mcfg, for_format(ds.format), P.seed(params_path))
    if not merged:
        raise UserError(f"{source}: no tensor fits the network of {params_path} (model.backbone {mcfg.backbone}, "
                        f"hidden_dim {mcfg.hidden_dim}); DETR-R50 needs the paper preset (README 'Model and training')")
    summary = _summary(source, out, check, mcfg, ds.format, stages, len(merged))
    ckpt_io.save(out, {"format": FORMAT, "model": merged, "source": summary["source"],
                       "model_config": summary["model_config"], "dataset_format": ds.format,
                       "code_version": ckpt_io.code_version()})
    tables.write_json(summary, report_path)
    print_summary(stages, source)
    print(f"import-detr: wrote {out} ({len(merged)} tensors; model.pretrained: {out}) and {report_path}")
    return summary


def print_summary(stages: list[StageImport], source: Path) -> None:
    """Each stage's per-module table; a warning when most of the checkpoint found no place."""
    for s in stages:
        print(stage_lines(s))
    if max(s.used_values / max(s.source_values, 1) for s in stages) < LOW_SHARE:
        print(f"import-detr: warning: most of {source} does not fit this network (DETR-R50 needs the paper "
              "preset: backbone resnet50, hidden_dim 256, dim_feedforward 2048, query_type plain)")


def _summary(source: Path, out: Path, check: ContentCheck, mcfg: ModelConfig, fmt: str,
             stages: list[StageImport], n_written: int) -> dict:
    return {"source": {"file": str(source), "sha256": check.digest.sha256, "verification": check.status,
                       "detail": check.detail},
            "output": str(out), "tensors_written": n_written, "dataset_format": fmt,
            "model_config": mcfg.model_dump(mode="json"),
            "stages": {str(s.stage): s.to_dict() for s in stages}}


def stage_lines(s: StageImport) -> str:
    """The per-module table of one stage, for people."""
    name = "boxes + interactiveness" if s.stage == 1 else "boxes + verbs"
    share = s.used_values / max(s.source_values, 1)
    lines = [f"stage {s.stage} ({name}): {s.report.summary()}; {share:.1%} of the checkpoint's values used",
             f"  {'module':<34}{'loaded':>8}{'values':>12}{'initialised':>13}{'values':>12}{'skipped':>9}"]
    for mod, row in sorted(s.modules().items()):
        lines.append(f"  {mod:<34}{row['loaded']:>8}{row['loaded_values']:>12,}{row['initialised']:>13}"
                     f"{row['initialised_values']:>12,}{row['skipped']:>9}")
    skipped = list(s.report.skipped.items())
    for key, reason in skipped[:SHOW_SKIPPED]:
        lines.append(f"  skipped {key}: {reason}")
    if len(skipped) > SHOW_SKIPPED:
        lines.append(f"  ... and {len(skipped) - SHOW_SKIPPED} more skipped keys (listed in the report)")
    return "\n".join(lines)
