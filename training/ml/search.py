"""Hyperparameter search: a registry of searchers sharing one cross-validation loop.

The loop fits fold by fold (no parallel ``cross_val_score``) and calls
``progress`` before every fold, so a cancel or timeout raised there stops the
search between two fits. Those two exceptions always propagate; any other
error inside a trial marks that trial "failed" and the search goes on.
"""
from __future__ import annotations

import itertools
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import optuna
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline

from training.ml.algorithms import Algorithm
from training.ml.errors import JobCancelled, JobTimedOut, MLInputError
from training.ml.metrics import Metric
from training.ml.problem import ProblemType
from training.ml.space import Distribution
from training.ml.threads import limit_threads

ProgressFn = Callable[[str, float], None]

COMPLETE, PRUNED, FAILED = "complete", "pruned", "failed"


def no_progress(stage: str, fraction: float) -> None:
    """A progress callback that ignores everything."""


class SearchFailed(MLInputError):
    """No trial finished; the message carries the first errors."""


def build_pipeline(preprocessor: ColumnTransformer, estimator) -> Pipeline:
    """The one pipeline shape used everywhere: preprocessing, then the model."""
    return Pipeline([("preprocess", clone(preprocessor)), ("model", estimator)])


@dataclass
class SearchTask:
    """Everything a searcher needs; ``X``/``y`` are the training part only."""

    X: pd.DataFrame
    y: pd.Series
    problem_type: ProblemType
    algorithm: Algorithm
    metric: Metric
    preprocessor: ColumnTransformer
    fixed_params: dict[str, Any] = field(default_factory=dict)
    n_trials: int = 20
    time_limit_s: float | None = None
    cv_folds: int = 5
    random_state: int = 42
    n_threads: int = 1
    progress: ProgressFn = no_progress

    @property
    def space(self) -> dict[str, Distribution]:
        """The algorithm's search space minus the parameters the user fixed."""
        return {k: v for k, v in self.algorithm.search_space.items() if k not in self.fixed_params}

    @cached_property
    def folds(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The same folds for every trial, so trials are compared on equal terms."""
        splitter_class = StratifiedKFold if self.problem_type.is_classification else KFold
        splitter = splitter_class(n_splits=self.cv_folds, shuffle=True, random_state=self.random_state)
        return list(splitter.split(self.X, self.y))

    def make_pipeline(self, params: dict[str, Any]) -> Pipeline:
        estimator = self.algorithm.build(self.problem_type, params, n_threads=self.n_threads,
                                         random_state=self.random_state)
        return build_pipeline(self.preprocessor, estimator)


@dataclass
class SearchResult:
    trials: list[dict]
    best: dict
    notes: list[str] = field(default_factory=list)

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best["params"])


class _Pruned(Exception):
    """Raised from a fold callback to stop a hopeless trial."""


FoldCallback = Callable[[int, float], None]


class TrialRunner:
    """Runs trials one after another, numbering and recording them."""

    def __init__(self, task: SearchTask, planned: int):
        self.task = task
        self.planned = max(1, planned)
        self.trials: list[dict] = []
        self.started = time.monotonic()

    def out_of_time(self) -> bool:
        """True once the time limit has passed and at least one trial has finished."""
        limit = self.task.time_limit_s
        return (limit is not None and time.monotonic() - self.started >= limit
                and any(t["state"] == COMPLETE for t in self.trials))

    def run(self, params: dict[str, Any], on_fold: FoldCallback | None = None) -> dict:
        """Cross-validate one parameter set; ``on_fold(step, running_mean)`` may prune it."""
        task, number = self.task, len(self.trials) + 1
        params = {**task.fixed_params, **params}
        folds = task.folds
        scores: list[float] = []
        state, error = COMPLETE, None
        started = time.perf_counter()
        try:
            for j, (train_idx, valid_idx) in enumerate(folds):
                task.progress(f"trial {number}/{self.planned}, fold {j + 1}/{len(folds)}",
                              min(1.0, (number - 1 + j / len(folds)) / self.planned))
                pipeline = task.make_pipeline(params)
                with limit_threads(task.n_threads):
                    pipeline.fit(task.X.iloc[train_idx], task.y.iloc[train_idx])
                    score = task.metric.score(pipeline, task.X.iloc[valid_idx], task.y.iloc[valid_idx])
                if not math.isfinite(score):
                    raise ValueError(f"{task.metric.key} is undefined on fold {j + 1}")
                scores.append(score)
                if on_fold is not None and j < len(folds) - 1:
                    on_fold(j, float(np.mean(scores)))
        except (JobCancelled, JobTimedOut):
            raise
        except _Pruned:
            state = PRUNED
        except Exception as exc:  # one bad parameter set must not end the search
            state, error = FAILED, f"{type(exc).__name__}: {exc}"
        record = {
            "number": number,
            "params": params,
            "cv_mean": float(np.mean(scores)) if scores and state == COMPLETE else None,
            "cv_std": float(np.std(scores)) if scores and state == COMPLETE else None,
            "fold_scores": [float(s) for s in scores],
            "state": state,
            "fit_seconds": round(time.perf_counter() - started, 3),
            "error": error,
        }
        self.trials.append(record)
        return record

    def result(self, notes: list[str]) -> SearchResult:
        complete = [t for t in self.trials if t["state"] == COMPLETE]
        if not complete:
            errors = sorted({t["error"] for t in self.trials if t["error"]})[:3]
            raise SearchFailed("every trial failed, so no model could be trained; errors: " + "; ".join(errors))
        metric = self.task.metric
        best = complete[0]
        for trial in complete[1:]:
            if metric.is_better(trial["cv_mean"], best["cv_mean"]):
                best = trial
        notes = notes + [f"Best trial: {best['number']} of {len(self.trials)} "
                         f"({metric.key} {best['cv_mean']:.4g} ± {best['cv_std']:.2g} over {len(best['fold_scores'])} folds)."]
        return SearchResult(trials=self.trials, best=best, notes=notes)


def _time_note(runner: TrialRunner, planned: int) -> list[str]:
    done = len(runner.trials)
    if done < planned:
        return [f"Stopped after {done} of {planned} trials: the search time limit "
                f"({runner.task.time_limit_s:g} s) was reached."]
    return []


class Searcher(ABC):
    key: ClassVar[str]
    label: ClassVar[str]

    @abstractmethod
    def run(self, task: SearchTask) -> SearchResult: ...

    def _run_list(self, task: SearchTask, candidates: list[dict[str, Any]], notes: list[str]) -> SearchResult:
        runner = TrialRunner(task, len(candidates))
        for params in candidates:
            if runner.out_of_time():
                break
            runner.run(params)
        return runner.result(notes + _time_note(runner, len(candidates)))


SEARCHERS: dict[str, Searcher] = {}


def register_searcher(cls: type[Searcher]) -> type[Searcher]:
    SEARCHERS[cls.key] = cls()
    return cls


def get_searcher(key: str) -> Searcher:
    try:
        return SEARCHERS[key]
    except (KeyError, TypeError):
        raise MLInputError(f"search '{key}' is unknown; choose one of: {', '.join(SEARCHERS)}",
                           field="search") from None


def _no_space_note(task: SearchTask) -> list[str]:
    return [f"{task.algorithm.label} has no hyperparameters left to tune; it was cross-validated once."]


@register_searcher
class NoSearch(Searcher):
    key, label = "none", "No search (default parameters)"

    def run(self, task: SearchTask) -> SearchResult:
        return self._run_list(task, [{}], [])


@register_searcher
class GridSearch(Searcher):
    key, label = "grid", "Grid search"

    def run(self, task: SearchTask) -> SearchResult:
        space = task.space
        if not space:
            return self._run_list(task, [{}], _no_space_note(task))
        names = list(space)
        grid = [dict(zip(names, values)) for values in itertools.product(*(space[n].grid() for n in names))]
        notes = []
        if len(grid) > task.n_trials:
            rng = np.random.default_rng(task.random_state)
            picked = sorted(rng.choice(len(grid), size=task.n_trials, replace=False))
            notes.append(f"The grid has {len(grid)} combinations; {task.n_trials} of them, chosen at random, "
                         f"were evaluated (raise n_trials to cover more).")
            grid = [grid[i] for i in picked]
        return self._run_list(task, grid, notes)


def _defaults_in_space(task: SearchTask) -> dict[str, Any]:
    """The algorithm's default values for the searched parameters (tried first as a baseline)."""
    return {name: task.algorithm.defaults[name] for name in task.space if name in task.algorithm.defaults}


@register_searcher
class RandomSearch(Searcher):
    key, label = "random", "Random search"

    def run(self, task: SearchTask) -> SearchResult:
        space = task.space
        if not space:
            return self._run_list(task, [{}], _no_space_note(task))
        rng = np.random.default_rng(task.random_state)
        candidates = [_defaults_in_space(task)]
        candidates += [{name: dist.sample(rng) for name, dist in space.items()} for _ in range(task.n_trials - 1)]
        return self._run_list(task, candidates, ["Trial 1 uses the default parameters as a baseline."])


_OPTUNA_STATES = {PRUNED: optuna.trial.TrialState.PRUNED, FAILED: optuna.trial.TrialState.FAIL}


@register_searcher
class BayesianSearch(Searcher):
    """Optuna's TPE sampler; a median pruner stops trials whose early folds lag behind."""

    key, label = "bayesian", "Bayesian optimisation (Optuna TPE)"

    def run(self, task: SearchTask) -> SearchResult:
        space = task.space
        if not space:
            return self._run_list(task, [{}], _no_space_note(task))
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            direction="maximize" if task.metric.greater_is_better else "minimize",
            sampler=optuna.samplers.TPESampler(seed=task.random_state,
                                               n_startup_trials=min(10, max(2, task.n_trials // 3))),
            # Judge a trial only after two folds: one fold alone is too noisy to stop on.
            pruner=optuna.pruners.MedianPruner(n_startup_trials=min(5, max(1, task.n_trials // 4)),
                                               n_warmup_steps=1),
        )
        baseline = {}
        for name, value in _defaults_in_space(task).items():
            baseline.update(space[name].optuna_params(name, value))
        study.enqueue_trial(baseline)

        runner = TrialRunner(task, task.n_trials)
        for _ in range(task.n_trials):
            if runner.out_of_time():
                break
            trial = study.ask()
            params = {name: dist.suggest(trial, name) for name, dist in space.items()}

            def report(step: int, value: float, trial=trial) -> None:
                trial.report(value, step)
                if trial.should_prune():
                    raise _Pruned

            record = runner.run(params, on_fold=report)
            if record["state"] == COMPLETE:
                study.tell(trial, record["cv_mean"])
            else:
                study.tell(trial, state=_OPTUNA_STATES[record["state"]])
        n_pruned = sum(t["state"] == PRUNED for t in runner.trials)
        notes = ["Trial 1 uses the default parameters as a baseline."]
        if n_pruned:
            notes.append(f"{n_pruned} trial(s) were stopped early because their first folds scored "
                         f"worse than the median of earlier trials.")
        return runner.result(notes + _time_note(runner, task.n_trials))


def run_search(key: str, task: SearchTask) -> SearchResult:
    return get_searcher(key).run(task)
