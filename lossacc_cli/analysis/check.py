"""CI gate rules: each compares one measured number of the run with a user threshold."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from lossacc_cli.analysis.overview import overview
from lossacc_cli.analysis.run import Run
from lossacc_cli.errors import UsageError


@dataclass(frozen=True)
class Threshold:
    """A threshold as given: ``value`` plus whether it was relative (``"5%"``)."""

    value: float
    relative: bool = False
    text: str = ""


def parse_threshold(option: str, text: object, *, allow_relative: bool) -> Threshold:
    """``0.5`` or ``"0.5"``; with ``allow_relative``, ``"5%"`` means 0.05 relative."""
    raw = str(text).strip()
    relative = raw.endswith("%")
    number = raw[:-1] if relative else raw
    try:
        value = float(number)
    except ValueError:
        raise UsageError(f"{option}: expected a number{' or a percentage' if allow_relative else ''}, not {raw!r}") from None
    if not math.isfinite(value):
        raise UsageError(f"{option}: expected a finite number, not {raw!r}")
    if relative:
        if not allow_relative:
            raise UsageError(f"{option}: a percentage is not accepted here, give a number ({raw!r})")
        value /= 100.0
    return Threshold(value, relative, raw)


def parse_fraction(option: str, text: object) -> Threshold:
    """An accuracy or a share: ``0.9`` or ``"90%"``, in [0, 1]."""
    t = parse_threshold(option, text, allow_relative=True)
    if not 0.0 <= t.value <= 1.0:
        raise UsageError(f"{option}: expected a fraction in [0, 1] or a percentage, not {t.text!r}")
    return Threshold(t.value, False, t.text)


@dataclass(frozen=True)
class CheckConfig:
    """The rules to evaluate; None means the rule is off."""

    epoch: str = "last"
    max_loss: Threshold | None = None
    min_accuracy: Threshold | None = None
    max_ece: Threshold | None = None
    max_loss_rise: Threshold | None = None
    max_top1pct_share: Threshold | None = None
    max_above_baseline: Threshold | None = None
    fail_on: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n_rules(self) -> int:
        values = (self.max_loss, self.min_accuracy, self.max_ece, self.max_loss_rise,
                  self.max_top1pct_share, self.max_above_baseline)
        return sum(v is not None for v in values) + len(self.fail_on)


@dataclass(frozen=True)
class RuleResult:
    """One rule: the measured ``value`` (None when it cannot be measured), the ``threshold`` as the
    user gave it, ``passed``, and a one-line ``message`` with units and the epoch."""

    rule: str
    value: float | None
    threshold: float | str
    passed: bool
    message: str


@dataclass(frozen=True)
class CheckResult:
    path: str
    epoch: int
    rules: tuple[RuleResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rules)


def _upper(rule: str, value: float, limit: Threshold, what: str) -> RuleResult:
    ok = value <= limit.value
    verb = "<=" if ok else ">"
    return RuleResult(rule, value, limit.value, ok, f"{what} {verb} {limit.text}")


def evaluate(run: Run, config: CheckConfig, verdicts: tuple[str, ...] = ()) -> CheckResult:
    """Evaluate every configured rule at ``config.epoch`` (loss rise: that epoch vs the minimum)."""
    epoch = run.resolve_epoch(config.epoch)
    s = run.record(epoch).summary
    by_epoch = {e.epoch: e for e in run.summaries}
    best = by_epoch[overview(run.summaries).best_loss_epoch]
    out: list[RuleResult] = []
    if config.max_loss is not None:
        out.append(_upper("max-loss", s.loss, config.max_loss, f"loss {s.loss:.4f} nats at epoch {epoch}"))
    if config.min_accuracy is not None:
        ok = s.accuracy >= config.min_accuracy.value
        out.append(RuleResult("min-accuracy", s.accuracy, config.min_accuracy.value, ok,
                              f"accuracy {100 * s.accuracy:.2f}% at epoch {epoch} {'>=' if ok else '<'} "
                              f"{config.min_accuracy.text}"))
    if config.max_ece is not None:
        out.append(_upper("max-ece", s.ece, config.max_ece, f"ECE (15 bins) {s.ece:.4f} at epoch {epoch}"))
    if config.max_loss_rise is not None:
        rise = s.loss - best.loss
        if config.max_loss_rise.relative:
            value = rise / best.loss if best.loss > 0 else (0.0 if rise == 0 else math.inf)
            what = f"loss rise {100 * value:.2f}% (epoch {best.epoch} {best.loss:.4f} -> epoch {epoch} {s.loss:.4f} nats)"
        else:
            value = rise
            what = f"loss rise {rise:.4f} nats (epoch {best.epoch} {best.loss:.4f} -> epoch {epoch} {s.loss:.4f})"
        out.append(_upper("max-loss-rise", value, config.max_loss_rise, what))
    if config.max_top1pct_share is not None:
        share = s.top1pct_share
        if math.isnan(share):
            out.append(RuleResult("max-top1pct-share", None, config.max_top1pct_share.value, True,
                                  f"top-1% loss share undefined at epoch {epoch} (every loss is 0)"))
        else:
            out.append(_upper("max-top1pct-share", share, config.max_top1pct_share,
                              f"top 1% of samples carry {100 * share:.2f}% of the loss at epoch {epoch}"))
    if config.max_above_baseline is not None:
        excess = s.loss - s.baseline_loss
        out.append(_upper("max-above-baseline", excess, config.max_above_baseline,
                          f"loss minus chance baseline {excess:+.4f} nats at epoch {epoch} "
                          f"(loss {s.loss:.4f}, H(prior) {s.baseline_loss:.4f})"))
    for name in config.fail_on:
        hit = name in verdicts
        out.append(RuleResult(f"fail-on {name}", None, name, not hit,
                              f"verdict '{name}' {'given' if hit else 'not given'} by the diagnosis"))
    return CheckResult(path=run.path, epoch=epoch, rules=tuple(out))
