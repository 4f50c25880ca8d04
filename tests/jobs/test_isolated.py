"""Nightly tasks in a fresh process: results come back whole, a dying child is one clear error."""

from __future__ import annotations

import pytest

from forecaster.jobs.isolated import IsolatedTaskError, run_isolated
from forecaster.jobs.universe import UniverseJob, UniverseResult
from tests.conftest import TINY, make_prices


def test_a_task_runs_in_a_child_and_its_result_comes_back(tmp_path):
    from forecaster.data.loader import load_prices
    from forecaster.settings import Settings
    from tests.conftest import write_csv

    write_csv(tmp_path / "A.csv", make_prices(120, seed=1))
    data = load_prices(
        "AAA", source="csv", csv_path=tmp_path / "A.csv", settings=Settings.resolve(tmp_path)
    )
    # one ticker: the refit refuses it (a universal model needs two) inside the child
    result = run_isolated("universe", UniverseJob((data,), TINY.to_dict(), 40, None))
    assert isinstance(result, UniverseResult)
    assert result.version is None and "at least two different tickers" in result.error


def test_a_child_that_dies_is_an_error_naming_its_exit(tmp_path):
    with pytest.raises(IsolatedTaskError, match=r"exit code 1 before returning a result: .*Error"):
        run_isolated("challenge", None)  # run_challenge(None) raises in the child
    with pytest.raises(ValueError, match="unknown isolated task 'rm'"):
        run_isolated("rm", None)


class _Future:
    def __init__(self, key: str) -> None:
        self.key = key

    def result(self):
        return "done"

    def release(self) -> None:
        pass


class _Client:
    """Records what the nightly driver submits instead of running it."""

    def __init__(self) -> None:
        self.submitted: list[tuple[object, tuple]] = []

    def nthreads(self):
        return {"w1": 1, "w2": 1}

    def submit(self, function, *args, key, pure):
        self.submitted.append((function, args))
        return _Future(key)


def _job(universal):
    from types import SimpleNamespace

    return SimpleNamespace(
        task=SimpleNamespace(ticker="AAA", universal=universal), champion=object()
    )


def test_on_dask_training_tasks_and_the_refit_run_in_a_child_serving_tasks_do_not():
    from types import SimpleNamespace

    from forecaster.jobs import nightly
    from forecaster.jobs.universe import fit_universe

    serving = SimpleNamespace(refit=False)  # a --universal night without a refit
    refit = SimpleNamespace(refit=True)
    client = _Client()
    runner = nightly._OnDask(client, SimpleNamespace(as_completed=lambda: set()), isolate=True)
    for index, universal in enumerate((None, refit, serving)):
        runner.submit(index, _job(universal))
    assert runner.run_one(fit_universe, "job") == "done"
    functions = [function for function, _ in client.submitted]
    assert functions[:3] == [
        nightly._run_challenge_isolated,  # a per-ticker network trains
        nightly._run_challenge_isolated,  # a refit night fine-tunes
        nightly.run_challenge,  # a champion serves from saved weights: stays in the worker
    ]
    assert client.submitted[3] == (run_isolated, ("universe", "job"))

    plain = _Client()
    runner = nightly._OnDask(plain, SimpleNamespace(as_completed=lambda: set()), isolate=False)
    job = _job(None)
    runner.submit(0, job)
    runner.run_one(fit_universe, "job")
    assert plain.submitted == [(nightly.run_challenge, (job,)), (fit_universe, ("job",))]
