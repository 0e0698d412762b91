"""Stop a long fit from inside: a job's cancel and time-limit check, called between boosting rounds.

Folds, trials and AutoML candidates already check between them; one XGBoost fit of a thousand rounds
can take minutes, so its estimator carries ``CheckEveryRound``, which calls the check installed by the
running job (``interruptible``) after every round. The check raises (JobCancelled, JobTimedOut) and the
fit stops there. Outside a job nothing is installed and the callback does nothing; it keeps no state,
so it is safe inside saved pipelines (artifacts.TRUSTED_PROJECT_CLASSES) and costs nothing at prediction.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from xgboost.callback import TrainingCallback

_installed = threading.local()  # per thread: the job's own thread calls fit


@contextmanager
def interruptible(check: Callable[[], None]) -> Iterator[None]:
    """Within the block, fits on this thread call ``check()`` between boosting rounds."""
    previous = getattr(_installed, "check", None)
    _installed.check = check
    try:
        yield
    finally:
        _installed.check = previous


def checkpoint() -> None:
    check = getattr(_installed, "check", None)
    if check is not None:
        check()


class CheckEveryRound(TrainingCallback):
    """XGBoost callback: the job's check after each boosting round."""

    def after_iteration(self, model, epoch: int, evals_log) -> bool:
        checkpoint()
        return False  # never stops training by itself
