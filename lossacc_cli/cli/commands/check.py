"""`lossacc check`: the CI gate."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from lossacc_cli.cli.common import cli_errors
from lossacc_cli.cli.options import Shared, shared_options


class CheckFormat(str, Enum):
    table = "table"
    json = "json"
    github = "github"
    junit = "junit"
    markdown = "markdown"


Rule = Optional[str]


@shared_options(fmt=False)
def check(
    opts: Shared,
    max_loss: Annotated[Rule, typer.Option("--max-loss", help="Fail if the loss (nats) exceeds this.")] = None,
    min_accuracy: Annotated[
        Rule, typer.Option("--min-accuracy", help="Fail if accuracy is below this (0.9 or 90%).")
    ] = None,
    max_ece: Annotated[Rule, typer.Option("--max-ece", help="Fail if ECE (15 bins) exceeds this.")] = None,
    max_loss_rise: Annotated[
        Rule,
        typer.Option("--max-loss-rise", help="Fail if the loss is above its minimum by more than this (nats, or 5%)."),
    ] = None,
    max_top1pct_share: Annotated[
        Rule, typer.Option("--max-top1pct-share", help="Fail if the top 1% of samples carry more of the loss.")
    ] = None,
    max_above_baseline: Annotated[
        Rule,
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
    fmt: Annotated[CheckFormat, typer.Option("--format", "-f", help="table, json, github, junit or markdown.")] = CheckFormat.table,
) -> None:
    """CI gate: evaluate rules and exit 0 (all pass), 1 (a rule failed) or 2 (cannot judge).

    Rules come from options, or from [tool.lossacc.check] in the nearest pyproject.toml or [check] in
    lossacc.toml (options override). Example: lossacc check preds/ --max-loss-rise 5% --min-accuracy 0.9
    """
    with cli_errors(opts.debug):
        from lossacc_cli.analysis.check import evaluate
        from lossacc_cli.cli.loading import load
        from lossacc_cli.cli.output import emit, is_plain, stdout_console
        from lossacc_cli.render.bodies import check_json
        from lossacc_cli.render.check import check_github, check_junit, check_markdown, check_renderable
        from lossacc_cli.render.jsonout import SHOWN_AS_IT_IS, document, dump_parts
        from lossacc_cli.report import analyze_run

        cfg, source = _check_config(config, epoch, max_loss, min_accuracy, max_ece, max_loss_rise,
                                    max_top1pct_share, max_above_baseline, fail_on)
        run = load(opts, progress=False, inputs=(source,))
        verdicts = analyze_run(run).diagnosis.names if cfg.fail_on else ()
        result = evaluate(run, cfg, verdicts)
        output = opts.output
        if fmt is CheckFormat.json:
            emit(None, dump_parts(document("check", check_json(result, run.notes))), output=output,
                 inert=SHOWN_AS_IT_IS)
        elif fmt is CheckFormat.github:
            emit(None, check_github(result), output=output)
        elif fmt is CheckFormat.junit:
            emit(None, check_junit(result), output=output)
        elif fmt is CheckFormat.markdown:
            emit(None, check_markdown(result), output=output)
        else:
            plain = bool(output) or is_plain(stdout_console())
            emit(check_renderable(result, plain=plain), None, output=output)
    raise typer.Exit(0 if result.passed else 1)


def _check_config(config_path, epoch, max_loss, min_accuracy, max_ece, max_loss_rise, max_top1pct_share,
                  max_above_baseline, fail_on):
    from lossacc_cli.analysis.causes import VERDICTS
    from lossacc_cli.analysis.check import CheckConfig, parse_fraction, parse_threshold
    from lossacc_cli.cli.config import load_config
    from lossacc_cli.errors import UsageError

    source, table = load_config(config_path)
    where = str(source) if source else "options"

    def pick(option_value, key):
        return option_value if option_value is not None else table.get(key)

    def threshold(value, key, option, *, relative=False, fraction=False, signed=False):
        if value is None:
            return None
        name = option if value is not table.get(key) else f"{where}: {key}"
        if fraction:
            return parse_fraction(name, value)
        parsed = parse_threshold(name, value, allow_relative=relative)
        if parsed.value < 0 and not signed:  # a loss, a rise, an ECE: never below 0
            raise UsageError(f"{name}: must be 0 or more, not {parsed.text!r} (the rule could never pass)")
        return parsed

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
        # below 0 means "at least this far below chance": a rule that can pass
        max_above_baseline=threshold(pick(max_above_baseline, "max_above_baseline"), "max_above_baseline",
                                     "--max-above-baseline", signed=True),
        fail_on=tuple(verdict_names),
    )
    if cfg.n_rules == 0:
        raise UsageError(
            "check: no rules given; pass e.g. --max-loss-rise 5% or --min-accuracy 0.9, or put them in "
            "[tool.lossacc.check] of pyproject.toml"
        )
    return cfg, source
