"""The ``forecast`` command: parse, call the library, render. Nothing else.

Every :class:`~forecaster.errors.ForecasterError` becomes one ``error: ...``
line on stderr and exit code 1 (``--debug`` shows the traceback instead).
TensorFlow is imported only by commands that build or load a model.

Modules: :mod:`~forecaster.cli.app` (the root group and its context),
:mod:`~forecaster.cli.options` (shared options), :mod:`~forecaster.cli.output`
(rendering helpers), and one module per area of commands: ``data`` (fetch,
realized), ``train`` (train, compare), ``predict``, ``models``, ``evaluate``
``jobs`` (nightly, history) and ``report``.
"""

from __future__ import annotations

from forecaster.cli import data, evaluate, jobs, models, predict, report, train
from forecaster.cli.app import cli

for command in (
    data.fetch,
    data.realized,
    train.train,
    train.compare,
    predict.predict,
    models.models,
    evaluate.evaluate,
    jobs.nightly,
    jobs.history,
    report.report,
):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="forecast")


__all__ = ["cli", "main"]
