"""``data fetch``: download catalog files that have a stable public source, check them, and
unpack the archives that need it; explain where a file has no such source.

Already present files are checked, not downloaded again (``force`` replaces a mismatching one).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from model.common.errors import UserError
from pipeline.interop import catalog, digests
from pipeline.interop.catalog import Entry
from pipeline.interop.download import download


# where each dataset's files go when no --root is given (the paths README uses)
DEFAULT_ROOTS = {"hico-det": Path("data/raw/hico_20160224_det"), "v-coco": Path("data/raw/v-coco")}


@dataclass(frozen=True)
class Outcome:
    """What happened to one entry: status downloaded | present | manual | failed."""

    name: str
    status: str
    message: str


def select(names: list[str], dataset: str | None) -> tuple[Entry, ...]:
    """Entries named in ``names`` (all of ``dataset`` when no names are given)."""
    if names:
        return tuple(catalog.find(n) for n in names)
    if dataset is None:
        raise UserError("name the files to fetch, or pass --dataset (see `data fetch --list`)")
    chosen = catalog.for_dataset(dataset)
    if not chosen:
        raise UserError(f"no known files for dataset '{dataset}' (hico-det | v-coco | models)")
    return chosen


def _acceptable(entry: Entry):
    def check(path: Path) -> str | None:
        result = digests.check_file(path, entry)
        return result.detail if result.status == "mismatch" else None
    return check


def fetch_one(entry: Entry, root: Path | None, force: bool = False, extract: bool = True) -> Outcome:
    """Download (or check) one entry, then unpack it if the catalog says so; ``root`` None =
    the dataset's default folder."""
    root = root if root is not None else DEFAULT_ROOTS.get(entry.dataset)
    if entry.url is None:
        return Outcome(entry.name, "manual", f"no stable public source. {entry.source}")
    if not entry.url.startswith(("https://", "http://")):
        return Outcome(entry.name, "failed", f"refusing non-HTTP URL {entry.url}")
    dest = entry.destination(root)
    if dest.exists():
        check = digests.check_file(dest, entry)
        if check.status != "mismatch":
            unpacked = _unpack(entry, dest, root) if extract else ""
            return Outcome(entry.name, "present", f"{dest}: already there ({check.detail}){unpacked}")
        if not force:
            return Outcome(entry.name, "failed", f"{dest}: present but {check.detail}; delete it or pass --force")
        dest.unlink()
    try:
        download(entry.url, dest, verify=_acceptable(entry), label=entry.name)
    except UserError as exc:
        return Outcome(entry.name, "failed", str(exc))
    check = digests.check_file(dest, entry)
    unpacked = _unpack(entry, dest, root) if extract else ""
    return Outcome(entry.name, "downloaded", f"{dest} ({check.detail}){unpacked}")


def _unpack(entry: Entry, archive: Path, root: Path | None) -> str:
    """Extract the entry's members (once: a marker file records it); '' when nothing to do."""
    if not entry.extract:
        return ""
    base = catalog.PROJECT_ROOT if entry.base == "project" else Path(root)  # type: ignore[arg-type]
    target = base / (entry.extract_to or ".")
    marker = target / f".{archive.name}.extracted"
    if marker.exists():
        return f"; already unpacked into {target}"
    with zipfile.ZipFile(archive) as zf:
        members = zf.namelist() if "*" in entry.extract else list(entry.extract)
        for name in members:
            _check_inside(target, name, archive)
        zf.extractall(target, members)
    marker.write_text("\n".join(members) + "\n")
    return f"; unpacked {len(members)} file(s) into {target}"


def _check_inside(target: Path, member: str, archive: Path) -> None:
    # a member like '../x' or '/etc/x' would write outside the target folder
    resolved = (target / member).resolve()
    if not resolved.is_relative_to(target.resolve()):
        raise UserError(f"{archive}: member '{member}' would be written outside {target}; not unpacked")


def listing() -> list[tuple[str, str, str, str]]:
    """(name, dataset, destination, source) of every catalog entry, for ``--list``."""
    rows = []
    for e in catalog.entries():
        where = e.url or "no stable public source"
        rows.append((e.name, e.dataset, f"{'<project>' if e.base == 'project' else '<root>'}/{e.path}", where))
    return rows


def run(names: list[str], dataset: str | None, root: Path | None, force: bool = False,
        extract: bool = True) -> list[Outcome]:
    """Command entry point: fetch the selected entries and print one line each; raises a
    UserError naming the failures after trying every entry."""
    outcomes = []
    for entry in select(names, dataset):
        outcome = fetch_one(entry, root, force, extract)
        outcomes.append(outcome)
        print(f"{outcome.status:>10}  {outcome.name}: {outcome.message}")
    manual = [o.name for o in outcomes if o.status == "manual"]
    if manual:
        print(f"get {', '.join(manual)} by hand as described, then check the folder with "
              "`python cli.py data verify hico-det|v-coco ROOT`")
    failed = [o.name for o in outcomes if o.status == "failed"]
    if failed:
        raise UserError(f"fetch failed for {', '.join(failed)} (see the lines above)")
    return outcomes
