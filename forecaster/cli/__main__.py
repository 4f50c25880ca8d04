"""``python -m forecaster.cli``: the same as the ``forecast`` console script."""

from forecaster.cli import main

main()
