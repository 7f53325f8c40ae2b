"""Progress bar, console lines and dvclive metrics of a training run (rank 0 only).

dvclive writes ``<dir>/plots/metrics/{train,val}/*.tsv`` (declared as DVC plots in dvc.yaml)
and ``<dir>/metrics.json``; it never edits dvc.yaml here (``dvcyaml=False``). On resume the
rows logged after the checkpoint are dropped, so a resumed curve has no duplicate steps.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from model.common.numbers import points
from model.common.progress import quiet


def trim_after(live_dir: Path, iteration: int) -> None:
    """Drop the rows of every dvclive .tsv with a step after ``iteration``."""
    for tsv in (live_dir / "plots" / "metrics").rglob("*.tsv"):
        df = pd.read_csv(tsv, sep="\t")
        if "step" in df.columns and (df["step"] > iteration).any():
            df[df["step"] <= iteration].to_csv(tsv, sep="\t", index=False)


class TrainLog:
    """Running means of the losses, logged every ``log_every`` iterations, plus validation."""

    def __init__(self, live_dir: Path | None, cfg, resume: bool, iteration: int) -> None:
        self.cfg, self.live, self.bar = cfg, None, None
        self.sums: dict[str, float] = defaultdict(float)
        self.count = 0
        if live_dir is None:
            return
        from dvclive import Live

        if resume and live_dir.exists():
            trim_after(live_dir, iteration)
        self.live = Live(str(live_dir), resume=resume, dvcyaml=False, save_dvc_exp=False, report=None)
        tty = sys.stderr.isatty()
        self.bar = tqdm(total=cfg.iterations, initial=iteration, desc="train", unit="it", disable=not cfg.runtime.progress or quiet(),
                        mininterval=0.5 if tty else 30.0, dynamic_ncols=True)

    def step(self, it: int, losses: dict[str, float], lrs: list[float]) -> None:
        for k, v in losses.items():
            self.sums[k] += v
        self.count += 1
        if self.bar is not None:
            self.bar.update(1)
            if it % self.cfg.runtime.log_every == 0:
                self.bar.set_postfix(loss=f"{self.sums['loss'] / self.count:.3f}", refresh=False)
        if it % self.cfg.runtime.log_every == 0:
            if self.live is not None:
                self.live.step = it
                for k, v in self.sums.items():
                    self.live.log_metric(f"train/{k}", v / self.count)
                for i, lr in enumerate(lrs):
                    self.live.log_metric(f"train/lr{'' if i == 0 else f'_group{i}'}", lr)
            self.sums.clear()
            self.count = 0

    def validation(self, it: int, metrics: dict[str, float], best: dict) -> None:
        if self.live is None:
            return
        self.live.step = it
        for k, v in metrics.items():
            self.live.log_metric(f"val/{k}", float(v))
        self.live.make_summary()
        shown = " ".join(f"{k} {points(v)} %" for k, v in metrics.items())
        best_s = f"(best {points(best['value'])} % @ {best['iteration']})" if best.get("value") is not None else ""
        (self.bar.write if self.bar is not None else print)(f"iteration {it}/{self.cfg.iterations}: {shown} {best_s}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.live is not None:
            self.live.end()
