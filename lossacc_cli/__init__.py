"""lossacc: explain why validation loss rises while validation accuracy rises too.

>>> import lossacc_cli as lossacc                  # doctest: +SKIP
>>> report = lossacc.analyze("preds/")             # doctest: +SKIP
>>> report.headline, report.epochs_frame()         # doctest: +SKIP

``analyze(path)`` reads a run and returns the :class:`~lossacc_cli.report.AnalyzeReport` that
`lossacc analyze` renders; ``analyze_run(run)`` does the same for a run already loaded with
``load_run``. Imported on first use, so ``import lossacc_cli`` stays instant.
"""

__version__ = "0.1.0"

_LAZY = {
    "analyze": ("lossacc_cli.report", "analyze"),
    "analyze_run": ("lossacc_cli.report", "analyze_run"),
    "AnalyzeReport": ("lossacc_cli.report", "AnalyzeReport"),
    "Thresholds": ("lossacc_cli.analysis.thresholds", "Thresholds"),
    "load_run": ("lossacc_cli.analysis.run", "load_run"),
    "ReadOptions": ("lossacc_cli.readers.model", "ReadOptions"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lossacc_cli' has no attribute {name!r}")
