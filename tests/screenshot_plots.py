"""Render this repository's DVC plots as a browser shows them: ``dvc plots show`` (or
``dvc plots diff REV...``) writes HTML, headless Chromium screenshots it.

    python tests/screenshot_plots.py OUT.png [REV ...]

Run it where the pipeline has run (the plot files exist); with REVs it renders
``dvc plots diff REV ...`` (e.g. ``HEAD exp-name``). Look at OUT.png: each plot has its title,
named axes (iteration / loss, recall / precision) and one line per file (and revision).
Used by tests/pipeline/test_dvc_experiments.py when chromium is installed (apt-get install chromium).
DVC's HTML loads vega from a CDN; offline, with the vl-convert-python package importable, the
page gets vl-convert's bundled copy of vega, vega-lite and vega-embed inline instead.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def browser() -> str | None:
    """The first headless-capable Chromium on PATH, or None."""
    return next((b for b in map(shutil.which, BROWSERS) if b), None)


def render_html(repo: Path, out_dir: Path, revs: list[str]) -> Path:
    """``dvc plots show|diff`` into ``out_dir``; returns the index.html."""
    cmd = [sys.executable, "-m", "dvc", "plots", "diff", *revs] if revs else [sys.executable, "-m", "dvc", "plots", "show"]
    subprocess.run([*cmd, "-o", str(out_dir)], cwd=repo, check=True, capture_output=True, text=True, timeout=300)
    return out_dir / "index.html"


def inline_vega(html: Path) -> bool:
    """Replace the page's CDN script tags by vl-convert's bundle (for machines without
    internet); False when vl-convert-python is not installed (the CDN stays)."""
    try:
        import vl_convert
    except ImportError:
        return False
    bundle = vl_convert.javascript_bundle("window.vegaEmbed = vegaEmbed; window.vega = vega; window.vegaLite = vegaLite;")
    text = re.sub(r'<script src="https://cdn\.jsdelivr\.net/npm/vega[^"]*"></script>\s*', "", html.read_text())
    html.write_text(text.replace("<head>", f"<head>\n<script>{bundle}</script>", 1))
    return True


def screenshot(html: Path, png: Path, size: tuple[int, int] = (1400, 5200)) -> Path:
    """Headless Chromium's screenshot of ``html`` (virtual time lets vega finish drawing)."""
    exe = browser()
    if exe is None:
        raise RuntimeError("no chromium on PATH (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                        "--hide-scrollbars", f"--window-size={size[0]},{size[1]}", "--virtual-time-budget=20000",
                        f"--screenshot={png}", html.resolve().as_uri()],
                       check=True, capture_output=True, timeout=300)
    return png


def main(argv: list[str]) -> int:
    png, *revs = argv
    with tempfile.TemporaryDirectory() as tmp:
        html = render_html(Path.cwd(), Path(tmp) / "plots", revs)
        inline_vega(html)
        screenshot(html, Path(png).resolve())
    print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
