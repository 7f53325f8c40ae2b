"""DVC as users compare runs, on a tiny generated dataset in a temporary copy of the repository:
`dvc repro -f` rewrites every output with the same bytes (dvc.lock unchanged), a runtime
setting or another command's code leaves every stage up to date, and two `dvc exp run`
experiments carry their own metrics, which `dvc exp show --json` reports for both."""

from __future__ import annotations

import json
import re
import sys
import warnings
from pathlib import Path

import pytest
import yaml

from test_pipeline_e2e import _run, tiny_git_repo


def _collect_metrics(node, found: dict) -> None:
    """{experiment name or rev: headline metrics} from `dvc exp show --json`'s nested output."""
    if isinstance(node, dict):
        data = node.get("data")
        if isinstance(data, dict) and isinstance(data.get("metrics"), dict):
            headline = data["metrics"].get("reports/headline.json", {}).get("data")
            if headline:
                found[node.get("name") or node.get("rev")] = headline
        for value in node.values():
            _collect_metrics(value, found)
    elif isinstance(node, list):
        for value in node:
            _collect_metrics(value, found)


def _up_to_date(dvc: list[str], repo: Path, env: dict) -> bool:
    return "up to date" in _run([*dvc, "status"], repo, env).lower()


@pytest.mark.slow
def test_experiments_compare_and_reruns_repeat(tmp_path: Path) -> None:
    repo, env = tiny_git_repo(tmp_path)
    dvc = [sys.executable, "-m", "dvc"]
    out = _run([*dvc, "repro"], repo, env)
    assert "WARNING" not in out, out  # e.g. an empty output folder
    lock = (repo / "dvc.lock").read_text()

    # the same inputs give the same bytes: a forced re-run of every stage changes no hash
    _run([*dvc, "repro", "-f"], repo, env)
    assert (repo / "dvc.lock").read_text() == lock
    # the small reports are in git (experiments carry them), predictions are not
    _run(["git", "add", "-A"], repo, env)
    tracked = _run(["git", "diff", "--cached", "--name-only"], repo, env).split()
    assert {"dvc.lock", "reports/headline.json", "reports/metrics.json", "reports/train_stage1.json",
            "reports/evaluate/curves/interactiveness_pr.csv"} <= set(tracked)
    assert not any(p.endswith(".parquet") or p.startswith("models/") for p in tracked)
    _run(["git", "commit", "-qm", "baseline"], repo, env)

    # neither runtime settings nor another command's code are a stage's dependency
    p = yaml.safe_load((repo / "params.yaml").read_text())
    p["runtime"].update(threads=1, log_every=5, progress=True)
    (repo / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    (repo / "cli.py").write_text((repo / "cli.py").read_text() + "\n# a changed help text\n")
    assert _up_to_date(dvc, repo, env)
    _run(["git", "checkout", "--", "params.yaml", "cli.py"], repo, env)

    _run([*dvc, "exp", "run", "-n", "no-saliency", "-S", "model.ablation=no_saliency"], repo, env)
    # `exp run` leaves its params in the workspace: set both keys explicitly
    _run([*dvc, "exp", "run", "-n", "crowded-3", "-S", "model.ablation=full", "-S", "scenes.crowded_persons=3"], repo, env)
    shown = json.loads(_run([*dvc, "exp", "show", "--json"], repo, env))
    found: dict = {}
    _collect_metrics(shown, found)
    for name in ("no-saliency", "crowded-3"):
        assert name in found, f"no metrics for experiment {name}: {sorted(found)}"
        assert isinstance(found[name]["int_ap"], float) and isinstance(found[name]["map_full"], float)
    diff = _run([*dvc, "metrics", "diff", "HEAD", "no-saliency", "--all", "--json"], repo, env)
    assert "int_ap" in json.loads(diff)["reports/headline.json"]
    # README's command; printed for README's example (pytest -s)
    print(_run([*dvc, "exp", "show", "--only-changed", "--drop", "Created|State|Executor"], repo,
               {**env, "COLUMNS": "120"}))

    # plots: every definition rendered with its title and named axes, both revisions compared;
    # with chromium installed, a real browser draws the page (tests/screenshot_plots.py)
    from screenshot_plots import browser, inline_vega, render_html, screenshot

    html = render_html(repo, tmp_path / "plots", ["HEAD", "no-saliency"])
    text = html.read_text()
    titles = [next(iter(p)) for p in yaml.safe_load((repo / "dvc.yaml").read_text())["plots"]]
    assert len(re.findall(r'"title": \{"text": ', text)) == len(titles)
    assert '"title": "recall"' in text and '"title": "precision"' in text and '"title": "iteration"' in text
    assert "no-saliency" in text
    # the optional browser step: a warning, not a skip, because every assertion above ran
    if browser() is None:
        warnings.warn("chromium not installed: the plots page was not drawn in a browser", stacklevel=1)
        return
    if not inline_vega(html):
        warnings.warn("vl-convert-python not installed: DVC's page would load vega from a CDN, not drawn",
                      stacklevel=1)
        return
    png = screenshot(html, tmp_path / "plots.png")
    from PIL import Image

    gray = Image.open(png).convert("L")
    assert gray.getbbox() is not None and sum(gray.histogram()[:128]) > 2000  # drawn lines and text, not blank
