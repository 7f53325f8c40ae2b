"""Payloads for the hostile-input tests: objects whose unpickling would create a marker file.

Every test that feeds one asserts the marker never appears (nothing in the file was run)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path


class MakesMarker:
    """Unpickling this calls ``os.system("touch MARKER")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def hostile_pickle(marker: Path, protocol: int = 2) -> bytes:
    """A pickle that would create ``marker`` when loaded by plain ``pickle.load``."""
    return pickle.dumps({1: MakesMarker(marker)}, protocol=protocol)


def hostile_torch_file(path: Path, marker: Path) -> Path:
    """A torch.save zip file whose pickle would create ``marker`` (torch.load without
    weights_only runs it)."""
    import torch

    torch.save({"format": "bpm-bundle/1", "evil": MakesMarker(marker)}, path)
    return path
