"""Publication figures of the ``inspect`` command: one figure per scene measure (train and
test side by side, sparse and crowded images stacked, the split rule's threshold drawn), and a
one-page scene report (the tables and four histograms on one A4 page) for a paper's
supplementary material. Each is written as vector PDF and SVG plus a 200 dpi PNG.

Threshold lines come from the ``scenes`` params (:class:`pipeline.scenes.ScenesConfig`); an
empty group (say, no crowded test image after ``--query``) gets no bar and no legend entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import tables

FORMATS = ("pdf", "svg", "png")
DPI = 200
SCENE_COLOURS = {"sparse": "#4C72B0", "crowded": "#DD8452"}


@dataclass(frozen=True)
class Measure:
    """A scenes column as drawn: axis label with its unit, bins, and the split rule on it."""

    column: str
    label: str
    kind: str  # count (one bin per integer) | log (log-spaced) | fraction (0..1)
    rule: str | None = None  # params key of the threshold drawn, None: none


MEASURES = (
    Measure("persons", "persons per image (annotated, duplicates merged)", "count", "crowded_persons"),
    Measure("interactive_pairs", "interactive pairs per image", "count", "crowded_pairs"),
    Measure("min_person_area", "smallest person box (fraction of image area, log scale)", "log", "tiny_area"),
    Measure("max_person_cover", "largest overlap of two persons (fraction of the smaller box)", "fraction",
            "occluded_cover"),
    Measure("low_conf_keypoints", "low-confidence keypoints (fraction of matched persons' keypoints)", "fraction",
            "occluded_keypoints"),
)
RULE_TEXT = {"crowded_persons": "crowded: persons ≥ {v:g}", "crowded_pairs": "crowded: pairs ≥ {v:g}",
             "tiny_area": "tiny: area < {v:g}", "occluded_cover": "occluded: cover ≥ {v:g}",
             "occluded_keypoints": "occluded: share ≥ {v:g}"}


def style(fig) -> None:
    """Readable sizes for print: 9 pt text, no top/right spines."""
    for ax in fig.axes:
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(labelsize=8)
        ax.xaxis.label.set_size(9)
        ax.yaxis.label.set_size(9)
        ax.title.set_size(9)


def bins(m: Measure, values: np.ndarray) -> np.ndarray:
    if m.kind == "count":
        return np.arange(-0.5, (values.max() if values.size else 1) + 1.5)
    positive = values[values > 0]
    if m.kind == "log" and positive.size and positive.max() > positive.min():
        return np.geomspace(positive.min(), positive.max(), 31)
    return np.linspace(0, 1, 26)


def threshold(m: Measure, rules: dict) -> float | None:
    """Where the rule's line lies on the x axis: a count rule 'x >= v' between bins v-1 and v."""
    value = rules.get(m.rule) if m.rule else None
    if value is None:
        return None
    return value - 0.5 if m.kind == "count" else float(value)


def draw_measure(ax, df: pd.DataFrame, m: Measure, rules: dict, edges: np.ndarray, title: str,
                 xlabel: bool = True) -> None:
    """Stacked histogram of one split's images (sparse below crowded), the rule's line with its
    text written along it."""
    groups = [(s, df.loc[df["scene"] == s, m.column].dropna().to_numpy(np.float64)) for s in SCENE_COLOURS]
    groups = [(s, v) for s, v in groups if v.size]  # an empty group: no bar, no legend entry
    if groups:
        ax.hist([v for _, v in groups], bins=edges, stacked=True, color=[SCENE_COLOURS[s] for s, _ in groups],
                label=[f"{s} ({v.size:,})" for s, v in groups])
        ax.legend(fontsize=7, frameon=False, title="scene (images)", title_fontsize=7, loc="upper right")
    if m.kind == "log" and len(edges) > 2 and edges[0] > 0:
        ax.set_xscale("log")
    x = threshold(m, rules)
    if x is not None:
        ax.axvline(x, color="black", linestyle="--", linewidth=1)
        ax.annotate(RULE_TEXT[m.rule].format(v=rules[m.rule]), (x, 0.98), xycoords=("data", "axes fraction"),
                    xytext=(-2, 0), textcoords="offset points", fontsize=7, rotation=90, ha="right", va="top",
                    bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})
    ax.set(xlabel=m.label if xlabel else "", ylabel="images", title=title)


def save(fig, stem: Path) -> list[Path]:
    """``stem``.pdf, .svg and .png, each written atomically."""
    paths = []
    for fmt in FORMATS:
        path = stem.with_suffix(f".{fmt}")
        tables.atomic_write(path, lambda tmp, fmt=fmt: fig.savefig(tmp, format=fmt, dpi=DPI))
        paths.append(path)
    return paths


def new_figure(size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def split_frames(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(title, rows) per dataset split present, train before test."""
    order = sorted(df["split"].dropna().unique(), key=lambda s: (s != "train", s != "test", s))
    return [(f"{s} ({int((df['split'] == s).sum()):,} images)", df[df["split"] == s]) for s in order]


def write_figures(df: pd.DataFrame, out_dir: Path, rules: dict) -> list[Path]:
    """One figure per measure (7 x 2.8 in): a panel per split on shared bins; returns paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for m in MEASURES:
        splits = split_frames(df)
        edges = bins(m, df[m.column].dropna().to_numpy(np.float64))
        fig = new_figure((7.0, 2.8))
        axes = fig.subplots(1, max(1, len(splits)), sharex=True, squeeze=False)[0]
        for ax, (title, rows) in zip(axes, splits):
            draw_measure(ax, rows, m, rules, edges, title, xlabel=False)
        fig.supxlabel(m.label, fontsize=9)  # one axis label under both panels: never cut
        style(fig)
        paths += save(fig, out_dir / m.column)
    return paths


def write_report_page(df: pd.DataFrame, reports: dict[str, pd.DataFrame], out_dir: Path, rules: dict,
                      title: str) -> list[Path]:
    """The one-page scene report (A4 portrait): splits and crowd tables, then the persons and
    smallest-area histograms per split."""
    from pipeline.scene_report import formatted

    fig = new_figure((8.27, 11.69))
    fig.suptitle(f"Scene statistics: {title}", fontsize=12)
    grid = fig.add_gridspec(4, 2, height_ratios=[0.35, 0.5, 1, 1])
    for row, name in enumerate(("splits", "crowd")):
        ax = fig.add_subplot(grid[row, :])
        ax.axis("off")
        ax.set_title(name, fontsize=10, loc="left")
        if name in reports and len(reports[name]):
            text = formatted(reports[name])
            t = ax.table(cellText=text.to_numpy(), colLabels=[c.replace("_", " ") for c in text.columns],
                         loc="upper center", cellLoc="right")
            t.auto_set_font_size(False)
            t.set_fontsize(6.5)
            t.auto_set_column_width(list(range(text.shape[1])))
    splits = split_frames(df)[:2]
    for row, column in ((2, "persons"), (3, "min_person_area")):
        m = next(x for x in MEASURES if x.column == column)
        edges = bins(m, df[column].dropna().to_numpy(np.float64))
        for col, (split_title, rows) in enumerate(splits):
            draw_measure(fig.add_subplot(grid[row, col]), rows, m, rules, edges, split_title)
    style(fig)
    return save(fig, out_dir / "scene_report")
