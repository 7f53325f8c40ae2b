"""What a ``predict`` run keeps and where it writes: the score threshold and verb / object
filters (applied before drawing and writing) and the fresh, numbered run folder."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from model.postprocess import OutputSpace
from model.common.errors import UserError
from pipeline.predict.render import names

if TYPE_CHECKING:
    from pipeline.predict import PredictOptions


def _label(name: str) -> str:
    """A verb or object name as compared: lower case, '_' and '-' as spaces."""
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


def known_names(fmt: str, space: OutputSpace) -> tuple[set[str], set[str]]:
    """The verb names (V-COCO: action names, role-less) and object names of a label space."""
    from model.common import labels

    verbs = labels.hico().verb_names.values() if fmt == "hico-det" else labels.vcoco().actions.values()
    objects = [labels.coco_category_name(int(c)) for c in space.object_ids if int(c) > 0]
    return {_label(v) for v in verbs}, {_label(o) for o in objects}


def check_filters(options: PredictOptions, fmt: str, space: OutputSpace) -> None:
    """Refuse a --verb / --object name the bundle's label space does not know (one line)."""
    verbs, objects = known_names(fmt, space)
    for option, given, known in (("--verb", options.verbs, verbs), ("--object", options.objects, objects)):
        unknown = [g for g in given if _label(g) not in known]
        if unknown:
            raise UserError(f"{option} {', '.join(unknown)}: not a {option[2:]} of this {fmt} bundle; "
                            f"known: {', '.join(sorted(known)[:12])}, ... ({len(known)})")


def select_triplets(frame: pd.DataFrame, fmt: str, options: PredictOptions) -> pd.DataFrame:
    """Predictions rows with score >= ``options.conf`` and (when given) one of the verbs /
    objects named in ``options``; applied before drawing and writing."""
    if frame.empty or not (options.conf > 0 or options.verbs or options.objects):
        return frame
    keep = frame["score"].to_numpy() >= options.conf
    verbs, objects = names(frame, fmt)
    if options.verbs:
        wanted = {_label(v) for v in options.verbs}
        keep &= np.array([_label(v.split(" (")[0]) in wanted for v in verbs], bool)
    if options.objects:
        wanted = {_label(o) for o in options.objects}
        keep &= np.array([_label(o) in wanted for o in objects], bool)
    return frame[keep].reset_index(drop=True)


OWNED = ("predictions.parquet", "predictions.json", "predict.log", "images", "attention")


def run_folder(out: Path, exist_ok: bool) -> Path:
    """The folder this run writes to: ``out`` when it is absent or empty; with ``exist_ok``
    ``out`` after removing what an earlier predict run wrote there (OWNED; nothing else);
    otherwise the first free ``out2``, ``out3``, ... (as ultralytics' runs/predict2)."""
    def free(p: Path) -> bool:
        return not p.exists() or (p.is_dir() and not any(p.iterdir()))

    if exist_ok or free(out):
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {out}: is a file, not a folder")
        for name in OWNED:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        return out
    n = 2
    while not free(out.with_name(f"{out.name}{n}")):
        n += 1
    return out.with_name(f"{out.name}{n}")
