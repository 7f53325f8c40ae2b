"""``data import-preds``: other methods' result files → our ``predictions`` (or
``pair_predictions``) table, so that any method can be scored by our evaluators side by side.

Formats:
* ``qpic``: QPIC/CDN/GEN-VLKT-style per-image predictions, as a JSON list, CDN's JSON-wrapped
  Python repr (``{'preds': [...], 'gts': [...]}``) or a pickle (restricted unpickler): entries
  ``{"filename"?, "predictions": [{"bbox": [x1, y1, x2, y2], "category_id": object index}],
  "hoi_prediction": [{"subject_id", "object_id", "category_id", "score"}]}``. Object indices are
  contiguous (position among the 80 COCO ids ascending, person = 0; V-COCO's 80 = no object) or
  COCO ids (``object_ids='coco'``); ``category_id`` of a HOI is a 0-based verb index (QPIC,
  CDN; ``hoi_category='verb'``), a 0-based HOI index (GEN-VLKT; ``'hoi'``) or, for V-COCO, the
  0-based verb-role index. Entries without a file name take the names of an annotation file
  (QPIC keeps ``test_hico.json``'s order).
* ``bpm-binary``: the paper's ``bst_result_binary.pkl`` (``keys``, ``bboxes`` [N, 8],
  ``scores``, ``scores_v0..5``; V-COCO adds ``obj_labels``): → ``pair_predictions``.
* ``vcoco-pickle``: an official V-COCO detection pickle (see ``vcoco_pickle``).
* ``hico-mat``: a folder of ho-rcnn ``detections_XX.mat`` files (see ``export_hico``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from model.common import labels
from pipeline.inputs import safe_pickle
from model.common.errors import UserError
from pipeline.interop import export_hico, vcoco_pickle
from pipeline.interop import predictions as preds
from pipeline.interop.image_keys import KeyMap, pattern_map
from pipeline.interop.pyrepr import loads_repr
from pipeline.inputs.json_reader import read_json
from pipeline.readers.verbs import HicoLabeler

FORMATS = ("qpic", "bpm-binary", "vcoco-pickle", "hico-mat")


def load_entries(path: Path) -> list:
    """The per-image list of a QPIC-style file (JSON, CDN repr, or pickle)."""
    if path.suffix in {".pkl", ".pickle"}:
        data = safe_pickle.load(path)
    else:
        data = read_json(path, "prediction file")
        if isinstance(data, str):  # CDN: a JSON string holding a Python repr
            data = loads_repr(data, str(path))
    if isinstance(data, dict) and "preds" in data:
        data = data["preds"]
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a list of per-image predictions (or a dict with 'preds')")
    return data


def _object_coco(label: np.ndarray, object_ids: str) -> np.ndarray:
    """COCO id per object label; -1 for V-COCO's 'no object' class (index 80)."""
    if object_ids == "coco":
        return label
    coco = np.array([*labels.hico().object_coco_ids, -1], dtype=np.int64)
    if label.size and (label.min() < 0 or label.max() >= len(coco)):
        raise UserError(f"object index {int(label.max())} outside 0..{len(coco) - 1} (try --object-ids coco)")
    return coco[label]


def _check_positional(entries: list, names: list[str] | None, source: str) -> None:
    """Entries named by position need exactly one entry per annotation record: one entry more
    or less would shift every name after it."""
    if names is None:
        return
    unnamed = sum(1 for e in entries if not (isinstance(e, dict) and (e.get("filename") or e.get("file_name"))))
    if unnamed and len(entries) != len(names):
        raise UserError(f"{source}: {len(entries)} entries but the annotation file lists {len(names)} images; "
                        f"{unnamed} entries carry no file name and are named by position, which needs equal counts")


def _flatten(entries: list, names: list[str] | None, source: str) -> pd.DataFrame:
    """One row per hoi_prediction with its subject/object box and object label."""
    _check_positional(entries, names, source)
    parts = []
    for i, e in enumerate(entries):
        try:
            name = e.get("filename") or e.get("file_name") or (names[i] if names and i < len(names) else None)
            if name is None:
                raise KeyError("no 'filename' and no annotation file to name the entry")
            boxes = np.asarray([b["bbox"] for b in e["predictions"]], dtype=np.float64).reshape(-1, 4)
            label = np.asarray([b["category_id"] for b in e["predictions"]], dtype=np.int64)
            h = e["hoi_prediction"]
            sub = np.asarray([x["subject_id"] for x in h], dtype=np.int64)
            obj = np.asarray([x["object_id"] for x in h], dtype=np.int64)
            parts.append(pd.DataFrame({
                "image_id": Path(str(name)).stem, "sub": sub, "obj": obj,
                "cat": np.asarray([x["category_id"] for x in h], dtype=np.int64),
                "score": np.asarray([x["score"] for x in h], dtype=np.float64),
                **{c: boxes[sub, k] for k, c in enumerate(preds.HUMAN)},
                **{c: boxes[obj, k] for k, c in enumerate(preds.OBJECT)}, "label": label[obj],
            }))
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            why = f"{type(exc).__name__}: {exc}"
            raise UserError(f"{source}: entry {i} is not a QPIC-style prediction ({why})") from None
    if not parts:
        raise UserError(f"{source}: no predictions")
    flat = pd.concat(parts, ignore_index=True)
    pair = pd.MultiIndex.from_frame(flat[["image_id", "sub", "obj"]]).factorize()[0]
    flat["query"] = pd.Series(pair).groupby(flat["image_id"]).rank(method="dense").to_numpy(np.int32) - 1
    return flat


def _float32(values: pd.Series, column: str, source: str) -> np.ndarray:
    """``values`` as float32; a finite number beyond float32's range is an error (never inf)."""
    wide = values.to_numpy(np.float64)
    over = np.isfinite(wide) & (np.abs(wide) > np.finfo(np.float32).max)
    if over.any():
        raise UserError(f"{source}: {column} value {wide[over][0]:g} does not fit float32 "
                        f"({int(over.sum())} value(s) out of range)")
    return wide.astype(np.float32)


def qpic_table(entries: list, dataset: str, names: list[str] | None = None, hoi_category: str = "verb",
               object_ids: str = "contiguous", source: str = "predictions") -> pd.DataFrame:
    """``predictions`` rows of a QPIC-style entry list."""
    flat = _flatten(entries, names, source)
    coco = _object_coco(flat["label"].to_numpy(np.int64), object_ids)
    cat = flat["cat"].to_numpy(np.int64)
    cols = {"image_id": flat["image_id"].to_numpy(object), "query": flat["query"].to_numpy(np.int32),
            **{c: _float32(flat[c], c, source) for c in (*preds.HUMAN, *preds.OBJECT, "score")}}
    if dataset == "v-coco":
        return preds.conform(cols | _vcoco_ids(cat, coco, cols))
    return preds.conform(cols | _hico_ids(cat, coco, hoi_category))


def _hico_ids(cat: np.ndarray, coco: np.ndarray, hoi_category: str) -> dict[str, object]:
    lab = labels.hico()
    if hoi_category == "hoi":
        hoi = cat + 1
        if hoi.size and (hoi.min() < 1 or hoi.max() > len(lab.hoi_verb)):
            raise UserError(f"HOI index {int(cat.max())} outside 0..{len(lab.hoi_verb) - 1}")
        verb = np.array([lab.hoi_verb[h] for h in hoi], dtype=np.int64)
        coco = np.array([lab.hoi_object[h] for h in hoi], dtype=np.int64)
    else:
        verb = cat + 1
        hoi = HicoLabeler().expected(verb, coco)
    return {"category_id": coco.astype(np.int32), "verb_id": verb.astype(np.int32),
            "hoi_id": preds.nullable_int(hoi, hoi > 0)}


def _vcoco_ids(cat: np.ndarray, coco: np.ndarray, cols: dict) -> dict[str, object]:
    vc = labels.vcoco()
    if cat.size and (cat.min() < 0 or cat.max() >= len(vc.verb_roles)):
        raise UserError(f"verb-role index {int(cat.max())} outside 0..{len(vc.verb_roles) - 1}")
    action = np.array([vc.action_id(a) for a, _ in vc.verb_roles], dtype=np.int32)
    role = np.array([r for _, r in vc.verb_roles], dtype=object)
    missing = coco < 0
    objects = {c: np.where(missing, np.float32(np.nan), cols[c]).astype(np.float32) for c in preds.OBJECT}
    return objects | {"category_id": preds.nullable_int(coco, ~missing),
                      "verb_id": action[cat], "role": pd.array(role[cat], dtype="str")}


def bpm_binary_table(result: object, keys: KeyMap, dataset: str, source: str) -> pd.DataFrame:
    """``pair_predictions`` rows of the paper's ``bst_result_binary.pkl``; query = position of
    the pair within its image in file order; V-COCO pairs of the no-object class get NaN boxes."""
    try:
        key = np.asarray(result["keys"]).astype(np.int64).ravel()
        bboxes = np.asarray(result["bboxes"], dtype=np.float64).reshape(len(key), 8)
        score = np.asarray(result["scores"], dtype=np.float64).ravel()
        parts = np.stack([np.asarray(result[f"scores_v{k}"], dtype=np.float32).ravel() for k in range(6)], axis=1)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise UserError(f"{source}: not a BPM bst_result_binary file ({type(exc).__name__}: {exc})") from None
    image_id = keys.ids(key.tolist())
    category = preds.nullable_int(np.zeros(len(key)), np.zeros(len(key), dtype=bool))
    if dataset == "v-coco" and "obj_labels" in result:
        coco = _object_coco(np.asarray(result["obj_labels"]).astype(np.int64).ravel(), "contiguous")
        bboxes[coco < 0, 4:] = np.nan
        category = preds.nullable_int(coco, coco >= 0)
    query = pd.Series(np.arange(len(key))).groupby(image_id).cumcount().to_numpy(np.int32)
    cols = {"image_id": image_id, "query": query,
            **{c: bboxes[:, k].astype(np.float32) for k, c in enumerate((*preds.HUMAN, *preds.OBJECT))},
            "category_id": category, "interactiveness": score.astype(np.float32), "part_scores": list(parts)}
    return preds.conform(cols, "pair_predictions")


def key_map(dataset: str, image_ids: list[str] | None, keys: list[int]) -> KeyMap:
    """Integer image keys -> ids: from the given image list, else the test split's file pattern."""
    return KeyMap(image_ids) if image_ids else pattern_map(dataset, keys)


def _integer_keys(data: object) -> list[int]:
    """The image keys of a BPM result dict or a V-COCO detection list ([] when malformed: the
    converter then reports the problem)."""
    if isinstance(data, dict) and "keys" in data:
        return np.asarray(data["keys"]).ravel().tolist()
    if isinstance(data, list):
        return [d["image_id"] for d in data if isinstance(d, dict) and "image_id" in d]
    return []


def run(fmt: str, source: Path, out: Path, dataset: str, image_ids: list[str] | None = None,
        names: list[str] | None = None, hoi_category: str = "verb", object_ids: str = "contiguous",
        shift: str = "none") -> pd.DataFrame:
    """Command entry point: convert ``source`` and write the table to ``out``."""
    name = "predictions"
    if fmt == "qpic":
        table = qpic_table(load_entries(source), dataset, names, hoi_category, object_ids, str(source))
    elif fmt == "bpm-binary":
        result = safe_pickle.load(source)
        keys = key_map(dataset, image_ids, _integer_keys(result))
        table, name = bpm_binary_table(result, keys, dataset, str(source)), "pair_predictions"
    elif fmt == "vcoco-pickle":
        detections = safe_pickle.load(source)
        keys = key_map("v-coco", image_ids, _integer_keys(detections))
        table = vcoco_pickle.from_detections(detections, keys, str(source))
    elif fmt == "hico-mat":
        if not image_ids:
            raise UserError("hico-mat: the test image list is needed (--images or --anno-mat)")
        table = export_hico.read_mats(source, image_ids, shift)
    else:
        raise UserError(f"unknown format '{fmt}' ({', '.join(FORMATS)})")
    preds.write(table, out, name)
    print(f"import-preds: {fmt} {source} -> {out} ({len(table)} rows, table {name}, "
          f"{table['image_id'].nunique()} images)")
    return table
