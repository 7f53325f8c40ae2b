"""Command ``ablate``: Table 5 on the built-in data (issue 13).

Trains STAGE 1 for every arm (``ARMS``: full, no_saliency, no_parts, intuitive, no_progressive,
no_one_time, alpha1 = ``train.alpha: 1``) and every seed, each run in its own folder
``OUT/runs/<arm>-s<seed>/`` (params.yaml, data/ with the run's scenes table, models/, log.txt,
result.json) as parallel subprocesses at a fixed thread count, without dvclive. Each run then
evaluates its stage-1 interactiveness AP on the test split: overall, on the cross-person split
and on crowded images (scenes columns ``cross_person``, ``crowded``), once with the real
saliency maps and once with the part masks of the batch rolled by one image (the inference-time
probe: another image's persons), and, for matched test pairs, how often each part group is
selected per verb. Outputs: ``reports/ablations.csv`` (one row per arm x seed),
``reports/ablations.md`` (mean, 95 % t-interval, paired difference to ``full`` with its 95 %
interval and sign count, per split) and ``reports/ablations_selection.csv``.

The pure core (arms, parameters of a run, statistics, tables) is separate from :func:`run`.
Inputs: the processed tables of ingest, pose, parts and scenes (data/processed/{images,
instances,pairs,parts,scenes}.parquet) and the images under ``dataset.root``.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from model.common.atomic_io import atomic_write
from model.common.errors import UserError

ARMS: dict[str, dict[str, object]] = {
    "full": {},
    "no_saliency": {"model.ablation": "no_saliency"},
    "no_parts": {"model.ablation": "no_parts"},
    "intuitive": {"model.ablation": "intuitive"},
    "no_progressive": {"model.ablation": "no_progressive"},
    "no_one_time": {"model.ablation": "no_one_time"},
    "alpha1": {"train.alpha": 1.0},
    # not a Table-5 row: the HAKE-supervised variant of Sec. 5.3 (pairs.part_labels)
    "part_supervised": {"train.loss.part": 1.0},
}
TABLE5_ARMS = tuple(a for a in ARMS if a != "part_supervised")  # the default set of ``ablate``
SPLITS = ("all", "cross_person", "crowded")
METRICS = (tuple(f"ap_{s}" for s in SPLITS) + tuple(f"ap_{s}_shuffled" for s in SPLITS) + ("ap_chance",)
           + tuple(f"ap_{s}_chance" for s in SPLITS[1:]))
DATA_TABLES = ("images", "instances", "pairs", "parts")


# ---------------------------------------------------------------------------- pure core
def set_key(params: dict, dotted: str, value: object) -> None:
    """``params[a][b] = value`` for ``dotted`` = "a.b" (sections created when absent)."""
    *path, last = dotted.split(".")
    node = params
    for key in path:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise UserError(f"--set {dotted}: '{key}' is not a section")
    node[last] = value


def parse_sets(sets: list[str]) -> dict[str, object]:
    """``["train.stage1.length=300", ...]`` -> {dotted key: YAML value}."""
    out = {}
    for item in sets:
        if "=" not in item:
            raise UserError(f"--set {item!r}: expected KEY=VALUE (e.g. train.stage1.length=300)")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def run_params(base: dict, arm: str, seed: int, overrides: dict[str, object], threads: int, device: str) -> dict:
    """The params of one run: ``base`` + the arm's switches + ``overrides`` + seed, threads,
    device; no progress bar (logs go to files)."""
    if arm not in ARMS:
        raise UserError(f"unknown arm {arm!r} (one of {', '.join(ARMS)})")
    p = copy.deepcopy(base)
    for key, value in {**ARMS[arm], **overrides}.items():
        set_key(p, key, value)
    p["seed"] = int(seed)
    set_key(p, "runtime.threads", int(threads))
    set_key(p, "runtime.device", device)
    set_key(p, "runtime.progress", False)
    return p


def t_interval(x: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lower, upper) of the Student-t interval of the mean of ``x`` (NaNs dropped);
    the bounds are NaN with fewer than two values."""
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if len(x) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return mean, mean - half, mean + half


def summarise(rows: pd.DataFrame, metrics: tuple[str, ...] = METRICS, baseline: str = "full") -> pd.DataFrame:
    """Per arm and metric: seeds, mean and 95 % t-interval; the paired difference baseline -
    arm over the seeds both have (mean, 95 % t-interval) and how many of them are > 0."""
    out = []
    base = rows[rows["arm"] == baseline].set_index("seed")
    for arm, g in rows.groupby("arm", sort=False):
        g = g.set_index("seed")
        for m in metrics:
            if m not in g:
                continue
            mean, lo, hi = t_interval(g[m].to_numpy())
            rec = {"arm": arm, "metric": m, "n": int(g[m].notna().sum()), "mean": mean, "lo": lo, "hi": hi}
            if arm != baseline and m in base:
                common = g.index.intersection(base.index)
                d = (base.loc[common, m] - g.loc[common, m]).to_numpy(np.float64)
                d = d[~np.isnan(d)]
                dm, dlo, dhi = t_interval(d)
                rec.update(diff=dm, diff_lo=dlo, diff_hi=dhi, positive=int((d > 0).sum()), pairs=len(d))
            out.append(rec)
    return pd.DataFrame(out)


def _pct(x: float) -> str:
    return "n/a" if x is None or np.isnan(x) else f"{100 * x:.1f}"


def recorded_settings(runs: list[Path]) -> dict[str, str]:
    """threads, device and stage-1 schedule as the runs' params.yaml recorded them (for tables
    made with --collect-only): every distinct value, comma-separated."""
    found: dict[str, set[str]] = {"threads": set(), "device": set(), "overrides": set()}
    for r in runs:
        p = yaml.safe_load((r / "params.yaml").read_text())
        found["threads"].add(str(p.get("runtime", {}).get("threads")))
        found["device"].add(str(p.get("runtime", {}).get("device")))
        s1 = p.get("train", {}).get("stage1", {})
        found["overrides"].add(f"train.stage1 length {s1.get('length')}, lr_drop {s1.get('lr_drop')} (recorded)")
    return {k: ", ".join(sorted(v)) for k, v in found.items() if v}


def markdown(summary: pd.DataFrame, meta: dict, baseline: str = "full") -> str:
    """The README-ready tables: one per split, AP in percent."""
    lines = ["# Table 5 on the built-in data (stage-1 interactiveness AP, test split)", "",
             "Command: `" + meta.get("command", "python cli.py ablate") + "`  ",
             f"Seeds: {meta.get('seeds')}; threads per run: {meta.get('threads')}; device: {meta.get('device')}; "
             f"overrides: {meta.get('overrides') or 'none'}.", "",
             f"Mean over seeds with its 95 % t-interval; diff = {baseline} - arm, paired by seed, with its 95 % "
             f"t-interval and the number of seeds where {baseline} is ahead. `shuffled`: the same networks with the "
             "part masks of the batch rolled by one image (another image's persons), at inference only. "
             "`chance`: AP of random scores on the same pairs.", ""]
    for m in [x for x in METRICS if x in set(summary["metric"])]:
        lines += [f"## {m}", "", "| arm | n | mean | 95 % CI | diff | 95 % CI of diff | ahead |",
                  "|---|---|---|---|---|---|---|"]
        for _, r in summary[summary["metric"] == m].iterrows():
            diff = "" if r["arm"] == baseline or pd.isna(r.get("diff")) else _pct(r["diff"])
            dci = "" if not diff else f"[{_pct(r['diff_lo'])}, {_pct(r['diff_hi'])}]"
            ahead = "" if not diff else f"{int(r['positive'])}/{int(r['pairs'])}"
            lines.append(f"| {r['arm']} | {r['n']} | {_pct(r['mean'])} | [{_pct(r['lo'])}, {_pct(r['hi'])}] | "
                         f"{diff} | {dci} | {ahead} |")
        lines.append("")
    return "\n".join(lines)


def selection_by_verb(pairs: pd.DataFrame, selected: np.ndarray, verb_names: dict[int, str]) -> pd.DataFrame:
    """Share of matched test pairs that select each part group, per verb: ``pairs`` (one row
    per ground-truth pair with ``verb_id`` and ``query_row``, the row of ``selected`` [N, 6]
    of its matched query, -1 when none) -> rows verb, n, foot .. head."""
    from pipeline.tables import PART_GROUP_NAMES

    ok = pairs["query_row"].to_numpy() >= 0
    cols = [f"part_{n}" for n in PART_GROUP_NAMES]  # ("arm" is also a body part)
    frame = pd.DataFrame(selected[pairs["query_row"].to_numpy()[ok]].astype(float), columns=cols)
    frame["verb"] = pairs["verb_id"].to_numpy()[ok]
    frame["verb"] = frame["verb"].map(lambda v: verb_names.get(int(v), str(v)))
    table = frame.groupby("verb").mean()
    table.insert(0, "n", frame.groupby("verb").size())
    return table.reset_index()


# ---------------------------------------------------------------------------- one run (subprocess)
def _run_tables(run_dir: Path, processed: Path, alpha: float) -> Path:
    """run_dir/data: links to the shared tables and the scenes table with the run's sampling
    weights (the scenes stage bakes train.alpha into ``sample_weight``)."""
    from pipeline import tables
    from pipeline.scenes import sample_weights

    data = run_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    for name in DATA_TABLES:
        link = data / f"{name}.parquet"
        if not link.exists():
            link.symlink_to((processed / f"{name}.parquet").resolve())
    scenes = tables.read(processed / "scenes.parquet", "scenes")
    tables.write(scenes.assign(sample_weight=sample_weights(scenes, alpha)), "scenes", data / "scenes.parquet")
    return data


def train_and_evaluate(run_dir: Path, processed: Path) -> dict:
    """Train stage 1 in ``run_dir`` (no dvclive), evaluate it, write run_dir/result.json."""
    from pipeline import params as P
    from pipeline import train as train_stage

    params = run_dir / "params.yaml"
    alpha = float(P.load(params).get("train", {}).get("alpha", 3.0))
    data = _run_tables(run_dir, processed, alpha)
    started = time.time()
    summary = train_stage.run(params, 1, processed=data, models=run_dir / "models", reports=run_dir / "reports",
                              live=False)
    result = evaluate_stage1(run_dir / "models" / "stage1.pt", data, params)
    result.update(train_seconds=time.time() - started, val_int_ap=summary["best"]["value"],
                  best_iteration=summary["best"]["iteration"])
    (run_dir / "result.json").write_text(json.dumps(result, indent=1, default=float))
    return result


def evaluate_stage1(ckpt_path: Path, data: Path, params: Path, image_root: Path | None = None) -> dict:
    """AP overall / cross-person / crowded with real and rolled part masks, chance AP, and the
    per-verb part selection of matched test pairs (``selection`` rows). ``data`` / ``image_root``:
    the test tables and images (default images: the training dataset's)."""
    import torch

    from model import checkpoint as ckpt_io
    from model.bundle_file import network
    from model.label_space import LabelSpace
    from pipeline import params as P
    from pipeline.ablations.evaluation import matched_queries, run_stage1, scores
    from model.common.labels import hico
    from pipeline.train import TrainConfig

    ck = ckpt_io.load(ckpt_path)
    cfg = P.section("train", TrainConfig, params)
    wanted = P.runtime(params).device
    device = torch.device(wanted if wanted.startswith("cuda") and torch.cuda.is_available() else "cpu")
    net = network(ck).to(device)
    real, shuffled, t, scenes = run_stage1(net, ck, data, cfg.augment, device, image_root=image_root)
    fmt = LabelSpace.from_dict(ck["labels"]).format
    out = scores(real, t, scenes, fmt=fmt)
    out.update(scores(shuffled, t, scenes, suffix="_shuffled", chance=False, fmt=fmt))
    selected = real.attrs.get("selected")
    if selected is not None and fmt == "hico-det":
        out["selection"] = selection_by_verb(matched_queries(real, t), selected, hico().verb_names).to_dict("records")
    return out


# ---------------------------------------------------------------------------- orchestration
def plan(base: dict, arms: list[str], seeds: list[int], overrides: dict, threads: int, device: str,
         out_dir: Path) -> list[Path]:
    """Write every run's params.yaml; returns the run folders (arm-major order)."""
    runs = []
    for arm in arms:
        for seed in seeds:
            run_dir = out_dir / "runs" / f"{arm}-s{seed}"
            run_dir.mkdir(parents=True, exist_ok=True)
            p = run_params(base, arm, seed, overrides, threads, device)
            (run_dir / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
            runs.append(run_dir)
    return runs


def launch(runs: list[Path], processed: Path, jobs: int, threads: int) -> dict[Path, int]:
    """Run ``python -m pipeline.ablations RUN PROCESSED`` for every run, ``jobs`` at a time,
    each logging to RUN/log.txt; runs with a result.json already are skipped. {run: exit code}."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    todo = [r for r in runs if not (r / "result.json").exists()]
    codes: dict[Path, int] = {r: 0 for r in runs if r not in todo}
    active: list[tuple[Path, subprocess.Popen]] = []
    while todo or active:
        while todo and len(active) < jobs:
            r = todo.pop(0)
            log = open(r / "log.txt", "w")  # noqa: SIM115 - closed when the process ends
            proc = subprocess.Popen([sys.executable, "-m", "pipeline.ablations", str(r), str(processed)],
                                    stdout=log, stderr=subprocess.STDOUT, env=env)
            active.append((r, proc))
            print(f"ablate: started {r.name}")
        time.sleep(1.0)
        for r, proc in list(active):
            if proc.poll() is not None:
                codes[r] = proc.returncode
                active.remove((r, proc))
                state = "done" if proc.returncode == 0 else f"FAILED (see {r / 'log.txt'})"
                print(f"ablate: {r.name} {state}")
    return codes


def _eval_key(ckpt: Path, data: Path, image_root: Path) -> dict[str, object]:
    """What a cached score on other data depends on: the network file and the data's folders."""
    st = ckpt.stat()
    return {"checkpoint": str(ckpt.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "data": str(data.resolve()), "images": str(image_root.resolve())}


def evaluate_elsewhere(runs: list[Path], data: Path, image_root: Path) -> dict[Path, dict]:
    """The finished runs' stage-1 networks scored on other test data (e.g. the cross-person
    control, where R's hand is empty): {run: result}, as ``result.json`` holds for the run's own.
    Each score is kept in RUN/elsewhere.json by data folder and reused while the network file and
    the folders are the same (a later --collect-only scores only the runs that finished since)."""
    out = {}
    for r in runs:
        ckpt = r / "models" / "stage1.pt"
        if not ((r / "result.json").exists() and ckpt.exists()):
            continue
        cache_path = r / "elsewhere.json"
        cache = json.loads(cache_path.read_text()) if cache_path.exists() else []
        key = _eval_key(ckpt, data, image_root)
        hit = next((c["result"] for c in cache if c.get("key") == key), None)
        if hit is None:
            hit = evaluate_stage1(ckpt, data, r / "params.yaml", image_root)
            cache = [c for c in cache if c.get("key", {}).get("data") != key["data"]] + [{"key": key, "result": hit}]
            text = json.dumps(cache, indent=1, default=float)
            atomic_write(cache_path, lambda tmp: Path(tmp).write_text(text))
        out[r] = hit
    return out


def collect(runs: list[Path], results: dict[Path, dict] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per finished run, per-verb selection rows of every run); ``results`` replaces
    the runs' result.json files."""
    rows, sel = [], []
    for r in runs:
        path = r / "result.json"
        if results is not None:
            if r not in results:
                continue
            res = dict(results[r])
        elif not path.exists():
            continue
        else:
            res = json.loads(path.read_text())
        arm, seed = r.name.rsplit("-s", 1)
        for s in res.pop("selection", []):
            sel.append({"arm": arm, "seed": int(seed), **s})
        rows.append({"arm": arm, "seed": int(seed), **res})
    from pipeline.tables import PART_GROUP_NAMES

    return pd.DataFrame(rows), pd.DataFrame(sel, columns=["arm", "seed", "verb", "n", *(f"part_{n}" for n in PART_GROUP_NAMES)])


def run(params_path: Path, arms: list[str], seeds: list[int], jobs: int, threads: int, device: str,
        sets: list[str], processed: Path, out_dir: Path, reports: Path, command: str,
        collect_only: bool = False, eval_images: Path | None = None) -> pd.DataFrame:
    """Plan, launch, collect and write reports/ablations.{csv,md} (+ _selection.csv).
    ``collect_only``: train nothing, tabulate the runs of ``out_dir`` that have finished; with
    ``eval_images``, score their networks on the tables of ``processed`` and these images
    instead (e.g. the cross-person control data)."""
    from pipeline import params as P
    from pipeline import tables

    missing = [n for n in (*DATA_TABLES, "scenes") if not (processed / f"{n}.parquet").exists()]
    if missing and not (collect_only and eval_images is None):  # tabulating result.json files needs no tables
        raise UserError(f"{processed}: missing table(s) {missing}: run synth, ingest, pose, parts and scenes first")
    overrides = parse_sets(sets)
    if collect_only:
        runs = [out_dir / "runs" / f"{a}-s{s}" for a in arms for s in seeds]
        codes = {r: 0 if (r / "result.json").exists() else 1 for r in runs}
    else:
        runs = plan(P.load(params_path), arms, seeds, overrides, threads, device, out_dir)
        codes = launch(runs, processed, jobs, threads)
    if eval_images is not None and not collect_only:
        raise UserError("ablate: --eval-images needs --collect-only (it scores finished runs on other data)")
    rows, sel = collect(runs, evaluate_elsewhere(runs, processed, eval_images) if eval_images else None)
    failed = sorted(r.name for r, c in codes.items() if c != 0)
    if rows.empty:
        raise UserError(f"ablate: every run failed (logs under {out_dir / 'runs'})")
    summary = summarise(rows)
    meta = {"command": command, "seeds": seeds, "threads": threads, "device": device, "overrides": sets}
    if collect_only:  # the runs' own settings, not this command's
        meta.update(recorded_settings([r for r in runs if (r / "params.yaml").exists()]))
    text = markdown(summary, meta)
    if failed:  # --collect-only cannot tell a run never started from one that failed
        label = ("Runs without a result (not run, unfinished or failed; not in the table)" if collect_only
                 else "Failed runs (not in the table)")
        text += f"\n{label}: {', '.join(failed)}\n"
    reports.mkdir(parents=True, exist_ok=True)
    tables.atomic_write(reports / "ablations.csv", lambda tmp: rows.to_csv(tmp, index=False))
    tables.atomic_write(reports / "ablations.md", lambda tmp: Path(tmp).write_text(text))
    tables.atomic_write(reports / "ablations_selection.csv", lambda tmp: sel.to_csv(tmp, index=False))
    print(text)
    return rows

