"""Run one nightly task in a fresh Python process, so a long-lived worker's memory stays flat.

TensorFlow does not give back the memory of the models a process has built:
``keras.backend.clear_session()`` after each task still leaves about 40 MB per
fine-tune (measured on this machine, 2026-12-05), and a Dask worker that
fine-tuned 75 tickers in a refit night grew to 7 GB (``bench/nightly_scale.md``). A task that trains
therefore runs in a child process (``python -m forecaster.jobs.isolated``): the
job goes in on stdin and the result comes back on stdout, both pickled, and the
child's memory is returned to the system when it exits. The price is the
child's start (Python, NumPy, TensorFlow: a few seconds per task). Tasks that
only serve a champion run NumPy on saved weights and stay in the worker.

Only the nightly job's own functions can be run this way (:data:`FUNCTIONS`).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from typing import Any

#: What a child may run: a name -> "module:function" of the nightly job's tasks.
FUNCTIONS = {
    "challenge": "forecaster.jobs.protocol:run_challenge",
    "universe": "forecaster.jobs.universe:fit_universe",
}


class IsolatedTaskError(RuntimeError):
    """The child process died before returning a result (killed, out of memory, ...)."""


def run_isolated(name: str, job: Any) -> Any:
    """``FUNCTIONS[name](job)`` in a fresh Python process; its return value.

    Raises
    ------
    IsolatedTaskError
        The child ended without a result; its exit code and the end of its
        stderr are in the message.
    """
    if name not in FUNCTIONS:
        raise ValueError(f"unknown isolated task {name!r}; expected one of {sorted(FUNCTIONS)}")
    completed = subprocess.run(
        [sys.executable, "-m", "forecaster.jobs.isolated", name],
        input=pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL),
        capture_output=True,
        check=False,
    )
    if completed.returncode != 0 or not completed.stdout:
        tail = completed.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise IsolatedTaskError(
            f"the task's process ended with exit code {completed.returncode} before returning "
            f"a result: {' | '.join(tail) or 'no output'}"
        )
    return pickle.loads(completed.stdout)


def _main() -> None:
    import importlib
    import os

    name = sys.argv[1]
    module, function = FUNCTIONS[name].split(":")
    job = pickle.load(sys.stdin.buffer)
    # Whatever the task or a C library prints goes to stderr: stdout carries the result only.
    result_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    result = getattr(importlib.import_module(module), function)(job)
    payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    with os.fdopen(result_fd, "wb") as out:
        out.write(payload)


if __name__ == "__main__":
    _main()
