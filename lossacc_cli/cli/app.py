"""The Typer application: parse, call, render, exit code. Nothing else happens here."""

from __future__ import annotations

import dataclasses
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from lossacc_cli import __version__
from lossacc_cli.analysis.overview import overview
from lossacc_cli.analysis.run import Run, load_run
from lossacc_cli.cli.common import (
    ClassNamesOpt,
    DebugOpt,
    EpochOpt,
    Format,
    FromOpt,
    FormatOpt,
    IdColOpt,
    JobsOpt,
    LabelColOpt,
    OutputOpt,
    PathArg,
    RenormOpt,
    ScoresOpt,
    SplitOpt,
    ToOpt,
    TopOpt,
    cli_errors,
    load_class_names,
    one_line,
    read_options,
    resolve_path,
)
from lossacc_cli.cli.config import load_config
from lossacc_cli.cli.output import emit, is_plain, stderr_console, stdout_console
from lossacc_cli.errors import UsageError
from lossacc_cli.analysis.calibration import calibration_report
from lossacc_cli.analysis.compare import compare_epochs
from lossacc_cli.analysis.check import CheckConfig, evaluate, parse_fraction, parse_threshold
from lossacc_cli.analysis.diagnosis import VERDICTS, diagnose
from lossacc_cli.analysis.dynamics import suspected_label_errors, training_dynamics
from lossacc_cli.analysis.outliers import outlier_report
from lossacc_cli.render.analyze import analyze_json, analyze_renderable
from lossacc_cli.render.check import check_github, check_json, check_junit, check_renderable
from lossacc_cli.render.calibration import calibration_json, calibration_renderable
from lossacc_cli.render.diagnosis import diagnosis_json
from lossacc_cli.render.attribution import (
    compare_renderable,
    comparison_json,
    outliers_json,
    outliers_renderable,
    suspects_json,
)
from lossacc_cli.render.jsonout import document, dumps

app = typer.Typer(
    help="Explain why validation loss rises while validation accuracy rises too.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lossacc {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """lossacc reads per-epoch predictions on a fixed evaluation set and names the cause of rising loss."""


def _load(path, fmt: Format, class_names_file, options, jobs: int = 0) -> Run:
    """Load the run with a progress bar on stderr (terminal, table format, several files only)."""
    err = stderr_console()
    names = load_class_names(class_names_file)
    if fmt is Format.table and err.is_terminal:
        from rich.progress import Progress

        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("reading epochs", total=None)
            run = load_run(path, options, jobs=jobs,
                           on_epoch=lambda done, total: progress.update(task, completed=done, total=total))
    else:
        run = load_run(path, options, jobs=jobs)
    if names is not None:
        if len(names) != run.n_classes:
            raise UsageError(
                f"--class-names {class_names_file}: {len(names)} names for {run.n_classes} classes"
            )
        run = dataclasses.replace(run, class_names=names)
    for note in collapse_notes(run.notes, [r.source for r in run.records]):
        err.print(f"warning: {one_line(note)}", markup=False, highlight=False, emoji=False)
    return run


def collapse_notes(notes, sources) -> list[str]:
    """One line for a note that every epoch file repeats: ``"<file>: text"`` for 100 files becomes
    ``"text (100 files: epoch_001.npz, epoch_002.npz, ...)"``."""
    known = set(sources)
    groups: dict[str, list[str]] = {}
    out: list[object] = []
    for note in notes:
        prefix, sep, rest = note.partition(": ")
        if sep and prefix in known:
            if rest not in groups:
                groups[rest] = []
                out.append(rest)
            groups[rest].append(prefix)
        else:
            out.append((note,))
    lines = []
    for item in out:
        if isinstance(item, tuple):
            lines.append(item[0])
            continue
        files = groups[item]
        if len(files) == 1:
            lines.append(f"{files[0]}: {item}")
        else:
            shown = ", ".join(files[:3]) + (", ..." if len(files) > 3 else "")
            lines.append(f"{item} ({len(files)} files: {shown})")
    return lines


def _respond(command: str, fmt: Format, output: str | None, body, view) -> None:
    """Print (or write to ``output``) the JSON document from ``body()`` or the view from ``view(plain)``."""
    if fmt is Format.json:
        emit(None, dumps(document(command, body())), output=output)
    else:
        plain = bool(output) or is_plain(stdout_console())
        emit(view(plain), None, output=output)


@app.command()
def analyze(
    path: PathArg = None,
    fmt: FormatOpt = Format.table,
    top: TopOpt = 10,
    output: OutputOpt = None,
    split: SplitOpt = None,
    label_col: LabelColOpt = None,
    id_col: IdColOpt = None,
    scores: ScoresOpt = None,
    renormalize: RenormOpt = False,
    class_names: ClassNamesOpt = None,
    from_epoch: FromOpt = None,
    to_epoch: ToOpt = None,
    debug: DebugOpt = False,
    jobs: JobsOpt = 0,
) -> None:
    """Per-epoch loss, accuracy and calibration, the epochs where loss rises while accuracy holds,
    and the samples and classes responsible for the rise (lowest-loss epoch -> last by default).

    Example: lossacc analyze preds/ --format json --output report.json
    """
    with cli_errors(debug):
        options = read_options(label_col, id_col, scores, split, renormalize)
        run = _load(resolve_path(path), fmt, class_names, options, jobs)
        ov = overview(run.summaries)
        a = run.resolve_epoch(from_epoch or ov.best_loss_epoch, option="--from")
        b = run.resolve_epoch(to_epoch or "last", option="--to")
        comparison = compare_epochs(run, a, b, top=top) if a != b and run.n_common(a, b) else None
        dynamics = training_dynamics(run)
        suspects = suspected_label_errors(run, dynamics)
        dx = diagnose(run, dynamics, a, b)

        def body() -> dict:
            return {
                **analyze_json(run, ov),
                "diagnosis": diagnosis_json(dx),
                "responsibility": comparison_json(comparison) if comparison else None,
                "suspected_label_errors": suspects_json(suspects, top),
            }

        _respond("analyze", fmt, output, body,
                 lambda plain: analyze_renderable(run, ov, dx, comparison, suspects, top=top, plain=plain))


@app.command()
def outliers(
    path: PathArg = None,
    epoch: EpochOpt = "last",
    fmt: FormatOpt = Format.table,
    top: TopOpt = 10,
    output: OutputOpt = None,
    split: SplitOpt = None,
    label_col: LabelColOpt = None,
    id_col: IdColOpt = None,
    scores: ScoresOpt = None,
    renormalize: RenormOpt = False,
    class_names: ClassNamesOpt = None,
    debug: DebugOpt = False,
    jobs: JobsOpt = 0,
) -> None:
    """The per-sample loss distribution at one epoch and the outlying samples.

    Example: lossacc outliers --epoch 50 preds/
    """
    with cli_errors(debug):
        options = read_options(label_col, id_col, scores, split, renormalize)
        run = _load(resolve_path(path), fmt, class_names, options, jobs)
        rep = outlier_report(run, run.resolve_epoch(epoch, option="--epoch"), top=top)
        _respond("outliers", fmt, output, lambda: outliers_json(rep),
                 lambda plain: outliers_renderable(rep, run.class_names, plain=plain))


@app.command()
def compare(
    path: PathArg = None,
    from_epoch: FromOpt = None,
    to_epoch: ToOpt = None,
    fmt: FormatOpt = Format.table,
    top: TopOpt = 10,
    output: OutputOpt = None,
    split: SplitOpt = None,
    label_col: LabelColOpt = None,
    id_col: IdColOpt = None,
    scores: ScoresOpt = None,
    renormalize: RenormOpt = False,
    class_names: ClassNamesOpt = None,
    debug: DebugOpt = False,
    jobs: JobsOpt = 0,
) -> None:
    """Who made the mean loss change between two epochs: outcome groups, samples, classes.

    Default: from the lowest-loss epoch to the last. Example: lossacc compare --from 12 --to last preds/
    """
    with cli_errors(debug):
        options = read_options(label_col, id_col, scores, split, renormalize)
        run = _load(resolve_path(path), fmt, class_names, options, jobs)
        a = run.resolve_epoch(from_epoch or "best", option="--from")
        b = run.resolve_epoch(to_epoch or "last", option="--to")
        c = compare_epochs(run, a, b, top=top)
        _respond("compare", fmt, output, lambda: comparison_json(c),
                 lambda plain: compare_renderable(c, run.class_names, top=top, plain=plain))


@app.command()
def calibration(
    path: PathArg = None,
    epoch: EpochOpt = "last",
    fmt: FormatOpt = Format.table,
    top: TopOpt = 10,
    output: OutputOpt = None,
    split: SplitOpt = None,
    label_col: LabelColOpt = None,
    id_col: IdColOpt = None,
    scores: ScoresOpt = None,
    renormalize: RenormOpt = False,
    class_names: ClassNamesOpt = None,
    debug: DebugOpt = False,
    jobs: JobsOpt = 0,
) -> None:
    """Reliability table and diagram, ECE variants, temperature T* and the calibration/refinement split.

    Example: lossacc calibration --epoch best preds/
    """
    with cli_errors(debug):
        options = read_options(label_col, id_col, scores, split, renormalize)
        run = _load(resolve_path(path), fmt, class_names, options, jobs)
        rep = calibration_report(run, run.resolve_epoch(epoch, option="--epoch"))
        _respond("calibration", fmt, output, lambda: calibration_json(rep),
                 lambda plain: calibration_renderable(rep, plain=plain))


class CheckFormat(str, Enum):
    table = "table"
    json = "json"
    github = "github"
    junit = "junit"


@app.command()
def check(
    path: PathArg = None,
    max_loss: Annotated[Optional[str], typer.Option("--max-loss", help="Fail if the loss (nats) exceeds this.")] = None,
    min_accuracy: Annotated[
        Optional[str], typer.Option("--min-accuracy", help="Fail if accuracy is below this (0.9 or 90%).")
    ] = None,
    max_ece: Annotated[Optional[str], typer.Option("--max-ece", help="Fail if ECE (15 bins) exceeds this.")] = None,
    max_loss_rise: Annotated[
        Optional[str],
        typer.Option("--max-loss-rise", help="Fail if the loss is above its minimum by more than this (nats, or 5%)."),
    ] = None,
    max_top1pct_share: Annotated[
        Optional[str], typer.Option("--max-top1pct-share", help="Fail if the top 1% of samples carry more of the loss.")
    ] = None,
    max_above_baseline: Annotated[
        Optional[str],
        typer.Option("--max-above-baseline", help="Fail if loss - H(prior) exceeds this (nats; 0: never above chance)."),
    ] = None,
    fail_on: Annotated[
        Optional[list[str]], typer.Option("--fail-on", help="Fail if the diagnosis gives this verdict (repeatable).")
    ] = None,
    epoch: Annotated[
        Optional[str], typer.Option("--epoch", "-e", help="Epoch the rules look at: a number, best or last (default).")
    ] = None,
    config: Annotated[
        Optional[Path], typer.Option("--config", help="Rules file (lossacc.toml or pyproject.toml).")
    ] = None,
    fmt: Annotated[CheckFormat, typer.Option("--format", "-f", help="table, json, github or junit.")] = CheckFormat.table,
    output: OutputOpt = None,
    split: SplitOpt = None,
    label_col: LabelColOpt = None,
    id_col: IdColOpt = None,
    scores: ScoresOpt = None,
    renormalize: RenormOpt = False,
    class_names: ClassNamesOpt = None,
    debug: DebugOpt = False,
    jobs: JobsOpt = 0,
) -> None:
    """CI gate: evaluate rules and exit 0 (all pass), 1 (a rule failed) or 2 (cannot judge).

    Rules come from options, or from [tool.lossacc.check] in the nearest pyproject.toml or [check] in
    lossacc.toml (options override). Example: lossacc check preds/ --max-loss-rise 5% --min-accuracy 0.9
    """
    with cli_errors(debug):
        cfg = _check_config(config, epoch, max_loss, min_accuracy, max_ece, max_loss_rise, max_top1pct_share,
                            max_above_baseline, fail_on)
        options = read_options(label_col, id_col, scores, split, renormalize)
        run = _load(resolve_path(path), Format.json, class_names, options, jobs)
        verdicts: tuple[str, ...] = ()
        if cfg.fail_on:
            ov = overview(run.summaries)
            dx = diagnose(run, training_dynamics(run), ov.best_loss_epoch, run.records[-1].epoch)
            verdicts = tuple(v.name for v in dx.verdicts)
        result = evaluate(run, cfg, verdicts)
        if fmt is CheckFormat.json:
            emit(None, dumps(document("check", check_json(result, run.notes))), output=output)
        elif fmt is CheckFormat.github:
            emit(None, check_github(result), output=output)
        elif fmt is CheckFormat.junit:
            emit(None, check_junit(result), output=output)
        else:
            plain = bool(output) or is_plain(stdout_console())
            emit(check_renderable(result, plain=plain), None, output=output)
    raise typer.Exit(0 if result.passed else 1)


def _check_config(config_path, epoch, max_loss, min_accuracy, max_ece, max_loss_rise, max_top1pct_share,
                  max_above_baseline, fail_on) -> CheckConfig:
    source, table = load_config(config_path)
    where = str(source) if source else "options"

    def pick(option_value, key):
        return option_value if option_value is not None else table.get(key)

    def threshold(value, key, option, *, relative=False, fraction=False):
        if value is None:
            return None
        name = option if value is not table.get(key) else f"{where}: {key}"
        return parse_fraction(name, value) if fraction else parse_threshold(name, value, allow_relative=relative)

    verdict_names = list(fail_on) if fail_on else list(table.get("fail_on", []))
    unknown = [v for v in verdict_names if v not in VERDICTS]
    if unknown:
        raise UsageError(f"--fail-on {unknown[0]!r} is not a verdict; verdicts: {', '.join(VERDICTS)}")
    cfg = CheckConfig(
        epoch=str(pick(epoch, "epoch") or "last"),
        max_loss=threshold(pick(max_loss, "max_loss"), "max_loss", "--max-loss"),
        min_accuracy=threshold(pick(min_accuracy, "min_accuracy"), "min_accuracy", "--min-accuracy", fraction=True),
        max_ece=threshold(pick(max_ece, "max_ece"), "max_ece", "--max-ece"),
        max_loss_rise=threshold(pick(max_loss_rise, "max_loss_rise"), "max_loss_rise", "--max-loss-rise", relative=True),
        max_top1pct_share=threshold(pick(max_top1pct_share, "max_top1pct_share"), "max_top1pct_share",
                                    "--max-top1pct-share", fraction=True),
        max_above_baseline=threshold(pick(max_above_baseline, "max_above_baseline"), "max_above_baseline",
                                     "--max-above-baseline"),
        fail_on=tuple(verdict_names),
    )
    if cfg.n_rules == 0:
        raise UsageError(
            "check: no rules given; pass e.g. --max-loss-rise 5% or --min-accuracy 0.9, or put them in "
            "[tool.lossacc.check] of pyproject.toml"
        )
    return cfg


def main() -> None:
    app()
