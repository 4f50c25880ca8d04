"""The root ``forecast`` group: ``--home``, ``--debug``, ``--version`` and one-line errors.

The root group puts an :class:`AppContext` on ``ctx.obj``; commands take it with
:data:`pass_app` instead of resolving the home folder themselves.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from forecaster import __version__
from forecaster.errors import ForecasterError

if TYPE_CHECKING:
    from forecaster.models.registry import ModelRegistry
    from forecaster.settings import Settings

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@dataclass
class AppContext:
    """What every command shares: the ``--home`` and ``--debug`` given to the root group.

    ``settings`` and ``registry`` are built on first use, once per invocation, so
    ``forecast CMD --help`` resolves nothing.
    """

    home: str | None = None
    debug: bool = False
    home_origin: str = "--home"

    @functools.cached_property
    def settings(self) -> Settings:
        """Paths under ``--home``, else ``$FORECAST_HOME``, else the current folder.

        Keras and matplotlib are pointed at folders under it too, so a command
        writes nothing outside the home (and the outputs it is given).
        """
        from forecaster.settings import Settings

        settings = Settings.resolve(self.home, self.home_origin)
        settings.export_library_dirs()
        return settings

    @functools.cached_property
    def registry(self) -> ModelRegistry:
        """The model registry under the home's ``models/``."""
        from forecaster.models.registry import ModelRegistry

        return ModelRegistry(self.settings.models_dir)


#: Decorator passing the invocation's :class:`AppContext` as a command's first argument.
pass_app = click.make_pass_decorator(AppContext, ensure=True)


class ForecastGroup(click.Group):
    """A click group that turns domain errors into one clean line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ForecasterError as exc:
            app = ctx.find_object(AppContext)
            if app is not None and app.debug:
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


WORKFLOW = """\b
Workflow:
  forecast fetch --ticker SPY        fill the price cache (offline: the bundled sample)
  forecast train --ticker SPY        fit an LSTM, save a version, make it the champion
  forecast predict --ticker SPY      the champion's next forecast, with VaR/ES
  forecast evaluate --ticker SPY     score it against the baselines on held-out data
  forecast nightly --tickers SPY,QQQ retrain, compare, promote, record (schedule it)
  forecast history --score           the issued forecasts against what was realized
"""


@click.group(cls=ForecastGroup, context_settings=CONTEXT_SETTINGS, epilog=WORKFLOW)
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    envvar="FORECAST_HOME",
    help="Folder holding data/ and models/ (default: $FORECAST_HOME or the current folder).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(__version__, prog_name="forecast")
@click.pass_context
def cli(ctx: click.Context, home: str | None, debug: bool) -> None:
    """Forecast realized volatility with LSTMs whose initial state is pluggable.

    \b
    Example:
      forecast fetch --ticker SPY
      forecast realized --ticker SPY --estimator yang-zhang --format csv
    """
    from_environment = ctx.get_parameter_source("home") is click.core.ParameterSource.ENVIRONMENT
    origin = "$FORECAST_HOME" if from_environment else "--home"
    ctx.obj = AppContext(home=home, debug=debug, home_origin=origin)
