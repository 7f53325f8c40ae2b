"""Command line of the BPM pipeline: one command per DVC stage, plus inspection tools.

This module only parses arguments and calls the stage's ``run()``; the work lives in
``pipeline/`` and ``model/``. A user's data or configuration mistake (``UserError``) is printed
as one line and exits with status 2.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from pipeline.errors import UserError

app = typer.Typer(
    help="BPM: body-part interactiveness HOI detection, stage by stage (see README.md).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ParamsOpt = Annotated[Path, typer.Option("--params", help="params.yaml to read the stage's section from.")]
F = TypeVar("F", bound=Callable)


def user_errors(fn: F) -> F:
    """Turn a UserError into one line on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


@app.command()
@user_errors
def synth(
    params: ParamsOpt = Path("params.yaml"),
    out: Annotated[Path, typer.Option(help="Output folder of the synthetic dataset.")] = Path("data/raw/synthetic"),
) -> None:
    """Generate the built-in synthetic HOI dataset (params: seed, synth).

    Writes, deterministically from the seed, JPEG images and annotations in the exact on-disk
    formats of the real datasets: OUT/hico_20160224_det (PPDM/QPIC HICO-DET files),
    OUT/v-coco (QPIC V-COCO files plus the official V-COCO evaluation files), each with a
    simulated AlphaPose result file (alphapose-results.json).
    """
    from pipeline import synth as stage

    stage.run(params, out)


@app.command()
@user_errors
def ingest(
    params: ParamsOpt = Path("params.yaml"),
    out: Annotated[Path, typer.Option(help="Folder for the parquet tables.")] = Path("data/processed"),
    report: Annotated[Path, typer.Option(help="Summary JSON (DVC metrics).")] = Path("reports/ingest.json"),
) -> None:
    """Read the dataset named in params (dataset: format, root) into parquet tables.

    Inputs: a HICO-DET (PPDM/QPIC json) or V-COCO (QPIC json) directory, real or synthetic.
    Outputs: OUT/images.parquet, OUT/instances.parquet, OUT/pairs.parquet and REPORT
    (records read, written, skipped by reason). Params: dataset, ingest.
    """
    from pipeline import ingest as stage

    stage.run(params, out, report)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
