"""The ``inspect`` command: the questions a researcher asks the scenes table first, as tables
(rich, CSV or JSON), figures and a one-page report (:mod:`pipeline.scene_report.figures`).

Reports (each computed on the scenes rows left by ``--query``, grouped by ``--group-by``):

- ``splits``: images, count and share of crowded / tiny / occluded images, mean persons and
  interactive pairs per image;
- ``distribution``: persons and interactive pairs per image (``measure``; mean, median, 90th
  percentile, max) for sparse vs crowded scenes (column ``scene``);
- ``hoi``: the most frequent HOI categories (HICO-DET HOI ids; V-COCO actions) among the
  annotated pairs of crowded images: pair rows (``annotations``), their share of the group's
  crowded pair rows and the fraction of the category's pair rows that lie in crowded images;
- ``crowd``: interactive pairs per person, persons per interactive pair and the share of
  persons without interaction, per scene (:mod:`pipeline.scene_report.crowd`).

CSV output with several reports writes one CSV block per report, each after a line
``# report: NAME`` and separated by a blank line.
"""

from __future__ import annotations

import sys
import json
from pathlib import Path

import numpy as np
import pandas as pd

from model.common import labels
from pipeline import tables
from model.common.errors import UserError

REPORTS = ("splits", "distribution", "crowd", "hoi")
# what each printed table counts (the hoi table counts crowded images' pairs only)
SUBJECT = {"splits": "images", "distribution": "images per scene", "crowd": "persons and interactive pairs per scene",
           "hoi": "annotated pairs of crowded images only"}
FORMATS = ("table", "csv", "json")
HIST_COLUMNS = ("persons", "interactive_pairs", "min_person_area", "max_person_cover",
                "low_conf_keypoints")


def prepare(scenes: pd.DataFrame, query: str | None) -> pd.DataFrame:
    """``scenes`` with a derived ``scene`` column (sparse | crowded), filtered by the pandas
    ``query`` when given; a query pandas cannot evaluate is a one-line UserError."""
    df = scenes.assign(scene=np.where(scenes["crowded"].to_numpy(bool), "crowded", "sparse"))
    if not query:
        return df
    try:
        result = df.query(query)
    except Exception as exc:  # pandas raises many types (SyntaxError, NameError, ValueError...)
        msg = " ".join(str(exc).split()) or type(exc).__name__
        raise UserError(f"--query {query!r}: {msg}") from None
    if not isinstance(result, pd.DataFrame):
        raise UserError(f"--query {query!r}: not a row filter")
    return result


def check_columns(df: pd.DataFrame, columns: list[str], option: str) -> None:
    """Refuse a column name that the scenes table does not have, listing those it has."""
    unknown = [c for c in columns if c not in df.columns]
    if unknown:
        raise UserError(f"{option}: unknown column(s) {unknown}; columns: {list(df.columns)}")


def _share(count: pd.Series, total: pd.Series) -> pd.Series:
    return (count / total.where(total > 0)).round(4)


def splits_report(df: pd.DataFrame, group_by: list[str]) -> pd.DataFrame:
    """Per group: images; count and share of crowded, tiny and occluded images (except for a
    flag that is itself a group key); mean persons and interactive pairs per image."""
    grouped = df.groupby(group_by, dropna=False, sort=True)
    out = grouped.size().rename("images").to_frame()
    for flag in (f for f in ("crowded", "tiny", "occluded") if f not in group_by):
        out[flag] = grouped[flag].sum().astype(np.int64)
        out[f"{flag}_share"] = _share(out[flag], out["images"])
    for col in ("persons", "interactive_pairs"):
        out[f"{col}_mean"] = grouped[col].mean().round(3)
    return out.reset_index()


def distribution_report(df: pd.DataFrame, group_by: list[str]) -> pd.DataFrame:
    """Per group, scene (sparse | crowded) and measure (persons | interactive_pairs per
    image): images, mean, median, 90th percentile and max."""
    keys = list(dict.fromkeys([*group_by, "scene"]))
    grouped = df.groupby(keys, dropna=False, sort=True)
    parts = []
    for col in ("persons", "interactive_pairs"):  # two measures, each one vectorised groupby
        values = grouped[col]
        parts.append(pd.DataFrame({
            "measure": col, "images": values.size(), "mean": values.mean().round(3),
            "median": values.median(), "p90": values.quantile(0.9), "max": values.max(),
        }))
    out = pd.concat(parts).reset_index()
    # stable sort on the keys only: persons stays before interactive_pairs in each group
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


def category_names(pairs: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Each pair row's category id and name: the HICO-DET HOI id and "verb object" when the
    pairs have HOI ids, else the V-COCO action id and name."""
    if pairs["hoi_id"].notna().any():
        hico = labels.hico()
        names = {h: f"{hico.verb_names[v]} {hico.object_names[hico.hoi_object[h]]}"
                 for h, v in hico.hoi_verb.items()}
        ids = pairs["hoi_id"]
    else:
        names = dict(labels.vcoco().actions)
        ids = pairs["verb_id"]
    ids = ids.astype("Int64")
    return ids, ids.map(names).fillna("?").astype(str)


def hoi_report(
    df: pd.DataFrame, pairs: pd.DataFrame, group_by: list[str], top: int
) -> pd.DataFrame:
    """Per group, the ``top`` most frequent categories among the pair rows of crowded images:
    ``annotations`` (pair rows), ``share`` of the group's crowded pair rows, and
    ``crowded_fraction``, the share of the category's rows (crowded or not) that are crowded."""
    keys = list(group_by)
    pairs = pairs[pairs["image_id"].isin(df["image_id"])]
    ids, names = category_names(pairs)
    rows = pd.DataFrame({"image_id": pairs["image_id"].to_numpy(), "category": ids.to_numpy(),
                         "name": names.to_numpy()})
    scene_cols = list(dict.fromkeys(["image_id", "crowded", *keys]))
    rows = rows.merge(df[scene_cols], on="image_id")
    cat = [*keys, "category", "name"]
    every = rows.groupby(cat, dropna=False).size()
    counts = rows[rows["crowded"].to_numpy(bool)].groupby(cat, dropna=False).size()
    out = counts.rename("annotations").to_frame()
    out["share"] = (counts / counts.groupby(level=keys, dropna=False).transform("sum")).round(4)
    out["crowded_fraction"] = (counts / every.reindex(counts.index)).round(4)
    order = [*keys, "annotations", "category"]
    ascending = [*[True] * len(keys), False, True]
    out = out.reset_index().sort_values(order, ascending=ascending, kind="stable")
    return out.groupby(keys, dropna=False, sort=False).head(top).reset_index(drop=True)


# --------------------------------------------------------------------------- output


def to_csv(reports: dict[str, pd.DataFrame]) -> str:
    """One report: plain CSV. Several: ``# report: NAME`` + CSV blocks, blank-line separated."""
    if len(reports) == 1:
        return next(iter(reports.values())).to_csv(index=False)
    return "\n".join(f"# report: {name}\n{df.to_csv(index=False)}" for name, df in reports.items())


def to_json(reports: dict[str, pd.DataFrame]) -> str:
    """``{report: [row objects]}``; missing values are null."""
    records = {name: json.loads(df.to_json(orient="records")) for name, df in reports.items()}
    return json.dumps(records, indent=2)


def formatted(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` as text: every float column with one number of decimals for all its rows (four
    significant digits of its largest value, model.common.numbers), integers as they are, '–' for
    missing values."""
    from model.common.numbers import column_decimals

    out = df.astype(object).where(df.notna(), "–").map(str)
    for col in df.columns:
        if pd.api.types.is_float_dtype(df[col]):
            d = column_decimals(df[col])
            out[col] = [("–" if pd.isna(v) else f"{v:.{d}f}") for v in df[col]]
    return out


def print_tables(reports: dict[str, pd.DataFrame], title: str) -> None:
    """Each report as a rich table titled with what it counts; floats consistently rounded."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for name, df in reports.items():
        table = Table(title=f"{name}: {SUBJECT.get(name, name)} ({title})")
        for col in df.columns:
            numeric = pd.api.types.is_numeric_dtype(df[col]) and df[col].dtype != bool
            # spaces let rich wrap a long header instead of cutting it
            table.add_column(str(col).replace("_", " "), justify="right" if numeric else "left")
        text = formatted(df)
        for row in text.itertuples(index=False):
            table.add_row(*row)
        console.print(table)


def split_rules(params_path: str | Path | None) -> dict:
    """The scenes params' thresholds drawn on the figures (defaults without a params file)."""
    from pipeline.params import section
    from pipeline.scenes import ScenesConfig

    cfg = section("scenes", ScenesConfig, params_path) if params_path and Path(params_path).exists() else ScenesConfig()
    return cfg.model_dump()


def write_outputs(df: pd.DataFrame, reports: dict[str, pd.DataFrame], out_dir: Path, rules: dict,
                  title: str) -> list[Path]:
    """OUT_DIR: the figures, each report as NAME.csv and the one-page scene report."""
    from pipeline.scene_report.figures import write_figures, write_report_page

    paths = write_figures(df, out_dir, rules)
    for name, frame in reports.items():
        path = out_dir / f"{name}.csv"
        tables.atomic_write(path, lambda tmp, frame=frame: frame.to_csv(tmp, index=False))
        paths.append(path)
    return paths + write_report_page(df, reports, out_dir, rules, title)


# --------------------------------------------------------------------------- command


def build_reports(
    df: pd.DataFrame, pairs: pd.DataFrame | None, names: list[str], group_by: list[str], top: int
) -> dict[str, pd.DataFrame]:
    """The reports named in ``names`` (REPORTS order) for the prepared scenes ``df``."""
    out: dict[str, pd.DataFrame] = {}
    if "splits" in names:
        out["splits"] = splits_report(df, group_by)
    if "distribution" in names:
        out["distribution"] = distribution_report(df, group_by)
    if "crowd" in names and pairs is not None:
        from pipeline.scene_report.crowd import crowd_report

        out["crowd"] = crowd_report(df, pairs, group_by)
    if "hoi" in names and pairs is not None:
        out["hoi"] = hoi_report(df, pairs, group_by, top)
    return out


def run(
    scenes_path: str | Path,
    pairs_path: str | Path,
    group_by: list[str] | None = None,
    query: str | None = None,
    fmt: str = "table",
    hist: str | Path | None = None,
    top: int = 10,
    reports: list[str] | None = None,
    out_dir: str | Path | None = None,
    params_path: str | Path | None = None,
) -> dict[str, pd.DataFrame]:
    """Read the scenes table (and the pairs table for ``hoi`` and ``crowd``), print the chosen
    ``reports`` (default or "all": every one) in ``fmt``; write the figures to ``hist``, and
    figures, CSV tables and the one-page report to ``out``, when given (split thresholds from
    the scenes params at ``params_path``); return the reports."""
    group_by = list(dict.fromkeys(group_by or ["split"]))
    names = list(REPORTS) if not reports or "all" in reports else list(reports)
    unknown = sorted(set(names) - set(REPORTS))
    if unknown or fmt not in FORMATS:
        raise UserError(f"unknown report(s) {unknown} or format {fmt!r}; reports: {list(REPORTS)}, "
                        f"formats: {list(FORMATS)}")
    scenes = tables.read(scenes_path, "scenes")
    check_columns(scenes.assign(scene=""), group_by, "--group-by")
    df = prepare(scenes, query)
    pairs = tables.read(pairs_path, "pairs") if {"hoi", "crowd"} & set(names) else None
    title = f"{len(df)} of {len(scenes)} images" + (f", query: {query}" if query else "")
    out = build_reports(df, pairs, names, group_by, top)
    if fmt == "csv":
        print(to_csv(out), end="")
    elif fmt == "json":
        print(to_json(out))
    else:
        print_tables(out, title)
    written = []
    if hist is not None or out_dir is not None:
        rules = split_rules(params_path)
        if hist is not None:
            from pipeline.scene_report.figures import write_figures

            written += write_figures(df, Path(hist), rules)
        if out_dir is not None:
            written += write_outputs(df, out, Path(out_dir), rules, title)
    for path in written:
        print(f"wrote {path}", file=sys.stderr if fmt != "table" else sys.stdout)
    return out
