"""Read CDN-style prediction dumps without evaluating them.

CDN's ``HICOEvaluator`` writes ``json.dumps(str({'preds': ..., 'gts': ...}))``: a JSON string
holding a Python repr, where numbers may print as ``np.float32(0.5)`` (numpy >= 2) and arrays
as ``array([...], dtype=float32)``. Other tools ``eval()`` it; here the text is rewritten into
JSON with a few patterns (numpy scalar wrappers, arrays, quotes, nan/inf/None/True/False) and
parsed with ``json``: nothing in the file is ever executed.
"""

from __future__ import annotations

import json
import re

from model.common.errors import UserError

_SCALAR = re.compile(r"\b(?:np|numpy)\.(?:float|int|uint|bool_)\w*\(([^()]*)\)")
_ARRAY = re.compile(r"\barray\((\[[^()]*?\])(?:,\s*dtype=[\w.]+)?\)")
_BARE_POINT = re.compile(r"(\d)\.(?=[\s,\]\)}eE]|$)")  # numpy prints 1. and 1.e-05
_WORDS = {"None": "null", "True": "true", "False": "false", "nan": "NaN", "inf": "Infinity"}


def repr_to_json(text: str) -> str:
    """Rewrite a Python repr of plain data (dicts, lists, strings without quotes inside,
    numbers, numpy scalars/arrays) as JSON text."""
    text = _SCALAR.sub(r"\1", text)
    text = _ARRAY.sub(r"\1", text)
    text = _BARE_POINT.sub(r"\1.0", text)
    text = text.replace("'", '"')
    return re.sub(r"\b(None|True|False|nan|inf)\b", lambda m: _WORDS[m.group(1)], text)


def loads_repr(text: str, source: str) -> object:
    """Parse a Python-repr dump; a UserError when the text is anything else."""
    try:
        return json.loads(repr_to_json(text))
    except ValueError as exc:
        raise UserError(f"{source}: not a recognised prediction dump (Python repr of plain data): {exc}") from None
