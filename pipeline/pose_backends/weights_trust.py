"""Which ultralytics weight files may be loaded: ultralytics unpickles a ``.pt`` file without
restriction, so a file can run any code the moment it is loaded.

Admitted without asking:

- a model ``.yaml`` (an architecture: random weights, no pickle);
- a file whose SHA-256 is one of the official digests in ``data/labels/pose_weights.json``
  (checked after ultralytics downloads an official name, and before anything unpickles it).

Anything else (a local ``.pt`` of unknown content, an official name whose digest is not
published, a download whose digest differs) is refused with a one-line error saying why,
unless the user opts in: ``pose.ultralytics.trust_weights: true`` or ``predict --trust-weights``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from model.common.errors import UserError, quote_name
from pipeline.inputs.json_reader import read_json
from model.common.labels import LABELS_DIR

TABLE = LABELS_DIR / "pose_weights.json"
OPT_IN = "set pose.ultralytics.trust_weights: true (or predict --trust-weights) only if you trust its origin"


@dataclass(frozen=True)
class Known:
    """An official weight file: its name and SHA-256 hex (None: no published digest)."""

    name: str
    sha256: str | None


def known_weights() -> dict[str, Known]:
    """{file name: Known} from the digest table (``TABLE``)."""
    return _read_table(TABLE)


@cache
def _read_table(path: Path) -> dict[str, Known]:
    raw = read_json(path, "pose weight digest table")
    try:
        return {name: Known(name, entry["sha256"]) for name, entry in raw["weights"].items()}  # type: ignore[index]
    except (KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{path}: malformed pose weight digest table ({exc})") from None


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_architecture(weights: str) -> bool:
    """A model description (``.yaml``): built with random weights, nothing unpickled."""
    return Path(weights).suffix.lower() in {".yaml", ".yml"}


def official_name(weights: str) -> Known | None:
    """The table entry when ``weights`` is a bare official name (no folder), else None."""
    path = Path(weights)
    return known_weights().get(path.name) if path.parent == Path(".") else None


def check_before_download(weights: str, trust: bool) -> None:
    """Refuse, before any download, an official name that has no published digest."""
    known = official_name(weights)
    if not trust and known is not None and known.sha256 is None:
        raise UserError(f"pose.ultralytics.weights={quote_name(weights)}: refused: no published SHA-256 "
                        f"of this official file is recorded in {TABLE.name}, so it cannot be checked before "
                        f"ultralytics unpickles it (which can run code); {OPT_IN}")


def vet(path: Path, weights: str, trust: bool) -> None:
    """Admit the local file ``path`` (what ``weights`` resolved to) or raise a one-line error."""
    if trust or is_architecture(weights):
        return
    if not path.is_file():
        raise UserError(f"{path}: pose weights not found or not a file")
    digest = sha256(path)
    known = official_name(weights)
    if known is not None and known.sha256 is not None and digest != known.sha256:
        raise UserError(f"{path}: refused: SHA-256 {digest[:16]}... differs from the published digest of "
                        f"{known.name} ({known.sha256[:16]}...): a corrupt or altered download; delete it "
                        f"to download again, or {OPT_IN}")
    if any(k.sha256 == digest for k in known_weights().values()):
        return
    raise UserError(f"{path}: refused: not a known official pose weight file (SHA-256 {digest[:16]}...), "
                    f"and ultralytics unpickles weights without restriction (a .pt file can run code); {OPT_IN}")
