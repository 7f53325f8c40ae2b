"""``data verify``: check a user's dataset folder (files, counts, checksums, image sizes),
print every finding with its fix, and return the exit status (0 OK, 1 problems found)."""

from __future__ import annotations

from pathlib import Path

from pipeline.interop import verify_hico, verify_vcoco
from pipeline.interop.verify_report import Report

VERIFIERS = {"hico-det": verify_hico.verify, "v-coco": verify_vcoco.verify}


def verify(fmt: str, root: Path, sample: int = 200, official: bool = True, decode: bool = False) -> Report:
    return VERIFIERS[fmt](Path(root), sample, official, decode)


def run(fmt: str, root: Path, sample: int = 200, official: bool = True, decode: bool = False) -> int:
    """Command entry point: print the report; the exit status."""
    report = verify(fmt, root, sample, official, decode)
    print(f"verify {fmt}: {root}" + ("" if official else " (not checked against the official release)"))
    print(report.render())
    return report.exit_code
