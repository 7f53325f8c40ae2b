"""What cli.py's commands share: the help panels and their order, the one-line user-error and
run-log wrappers, the version option, validated choices and the option types used by several
commands (declared once here; each command gives its own default). cli.py is the table of
commands built from these.

Help texts are Rich markup: a literal ``[`` must be written ``\\[``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from typer.core import TyperGroup

from model.common.errors import UserError, one_line

STAGES = "Pipeline stages (dvc.yaml order)"
ANALYSIS = "Inference and analysis"
TOOLS = "Data and weights tools"
# the order of `--help`: the pipeline's stages as dvc.yaml runs them, then the rest
ORDER = ("synth", "ingest", "pose", "parts", "scenes", "train", "bundle", "evaluate",
         "predict", "inspect", "show", "ablate", "data", "weights")


class OrderedGroup(TyperGroup):
    """Commands listed in ORDER (others after them, as registered), not in definition order."""

    def list_commands(self, ctx) -> list[str]:
        names = list(self.commands)
        return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), names.index(n)))


# option types shared by several commands (each command gives its own default)
ParamsOpt = Annotated[Path, typer.Option("--params", help="params.yaml to read the stage's section from.")]
ReportOpt = Annotated[Path, typer.Option(help="Summary JSON (DVC metrics).")]
DataOpt = Annotated[Path, typer.Option(help="Folder of the input tables.")]
TablesOutOpt = Annotated[Path, typer.Option(help="Folder for the parquet tables.")]
F = TypeVar("F", bound=Callable)
LogPlace = Callable[[dict], tuple[Path, list[Path], Path | None]]  # kwargs -> (log file, outputs, report)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"bpm-hoi {version('bpm-hoi')}")
        except PackageNotFoundError:  # run from a checkout that is not pip-installed
            import tomllib

            meta = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
            typer.echo(f"{meta['name']} {meta['version']}")
        raise typer.Exit()


def user_errors(fn: F) -> F:
    """Turn a UserError into one line on stderr and exit status 2 (-v: with its traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            from model.common.progress import verbose

            if verbose():
                import traceback

                traceback.print_exc()
            typer.echo(f"error: {one_line(str(exc))}", err=True)  # exactly one line, whatever the data
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def logged(where: LogPlace) -> Callable[[F], F]:
    """Write a log of the command's run (pipeline/runlog.py); ``where(kwargs)`` gives the log
    file (None: no log), the outputs whose written files are listed and the report JSON whose
    skips are."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            from pipeline.runlog import run_log

            log, outputs, report = where(kwargs)
            if log is None:
                return fn(*args, **kwargs)
            with run_log(log, outputs, report, command_line(fn.__name__, kwargs)):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def command_line(name: str, kwargs: dict) -> str:
    """The command and every option value it ran with (defaults included), for the run log."""
    import click

    ctx = click.get_current_context(silent=True)
    path = ctx.command_path if ctx is not None else name
    shown = (f"--{k.replace('_', '-')} {getattr(v, 'value', v)}" for k, v in kwargs.items() if v is not None)
    return " ".join([path, *shown])


def stage_log(name: str, *outputs: str, report: str | None = "report") -> LogPlace:
    """reports/logs/NAME.log (beside REPORT's folder when the command has a --report), listing
    what was written under the options named in ``outputs``."""

    def where(kw: dict) -> tuple[Path, list[Path], Path | None]:
        rep = kw.get(report) if report else None
        folder = (rep.parent if rep is not None else Path("reports")) / "logs"
        return folder / f"{name}.log", [kw[o] for o in outputs if kw.get(o) is not None], rep

    return where


def check_device(value: str) -> str:
    """--device checked as params' devices are (pipeline.params.check_device)."""
    from pipeline.params import check_device as check

    try:
        return check(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


DeviceOpt = Annotated[str, typer.Option(callback=check_device,
                                        help="auto | cpu | cuda | cuda:N | mps (pose and model).")]


class ReportFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


class ReportName(str, Enum):
    all = "all"
    splits = "splits"
    distribution = "distribution"
    crowd = "crowd"
    hoi = "hoi"


class DataFormat(str, Enum):
    hico_det = "hico-det"
    v_coco = "v-coco"


class BoxShift(str, Enum):
    none = "none"
    minus_one = "minus-one"


class FetchSet(str, Enum):
    hico_det = "hico-det"
    v_coco = "v-coco"
    models = "models"


class HoiCategory(str, Enum):
    verb = "verb"
    hoi = "hoi"


class ObjectIds(str, Enum):
    contiguous = "contiguous"
    coco = "coco"


class PredsFormat(str, Enum):
    qpic = "qpic"
    bpm_binary = "bpm-binary"
    vcoco_pickle = "vcoco-pickle"
    hico_mat = "hico-mat"


ImagesOpt = Annotated[Path, typer.Option(help="Images table whose test split lists the images (sorted).")]
ImageListOpt = Annotated[Path | None, typer.Option(
    help="Text file of test image ids or file names, one per line, in order.")]
AnnoMatOpt = Annotated[Path | None, typer.Option(
    help="HICO-DET anno.mat: its list_test gives the official image order.")]


class PredictPose(str, Enum):
    ultralytics = "ultralytics"
    alphapose_file = "alphapose-file"
    coco_file = "coco-file"
    persons_table = "persons-table"


class SplitName(str, Enum):
    train = "train"
    test = "test"


VersionOpt = Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")]
