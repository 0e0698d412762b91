"""AutoML: search the registry's algorithms and their hyperparameters within a wall-clock budget.

Strategy (successive halving across algorithm families, then Bayesian search inside them):

1. **Rung 0, every family.** Each algorithm for the problem type is cross-validated with
   its defaults: fast baselines first (so there is a model early), then in the order its
   registry ``Traits`` rank it for this data. With many rows this rung runs on a small
   sample (``SCREEN_ROWS``) and the worst third of the families does not go on: a cheap,
   low-fidelity look at every family.
2. **Rung 1, the promising families, full fidelity.** Each family has its own Optuna
   study (TPE sampler, median pruner over folds): first its defaults and the
   ``Traits.starts`` (configurations known to work), then TPE. The next trial always
   goes to the family whose spent time, divided by ``0.5 ** rank``, is smallest: the
   best family gets about half of the time, the second a quarter, and so on, and the
   ranks are updated after every trial.
3. **Ensemble.** Greedy ensemble selection (Caruana et al.) with replacement over the
   out-of-fold predictions of the best trials: soft voting for classification,
   averaging for regression. It is kept only when its CV score beats the best single
   trial on the same folds; the decision is recorded either way.
4. **Refit, test, importance.** The winner is refit on the whole training part and
   evaluated once on the held-out test part.

Time: every fold's cost is predicted from the family's measured cost per row and per
unit of work (trees, iterations); a fold that would end past the search deadline is
not started. The deadline leaves a reserve, recomputed after every trial, for the
refit (of an ensemble too), evaluation, importance and saving, so the whole run stays
within the budget.
"""
from __future__ import annotations

import math
import pickle
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import VotingClassifier, VotingRegressor
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline

from training.ml.algorithms import Algorithm, algorithms_for, data_descriptors, get_algorithm, rank_algorithms
from training.ml.artifacts import dump_pipeline
from training.ml.columns import CATEGORICAL
from training.ml.errors import JobCancelled, JobTimedOut, MLInputError
from training.ml.importance import Importance, feature_importance, model_importance
from training.ml.jsonable import plain
from training.ml.metrics import Metric, evaluate, get_metric
from training.ml.preprocess import plan_preprocessing
from training.ml.problem import ProblemType
from training.ml.search import COMPLETE, FAILED, PRUNED, ProgressFn, build_pipeline, no_progress
from training.ml.threads import limit_threads
from training.ml.trainer import (
    JobSettings, PreparedData, TrainConfig, TrainResult, _split, _test_frame, _warning_notes, check_features,
    feature_schema, library_versions, reading_notes, refit_on_all_rows,
)

MIN_BUDGET_S = 5.0
MAX_BUDGET_S = 24 * 3600.0
#: With more training rows than ``SCREEN_MIN_ROWS``, rung 0 runs on ``SCREEN_ROWS`` of them.
SCREEN_ROWS = 2_000
SCREEN_MIN_ROWS = 8_000
#: The search cross-validates on at most this many rows per second of budget (at least
#: ``MIN_SEARCH_ROWS``); the refit still uses the whole training part.
SEARCH_ROWS_PER_BUDGET_S = 1_000
MIN_SEARCH_ROWS = 20_000
#: Out-of-fold predictions kept for the ensemble, and how many trials it may draw from.
KEPT_PREDICTIONS = 20
ENSEMBLE_POOL = 10
ENSEMBLE_ROUNDS = 25
#: Leaderboard rows whose model size is measured (a fold's fitted pipeline, saved with skops).
SIZE_MEASURED = 5
#: skops with compression writes about this many bytes (of the pickled size) per second.
DUMP_BYTES_PER_S = 15e6
#: Estimated refit cost = per-fold fit time × rows ratio × this margin.
REFIT_MARGIN = 1.3
#: A fold starts only if this many times its estimated cost still fits before the deadline.
FOLD_MARGIN = 1.5
#: A family's study stops after this many trials per searched parameter.
TRIALS_PER_PARAMETER = 12
#: A family whose next trials keep not fitting in the remaining time is given up after this many in a row.
MAX_SKIPS = 5

StopFn = Callable[[], bool]


@dataclass
class AutoMLConfig(JobSettings):
    target: str
    features: list[str] | None = None
    problem_type: str = "auto"
    metric: str | None = None
    time_budget_s: float = 60
    cv_folds: int = 5
    test_size: float = 0.2
    random_state: int = 42
    n_threads: int = 1
    ensemble: bool = True
    algorithms: list[str] | None = None
    #: On cancel (``JobCancelled`` from the progress callback): False re-raises it; True refits and
    #: returns the best model found so far (the result says ``cancelled``).
    keep_best_on_cancel: bool = False
    #: After the evaluation, fit the chosen model again on every row (test part included), time permitting.
    refit_on_all_rows: bool = False
    #: As in ``TrainConfig``: the user's kinds for some columns, and the dataset's stored readings.
    column_kinds: dict[str, Any] | None = None
    column_readings: dict[str, dict] | None = None

    def _train_config(self, algorithm: str) -> TrainConfig:
        """The single-algorithm config sharing our checks of columns, target, folds and rows."""
        return TrainConfig(target=self.target, algorithm=algorithm, features=self.features,
                           problem_type=self.problem_type, metric=self.metric, cv_folds=self.cv_folds,
                           test_size=self.test_size, random_state=self.random_state, n_threads=self.n_threads,
                           column_kinds=self.column_kinds, column_readings=self.column_readings)

    def validate(self, df: pd.DataFrame) -> None:
        """Raise ``MLInputError`` naming the field for anything that would make the run fail."""
        self.prepare(df)

    def prepare(self, df: pd.DataFrame) -> PreparedData:
        """Check the settings and the data (as ``JobSettings.prepare`` reads it) for anything that would make the
        run fail; raise ``MLInputError`` naming the field."""
        checks = [
            ("time_budget_s", isinstance(self.time_budget_s, (int, float)) and not isinstance(self.time_budget_s, bool)
             and MIN_BUDGET_S <= self.time_budget_s <= MAX_BUDGET_S,
             f"time_budget_s must be a number of seconds from {MIN_BUDGET_S:g} to {MAX_BUDGET_S:g}, "
             f"got {self.time_budget_s!r}"),
            ("ensemble", isinstance(self.ensemble, bool), "ensemble must be true or false"),
            ("keep_best_on_cancel", isinstance(self.keep_best_on_cancel, bool),
             "keep_best_on_cancel must be true or false"),
            ("refit_on_all_rows", isinstance(self.refit_on_all_rows, bool), "refit_on_all_rows must be true or false"),
            ("algorithms", self.algorithms is None or (isinstance(self.algorithms, (list, tuple)) and self.algorithms
                                                       and all(isinstance(a, str) for a in self.algorithms)),
             "algorithms must be a non-empty list of algorithm keys, or empty for all that fit the problem"),
        ]
        for name, ok, message in checks:
            if not ok:
                raise MLInputError(message, field=name)
        for key in self.algorithms or []:
            try:
                get_algorithm(key)
            except MLInputError as exc:
                raise MLInputError(exc.message, field="algorithms") from None
        single = self._train_config((self.algorithms or ["random_forest"])[0])
        single._validate_settings()
        data = JobSettings.prepare(single, df)
        y, problem_type = data.y, data.problem_type
        if not self.candidate_algorithms(problem_type):
            raise MLInputError(
                f"none of the algorithms {', '.join(self.algorithms)} supports {problem_type.value}; those that do: "
                f"{', '.join(a.key for a in algorithms_for(problem_type))}", field="algorithms")
        get_metric(self.metric, problem_type)
        single._validate_rows(y, problem_type)
        check_features(data)
        return data

    def candidate_algorithms(self, problem_type: ProblemType) -> list[Algorithm]:
        available = algorithms_for(problem_type)
        if self.algorithms is None:
            return available
        wanted = set(self.algorithms)
        return [a for a in available if a.key in wanted]


@dataclass
class AutoMLResult(TrainResult):
    """A ``TrainResult`` (registered the same way) plus what the search did."""

    leaderboard: list[dict] = field(default_factory=list)
    ensemble: dict = field(default_factory=dict)
    time_budget_s: float = 0.0
    cv_folds: int = 5
    cancelled: bool = False
    stopped_early: bool = False
    #: Seconds from the start at which each phase ended (search, ensemble, refit, evaluate, importance, sizes).
    timings: dict = field(default_factory=dict)


# --- the search state ----------------------------------------------------------------------

@dataclass
class _View:
    """The rows one fidelity cross-validates on, and its folds."""

    X: pd.DataFrame
    y: pd.Series
    folds: list[tuple[np.ndarray, np.ndarray]]
    share: float  # of the training part


@dataclass
class _Family:
    algorithm: Algorithm
    preprocessor: ColumnTransformer
    study: optuna.Study | None
    pending: list[dict[str, Any]]  # starting points still to try (defaults first)
    spent_s: float = 0.0
    rate: float | None = None  # seconds per fitted row per unit of work, for one fold
    skips: int = 0
    done: bool = False
    best_full: float | None = None
    best_screen: float | None = None


@dataclass
class _Trial:
    number: int
    family: _Family
    params: dict[str, Any]
    view: _View
    state: str = "running"
    fold_scores: list[float] = field(default_factory=list)
    fit_times: list[float] = field(default_factory=list)
    predict_ms_per_row: float | None = None
    predict_call_s: float = 0.0  # one predict call on a validation fold (close to the test part's size)
    native_importance: bool = True
    oof: np.ndarray | None = None
    fold_model: Pipeline | None = None
    model_size_bytes: int | None = None
    pickled_bytes: int = 0  # of the last fold's pipeline: predicts how long saving it takes
    error: str | None = None

    @property
    def key(self) -> str:
        return self.family.algorithm.key

    @property
    def full(self) -> bool:
        return self.view.share >= 1.0

    @property
    def cv_mean(self) -> float | None:
        return float(np.mean(self.fold_scores)) if self.state == COMPLETE and self.fold_scores else None

    @property
    def cv_std(self) -> float | None:
        return float(np.std(self.fold_scores)) if self.state == COMPLETE and self.fold_scores else None

    def all_params(self) -> dict[str, Any]:
        return {**self.family.algorithm.defaults, **self.params}


class _OutOfTime(Exception):
    """The next fold would end past the search deadline."""


class _Prune(Exception):
    """The family's pruner stopped this trial after a fold."""


#: A work parameter left at None (e.g. unlimited depth) counts as this much.
UNBOUNDED_WORK = 16.0


def _work(algorithm: Algorithm, params: dict[str, Any]) -> float:
    """Relative fit cost of ``params``: the product of the algorithm's work parameters."""
    values = {**algorithm.defaults, **params}
    return float(np.prod([float(values.get(name) or UNBOUNDED_WORK) for name in algorithm.traits.work_params]))


def _min_work(algorithm: Algorithm) -> float:
    space, defaults = algorithm.search_space, algorithm.defaults
    return float(np.prod([float(getattr(space.get(name), "low", None) or defaults.get(name) or 1)
                          for name in algorithm.traits.work_params]))


def _has_native_importance(model) -> bool:
    return hasattr(model, "feature_importances_") or hasattr(model, "coef_")


def _optuna_params(algorithm: Algorithm, params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name in algorithm.search_space:
            out.update(algorithm.search_space[name].optuna_params(name, value))
    return out


class _Search:
    def __init__(self, config: AutoMLConfig, problem_type: ProblemType, metric: Metric, X: pd.DataFrame,
                 y: pd.Series, algorithms: list[Algorithm], plans: dict[bool, ColumnTransformer],
                 progress: ProgressFn, should_stop: StopFn | None, started: float):
        self.config, self.problem_type, self.metric = config, problem_type, metric
        self.X, self.y = X, y
        self.progress, self.should_stop = progress, should_stop
        self.started, self.budget = started, float(config.time_budget_s)
        self.classes = np.unique(y) if problem_type.is_classification else None
        self.trials: list[_Trial] = []
        self.notes: list[str] = []
        self.stopped_early = False
        self.full = self._view(X, y, 1.0)  # share 1.0: the highest fidelity the search uses
        n = _max_search_rows(self.budget)
        if len(y) > n:
            self.full = self._view(*self._sample(n), 1.0)
            self.notes.append(f"The search cross-validated on {n:,} of the {len(y):,} training rows (sampled "
                              f"to fit the budget); the final model is refit on all of them.")
        self.screen = None
        if len(self.full.y) > SCREEN_MIN_ROWS:
            self.screen = self._view(*self._sample(SCREEN_ROWS), SCREEN_ROWS / len(y))
        self.families = [self._family(a, plans[a.needs_scaling]) for a in algorithms]

    # -- setup --
    def _sample(self, n: int) -> tuple[pd.DataFrame, pd.Series]:
        stratify = self.y if self.problem_type.is_classification else None
        try:
            X, _, y, _ = train_test_split(self.X, self.y, train_size=n, random_state=self.config.random_state,
                                          stratify=stratify)
        except ValueError:  # a class too small to stratify: plain random rows
            X, _, y, _ = train_test_split(self.X, self.y, train_size=n, random_state=self.config.random_state)
        return X, y

    def _view(self, X: pd.DataFrame, y: pd.Series, share: float) -> _View:
        splitter_class = StratifiedKFold if self.problem_type.is_classification else KFold
        splitter = splitter_class(n_splits=self.config.cv_folds, shuffle=True, random_state=self.config.random_state)
        return _View(X, y, list(splitter.split(X, y)), share)

    def _family(self, algorithm: Algorithm, preprocessor: ColumnTransformer) -> _Family:
        space = algorithm.search_space
        study = None
        if space:
            seed = self.config.random_state + len(algorithm.key)
            study = optuna.create_study(
                direction="maximize" if self.metric.greater_is_better else "minimize",
                sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=5, multivariate=True),
                pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1))
        defaults = {name: algorithm.defaults[name] for name in space if name in algorithm.defaults}
        starts = [{k: v for k, v in s.items() if k in space} for s in algorithm.traits.starts]
        return _Family(algorithm, preprocessor, study, [defaults, *starts])

    # -- time --
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def reserve(self) -> float:
        """Seconds to keep for refit, ensemble, evaluation, importance and saving."""
        best = self.ranked()
        refit = best[:5 if self.config.ensemble else 1]
        # With refit_on_all_rows the final model is fitted twice: on the training part, then on all rows.
        refits = 1 + (1 / (1 - self.config.test_size) if self.config.refit_on_all_rows else 0)
        cost = sum(self.refit_estimate(t) * refits + self.dump_estimate(t) for t in refit)
        # Testing predicts once; permutation importance (for a single model without its own
        # importances; an ensemble uses its members') predicts 3 times per column.
        evaluation = 2 * sum(t.predict_call_s for t in refit)
        if best and not best[0].native_importance:
            evaluation += 3 * self.X.shape[1] * best[0].predict_call_s
        return max(0.5, 0.04 * self.budget) + cost + evaluation

    def refit_estimate(self, trial: _Trial) -> float:
        if not trial.fit_times:
            return 0.0
        fold_rows = len(trial.view.folds[0][0])
        return float(np.mean(trial.fit_times)) * len(self.y) / fold_rows * REFIT_MARGIN

    def dump_estimate(self, trial: _Trial) -> float:
        """Seconds to save the refit model with skops (it grows with the training rows, as trees do)."""
        fold_rows = len(trial.view.folds[0][0])
        return trial.pickled_bytes * len(self.y) / fold_rows / DUMP_BYTES_PER_S

    def deadline(self) -> float:
        return self.budget - self.reserve()

    # -- ranking --
    def ranked(self) -> list[_Trial]:
        """Complete full-fidelity trials, best first."""
        done = [t for t in self.trials if t.full and t.state == COMPLETE]
        return sorted(done, key=lambda t: t.cv_mean, reverse=self.metric.greater_is_better)

    def ranked_any(self) -> list[_Trial]:
        """Complete trials of the highest fidelity reached, best first (the fallback when time ran out
        before any full-fidelity trial finished)."""
        done = [t for t in self.trials if t.state == COMPLETE]
        if not done:
            return []
        top = max(t.view.share for t in done)
        done = [t for t in done if t.view.share == top]
        return sorted(done, key=lambda t: t.cv_mean, reverse=self.metric.greater_is_better)

    def best_score(self) -> float | None:
        ranked = self.ranked()
        return ranked[0].cv_mean if ranked else None

    def _better(self, a: float | None, b: float | None) -> bool:
        return a is not None and (b is None or self.metric.is_better(a, b))

    # -- one trial --
    def _fold_estimate(self, family: _Family, params: dict[str, Any], view: _View) -> float | None:
        if family.rate is not None:
            return family.rate * len(view.folds[0][0]) * _work(family.algorithm, params)
        # A family not fitted yet: guess from the slowest first fold seen so far (None for the very first).
        seen = [t.fit_times[0] * len(view.folds[0][0]) / len(t.view.folds[0][0])
                for t in self.trials if t.fit_times]
        return max(seen) if seen else None

    def run_trial(self, family: _Family, params: dict[str, Any], view: _View,
                  report: Callable[[int, float], None] | None = None) -> _Trial:
        trial = _Trial(len(self.trials) + 1, family, params, view)
        self.trials.append(trial)
        algorithm, n_folds = family.algorithm, len(view.folds)
        oof = None
        best = self.best_score()
        shown = f" · best {self.metric.key} {best:.4g}" if best is not None else ""
        started = time.monotonic()
        try:
            for j, (train_idx, valid_idx) in enumerate(view.folds):
                self.progress(f"candidate {trial.number}: {algorithm.key}, fold {j + 1}/{n_folds}{shown}",
                              min(0.99, self.elapsed() / self.budget))
                if self.should_stop is not None and self.ranked_any() and self.should_stop():
                    self.stopped_early = True
                    raise _OutOfTime
                estimate = self._fold_estimate(family, params, view)
                # The first candidate always finishes, so there is a model to return.
                if (estimate is not None and self.elapsed() + FOLD_MARGIN * estimate > self.deadline()
                        and self.ranked_any()):
                    raise _OutOfTime
                pipeline = build_pipeline(family.preprocessor, algorithm.build(
                    self.problem_type, params, n_threads=self.config.n_threads,
                    random_state=self.config.random_state))
                X_fit, y_fit = view.X.iloc[train_idx], view.y.iloc[train_idx]
                X_val, y_val = view.X.iloc[valid_idx], view.y.iloc[valid_idx]
                fold_started = time.perf_counter()
                with limit_threads(self.config.n_threads):
                    pipeline.fit(X_fit, y_fit)
                    fitted = time.perf_counter()
                    prediction = self._predict(pipeline, X_val)
                predicted = time.perf_counter()
                trial.fit_times.append(fitted - fold_started)
                trial.predict_call_s = max(trial.predict_call_s, predicted - fitted)
                trial.native_importance = _has_native_importance(pipeline.named_steps["model"])
                per_row = (predicted - fitted) / max(len(valid_idx), 1) * 1000
                trial.predict_ms_per_row = per_row if trial.predict_ms_per_row is None else \
                    (trial.predict_ms_per_row * j + per_row) / (j + 1)
                rate = (predicted - fold_started) / (len(train_idx) * _work(algorithm, params))
                family.rate = rate if family.rate is None else max(rate, 0.5 * rate + 0.5 * family.rate)
                score = self._score(y_val, prediction)
                if not math.isfinite(score):
                    raise ValueError(f"{self.metric.key} is undefined on fold {j + 1}")
                trial.fold_scores.append(score)
                if oof is None:
                    oof = np.full((len(view.y),) + prediction.shape[1:], np.nan)
                oof[valid_idx] = prediction
                if j == n_folds - 1:
                    trial.fold_model = pipeline
                    # Only measured, never loaded: the size predicts the cost of the skops dump.
                    trial.pickled_bytes = len(pickle.dumps(pipeline, protocol=pickle.HIGHEST_PROTOCOL))
                elif report is not None:
                    report(j, float(np.mean(trial.fold_scores)))
        except (JobCancelled, JobTimedOut):
            trial.state, trial.error = FAILED, "cancelled"
            raise
        except _OutOfTime:
            trial.state, trial.error = PRUNED, "stopped: the time budget was reached"
        except _Prune:
            trial.state = PRUNED
        except Exception as exc:  # one bad configuration must not end the search
            trial.state, trial.error = FAILED, f"{type(exc).__name__}: {exc}"
        else:
            trial.state = COMPLETE
        finally:
            family.spent_s += time.monotonic() - started
        if trial.state == COMPLETE:
            if trial.full:
                trial.oof = oof
                family.best_full = trial.cv_mean if not self._better(family.best_full, trial.cv_mean) \
                    else family.best_full
            else:
                family.best_screen = trial.cv_mean if not self._better(family.best_screen, trial.cv_mean) \
                    else family.best_screen
        self._forget_weak()
        return trial

    def _predict(self, pipeline: Pipeline, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities in ``self.classes`` order, or predicted values."""
        if not self.problem_type.is_classification:
            return np.asarray(pipeline.predict(X), dtype=float)
        proba = pipeline.predict_proba(X)
        out = np.zeros((len(X), len(self.classes)))
        positions = np.searchsorted(self.classes, pipeline.classes_)
        out[:, positions] = proba
        return out

    def _score(self, y: pd.Series, prediction: np.ndarray) -> float:
        if self.problem_type.is_classification and not self.metric.needs_proba:
            prediction = self.classes[np.argmax(prediction, axis=1)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(self.metric.fn(np.asarray(y), prediction, self.classes))

    def _forget_weak(self) -> None:
        """Keep out-of-fold predictions and fold models only for the trials that may still be used."""
        ranked = self.ranked()
        for i, trial in enumerate(ranked):
            if i >= KEPT_PREDICTIONS:
                trial.oof = None
            if i >= SIZE_MEASURED:
                trial.fold_model = None
        for trial in self.trials:
            if not trial.full:
                trial.fold_model = None

    # -- the loop --
    def run(self) -> None:
        if self.screen is not None:
            for family in self.families:
                if self._stopping():
                    break
                self.run_trial(family, dict(family.pending[0]), self.screen)
            scored = [f for f in self.families if f.best_screen is not None]
            scored.sort(key=lambda f: f.best_screen, reverse=self.metric.greater_is_better)
            keep = max(2, len(scored) - len(scored) // 3)  # the worst third does not go on
            for family in scored[keep:]:
                family.done = True
            for family in self.families:
                family.done = family.done or family.best_screen is None
            dropped = [f.algorithm.key for f in self.families if f.done]
            self.notes.append(f"Rung 0 screened every algorithm with its defaults on {SCREEN_ROWS:,} rows; "
                              f"{', '.join(dropped) or 'none'} did not go on.")
            if not any(not f.done for f in self.families):
                for family in scored[:1]:
                    family.done = False
        while not self._stopping() or not self.ranked_any():  # one complete candidate, whatever the time
            family = self._pick()
            if family is None:
                break
            self._step(family)

    def _stopping(self) -> bool:
        return self.stopped_early or self.elapsed() >= self.deadline()

    def _pick(self) -> _Family | None:
        open_families = [f for f in self.families if not f.done]
        untried = [f for f in open_families if f.best_full is None and not any(
            t.family is f and t.full for t in self.trials)]
        if untried:
            if self.screen is not None:
                untried.sort(key=lambda f: f.best_screen, reverse=self.metric.greater_is_better)
            return untried[0]
        scored = [f for f in open_families if f.best_full is not None]
        failed = [f for f in open_families if f.best_full is None]
        for family in failed:  # every full trial of it failed: its space is not worth more time
            family.done = True
        if not scored:
            return None
        scored.sort(key=lambda f: f.best_full, reverse=self.metric.greater_is_better)
        return min(enumerate(scored), key=lambda pair: (pair[1].spent_s + 1e-3) / 0.5 ** pair[0])[1]

    def _step(self, family: _Family) -> None:
        algorithm = family.algorithm
        remaining = self.deadline() - self.elapsed()
        fold_rows = len(self.full.folds[0][0])
        if family.rate is not None and family.rate * fold_rows * _min_work(algorithm) * 2 > remaining:
            family.done = True  # even its cheapest configuration would not get through two folds
            return
        if family.study is None:
            if family.pending:
                self.run_trial(family, family.pending.pop(0), self.full)
            family.done = not family.pending
            return
        if family.pending:
            family.study.enqueue_trial(_optuna_params(algorithm, family.pending.pop(0)))
        elif len(family.study.trials) >= TRIALS_PER_PARAMETER * len(algorithm.search_space):
            family.done = True  # a small space is covered: more trials would only fit noise
            return
        trial = family.study.ask()
        params = {name: dist.suggest(trial, name) for name, dist in algorithm.search_space.items()}
        estimate = self._fold_estimate(family, params, self.full) if family.rate is not None else None
        if estimate is not None and estimate * len(self.full.folds) > remaining:
            family.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            family.skips += 1
            family.done = family.skips >= MAX_SKIPS
            return

        def report(step: int, value: float) -> None:
            trial.report(value, step)
            if trial.should_prune():
                raise _Prune

        try:
            record = self.run_trial(family, params, self.full, report)
        except (JobCancelled, JobTimedOut):
            family.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        family.skips = 0
        if record.state == COMPLETE:
            family.study.tell(trial, record.cv_mean)
        else:
            family.study.tell(trial, state=optuna.trial.TrialState.PRUNED if record.state == PRUNED
                              else optuna.trial.TrialState.FAIL)
        if record.error and record.error.startswith("stopped"):
            family.skips += 1
            family.done = family.skips >= MAX_SKIPS

    # -- the ensemble --
    def fold_mean_score(self, prediction: np.ndarray) -> float:
        return float(np.mean([self._score(self.full.y.iloc[v], prediction[v]) for _, v in self.full.folds]))

    def select_ensemble(self) -> dict[str, Any]:
        """Greedy selection with replacement over the best trials' out-of-fold predictions."""
        pool = [t for t in self.ranked() if t.oof is not None][:ENSEMBLE_POOL]
        best = pool[0] if pool else None
        info: dict[str, Any] = {"considered": [t.number for t in pool], "chosen": False, "members": [],
                                "cv_mean": None, "best_single_cv_mean": best.cv_mean if best else None}
        if len(pool) < 2:
            info["reason"] = "fewer than two complete candidates to combine"
            return info
        counts = np.zeros(len(pool), dtype=int)
        total = np.zeros_like(pool[0].oof)
        history: list[tuple[float, np.ndarray]] = []
        limit = self.budget - 0.6 * self.reserve()
        for _ in range(ENSEMBLE_ROUNDS):
            if self.elapsed() > limit:
                break
            n = counts.sum() + 1
            scores = [self.fold_mean_score((total + t.oof) / n) for t in pool]
            i = int(np.argmax(scores) if self.metric.greater_is_better else np.argmin(scores))
            counts[i] += 1
            total += pool[i].oof
            history.append((scores[i], counts.copy()))
        if not history:
            info["reason"] = "no time left to combine candidates"
            return info
        order = [h[0] for h in history]
        k = int(np.argmax(order) if self.metric.greater_is_better else np.argmin(order))
        score, chosen = history[k]
        members = [(pool[i], int(c)) for i, c in enumerate(chosen) if c > 0]
        info["cv_mean"] = score
        info["members"] = [{"trial": t.number, "algorithm": t.key, "weight": c} for t, c in members]
        if len(members) < 2:
            info["reason"] = "the greedy selection kept only the best single candidate"
        elif not self.metric.is_better(score, best.cv_mean):
            info["reason"] = (f"the ensemble's CV {self.metric.key} {score:.4g} does not beat the best single "
                              f"candidate's {best.cv_mean:.4g}")
        else:
            info["chosen"] = True
            info["reason"] = (f"the ensemble's CV {self.metric.key} {score:.4g} beats the best single "
                              f"candidate's {best.cv_mean:.4g}")
            blended = sum(t.oof * c for t, c in members) / sum(c for _, c in members)
            info["cv_std"] = float(np.std([self._score(self.full.y.iloc[v], blended[v]) for _, v in self.full.folds]))
            info["_members"] = members
        return info

    def refit_estimate_members(self, members: list[tuple[_Trial, int]]) -> float:
        return sum(self.refit_estimate(t) for t, _ in members)


def _max_search_rows(budget_s: float) -> int:
    return max(MIN_SEARCH_ROWS, int(budget_s * SEARCH_ROWS_PER_BUDGET_S))


# --- refit, evaluate, explain --------------------------------------------------------------

def build_ensemble(members: list[tuple[str, Algorithm, dict[str, Any], float]], problem_type: ProblemType,
                   plans: dict[bool, ColumnTransformer], *, n_threads: int = 1, random_state: int = 42) -> Pipeline:
    """One ``Pipeline(preprocess, Voting*)`` of ``(name, algorithm, params, weight)`` members.

    Soft voting (weighted mean of probabilities) for classification, a weighted mean for
    regression. ``plans`` maps "scale numbers?" to a preprocessor; the scaled one is used
    when a member needs it: trees split the same on scaled numbers (an order-preserving
    change), so every member still is the model that was cross-validated.
    """
    scaled = any(algorithm.needs_scaling for _, algorithm, _, _ in members)
    estimators = [(name, algorithm.build(problem_type, params, n_threads=n_threads, random_state=random_state))
                  for name, algorithm, params, _ in members]
    weights = [float(weight) for *_, weight in members]
    model = (VotingClassifier(estimators, voting="soft", weights=weights) if problem_type.is_classification
             else VotingRegressor(estimators, weights=weights))
    return Pipeline([("preprocess", clone(plans[scaled])), ("model", model)])


def _ensemble_importance(pipeline: Pipeline, weights: list[float]) -> Importance | None:
    """Members' own importances, each normalised, averaged with the ensemble weights.

    Members without importances of their own (histogram gradient boosting) are left out
    of the average rather than paying for permutation importance of the whole ensemble;
    None when no member has them.
    """
    preprocess, voting = pipeline.named_steps["preprocess"], pipeline.named_steps["model"]
    total: dict[str, float] = {}
    used = 0
    for member, weight in zip(voting.estimators_, weights):
        found = model_importance(Pipeline([("preprocess", preprocess), ("model", member)]))
        if found is None:
            continue
        used += 1
        for row in found.features:
            total[row["feature"]] = total.get(row["feature"], 0.0) + weight * row["importance"]
    if not used:
        return None
    norm = sum(total.values()) or 1.0
    rows = [{"feature": k, "importance": v / norm} for k, v in total.items()]
    method = "model" + (" (weighted over the ensemble's members)" if used == len(weights)
                        else f" (weighted over the {used} of {len(weights)} members that report importances)")
    return Importance(method, sorted(rows, key=lambda r: r["importance"], reverse=True))


def _leaderboard(search: _Search, chosen_number: int | None, ensemble: dict) -> list[dict]:
    ranked = search.ranked()
    rank_of = {t.number: i + 1 for i, t in enumerate(ranked)}
    n_folds = len(search.full.folds)
    rows = []
    for trial in sorted(search.trials, key=lambda t: (rank_of.get(t.number, 10**9), t.number)):
        rows.append({
            "rank": rank_of.get(trial.number),
            "number": trial.number,
            "algorithm": trial.key,
            "params": plain(trial.all_params()),
            "cv_mean": trial.cv_mean,
            "cv_std": trial.cv_std,
            "fold_scores": [round(s, 6) for s in trial.fold_scores],
            "fit_time_s": round(float(np.mean(trial.fit_times)), 4) if trial.fit_times else None,
            "predict_time_per_row_ms": round(trial.predict_ms_per_row, 5) if trial.predict_ms_per_row else None,
            "model_size_bytes": trial.model_size_bytes,
            "state": trial.state,
            "fidelity": round(trial.view.share, 4),
            "rows": len(trial.view.y),
            "folds": f"{len(trial.fold_scores)}/{n_folds}",
            "chosen": trial.number == chosen_number,
            "error": trial.error,
        })
    if ensemble.get("cv_mean") is not None and len(ensemble.get("members", [])) >= 2:
        rows.insert(0 if ensemble["chosen"] else 1, {
            "rank": None, "number": None, "algorithm": "ensemble",
            "params": {"members": ensemble["members"]}, "cv_mean": ensemble["cv_mean"],
            "cv_std": ensemble.get("cv_std"), "fold_scores": [], "fit_time_s": None,
            "predict_time_per_row_ms": None, "model_size_bytes": ensemble.get("model_size_bytes"),
            "state": COMPLETE, "fidelity": 1.0, "rows": len(search.full.y), "folds": f"{n_folds}/{n_folds}",
            "chosen": ensemble["chosen"], "error": None})
    return plain(rows)


def _measure_sizes(search: _Search, limit_s: float, bytes_per_s: float) -> None:
    """Saved size of the top candidates' last-fold pipelines, while time allows."""
    for trial in search.ranked()[:SIZE_MEASURED]:
        seconds = 1.5 * trial.pickled_bytes / bytes_per_s
        if trial.fold_model is None or trial.model_size_bytes or search.elapsed() + seconds > limit_s:
            continue
        try:
            trial.model_size_bytes = len(dump_pipeline(trial.fold_model))
        except Exception:  # a size we cannot measure is reported as unknown
            trial.model_size_bytes = None


def run_automl(df: pd.DataFrame, config: AutoMLConfig, progress: ProgressFn = no_progress,
               should_stop_early: StopFn | None = None) -> AutoMLResult:
    """Search algorithms and hyperparameters within ``config.time_budget_s``; refit, test and explain the best.

    ``progress(stage, fraction)`` is called before every fold with fraction = elapsed /
    budget; it may raise ``JobCancelled`` (re-raised, or with ``keep_best_on_cancel`` the
    best so far is returned) or ``JobTimedOut`` (always re-raised).
    ``should_stop_early()``, polled before every fold, ends the search gracefully when true.
    """
    started = time.monotonic()
    progress("preparing", 0.0)
    data = config.prepare(df)
    notes: list[str] = reading_notes(data)
    if data.missing_target:
        notes.append(f"Dropped {data.missing_target} row(s) with no value for the target '{config.target}'.")
    y, problem_type, reason = data.y, data.problem_type, data.problem_type_reason
    if problem_type is ProblemType.REGRESSION:
        y = y.astype(float)
    notes.append(f"Problem type: {problem_type.value} ({reason}).")
    metric = get_metric(config.metric, problem_type)

    X_train, X_test, y_train, y_test = _split(data.X, y, config, problem_type)
    unscaled = plan_preprocessing(X_train, scale_numeric=False, kinds=data.kinds)
    scaled = plan_preprocessing(X_train, scale_numeric=True, kinds=data.kinds)
    notes += unscaled.notes
    used = unscaled.used_columns
    X_train, X_test = X_train[used], X_test[used]
    notes.append(f"Split {len(y)} rows into {len(y_train)} for training and {len(y_test)} for testing"
                 f"{' (stratified by class)' if problem_type.is_classification else ''}.")
    plans = {False: unscaled.transformer, True: scaled.transformer}
    descriptors = data_descriptors(
        n_rows=len(y_train), n_features=len(used),
        categorical_share=sum(k == CATEGORICAL for k in unscaled.kinds.values()) / max(len(used), 1),
        missing_share=float(X_train.isna().to_numpy().mean()))
    # Fast baselines first (a model early, whatever the budget), then by suitability for this data.
    ranked_algorithms = rank_algorithms(config.candidate_algorithms(problem_type), descriptors)
    algorithms = [a for a, _ in sorted(ranked_algorithms, key=lambda pair: (not pair[0].traits.baseline, -pair[1]))]
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    cancelled = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        search = _Search(config, problem_type, metric, X_train, y_train, algorithms, plans, progress,
                         should_stop_early, started)
        try:
            search.run()
        except JobCancelled:
            if not config.keep_best_on_cancel or not search.ranked_any():
                raise
            cancelled = True
            progress = no_progress  # the caller asked to stop: finish quietly with what we have
        notes += search.notes
        timings = {"search": round(search.elapsed(), 2)}
        ranked = search.ranked() or search.ranked_any()
        if ranked and not ranked[0].full:
            notes.append(f"No candidate finished on all {len(search.full.y):,} search rows within the budget; the "
                         f"best one screened on {len(ranked[0].view.y):,} rows was kept.")
        if not ranked:
            errors = sorted({t.error for t in search.trials if t.error})[:3]
            raise MLInputError("no candidate finished within the time budget, so no model could be trained"
                               + (f"; errors: {'; '.join(errors)}" if errors else "; raise time_budget_s"),
                               field="time_budget_s")
        best = ranked[0]
        n_complete = len(ranked)
        n_pruned = sum(t.state == PRUNED for t in search.trials)
        n_failed = sum(t.state == FAILED for t in search.trials)
        notes.append(f"Searched {len(search.trials)} candidates over {len({t.key for t in search.trials})} algorithms "
                     f"in {search.elapsed():.1f} s ({n_complete} complete, {n_pruned} pruned, {n_failed} failed); "
                     f"best single: {best.key} (candidate {best.number}, CV {metric.key} {best.cv_mean:.4g}).")
        if cancelled:
            notes.append("Cancelled: the best candidate found so far was kept.")
        if search.stopped_early:
            notes.append("The search was stopped early on request; the best candidate so far was kept.")

        progress(f"refitting the best model · best {metric.key} {best.cv_mean:.4g}",
                 min(0.99, search.elapsed() / search.budget))
        ensemble = search.select_ensemble() if config.ensemble and not cancelled else \
            {"chosen": False, "members": [], "reason": "ensembling was turned off" if not config.ensemble
             else "the run was cancelled"}
        members = ensemble.pop("_members", None)
        timings["ensemble"] = round(search.elapsed(), 2)
        if members is not None:
            remaining = search.budget - search.elapsed()
            if search.refit_estimate_members(members) * 1.2 > remaining:
                ensemble["chosen"] = False
                ensemble["reason"] += ", but refitting it would not fit in the remaining time"
                members = None
        refit_rows = len(X_train)
        if members is not None:
            pipeline = build_ensemble([(f"{t.key}_{t.number}", t.family.algorithm, t.params, c) for t, c in members],
                                      problem_type, plans, n_threads=config.n_threads,
                                      random_state=config.random_state)
            weights = [float(c) for _, c in members]
        else:
            pipeline = build_pipeline(best.family.preprocessor, best.family.algorithm.build(
                problem_type, best.params, n_threads=config.n_threads, random_state=config.random_state))
            weights = []
            # A refit that would overrun the budget uses as many rows as fit in the remaining time.
            remaining = search.budget - search.elapsed() - 0.5
            estimate = search.refit_estimate(best)
            if estimate > remaining > 0 and len(X_train) > SCREEN_ROWS:
                refit_rows = max(SCREEN_ROWS, int(len(X_train) * remaining / estimate))
                notes.append(f"The final model was refit on {refit_rows:,} of the {len(X_train):,} training rows "
                             f"to stay within the time budget.")
        notes.append(f"Ensemble: {ensemble['reason']}.")
        X_fit, y_fit = (X_train, y_train) if refit_rows == len(X_train) else search._sample(refit_rows)
        with limit_threads(config.n_threads):
            pipeline.fit(X_fit, y_fit)
            timings["refit"] = round(search.elapsed(), 2)

            progress("evaluating on the test part", min(0.99, search.elapsed() / search.budget))
            test_metrics = evaluate(pipeline, X_test, y_test, problem_type, random_state=config.random_state)
            timings["evaluate"] = round(search.elapsed(), 2)
        test_value = test_metrics["scores"].get(metric.key)
        if test_value is not None:
            notes.append(f"Test {metric.key}: {test_value:.4g}.")

        progress("computing feature importance", min(0.99, search.elapsed() / search.budget))
        importance = _ensemble_importance(pipeline, weights) if members is not None else None
        if importance is None:
            importance = feature_importance(pipeline, X_test, y_test, metric=metric, n_threads=config.n_threads,
                                            random_state=config.random_state)
        timings["importance"] = round(search.elapsed(), 2)
        final_trials = [t for t, _ in members] if members is not None else [best]
        X_seen = X_train
        if config.refit_on_all_rows and not cancelled:
            estimate = sum(search.refit_estimate(t) for t in final_trials) * (len(y) / len(y_train))
            if refit_rows < len(X_train):
                notes.append("The model was not refit on all rows: the budget did not allow even the training part.")
            elif search.elapsed() + estimate * 1.2 > search.budget:
                notes.append(f"The model was not refit on all rows: that would take about {estimate:.0f} s more "
                             f"than the budget leaves.")
            else:
                progress("refitting on all rows", min(0.99, search.elapsed() / search.budget))
                with limit_threads(config.n_threads):
                    pipeline, X_seen, note = refit_on_all_rows(pipeline, X_train, X_test, y_train, y_test)
                notes.append(note)
                timings["refit_all_rows"] = round(search.elapsed(), 2)
        final_dump = sum(search.dump_estimate(t) for t in final_trials)
        final_size, bytes_per_s = None, DUMP_BYTES_PER_S
        if search.elapsed() + final_dump < search.budget:
            dump_started = time.monotonic()
            final_size = len(dump_pipeline(pipeline))
            pickled = len(pickle.dumps(pipeline, protocol=pickle.HIGHEST_PROTOCOL))
            bytes_per_s = min(DUMP_BYTES_PER_S, pickled / max(time.monotonic() - dump_started, 1e-3))
        _measure_sizes(search, search.budget - 0.5, bytes_per_s)
        timings["sizes"] = round(search.elapsed(), 2)
    notes += _warning_notes(caught)

    chosen_number = None if members is not None else best.number
    if members is not None:
        ensemble["model_size_bytes"] = final_size
    else:
        best.model_size_bytes = final_size if refit_rows == len(X_train) else best.model_size_bytes
    ensemble["refit_rows"] = refit_rows
    leaderboard = _leaderboard(search, chosen_number, ensemble)
    if members is not None:
        algorithm_key = "ensemble"
        best_params = {"members": [{"algorithm": t.key, "candidate": t.number, "weight": c,
                                    "params": t.all_params()} for t, c in members]}
        cv_mean, cv_std = ensemble["cv_mean"], ensemble.get("cv_std")
    else:
        algorithm_key, best_params = best.key, best.all_params()
        cv_mean, cv_std = best.cv_mean, best.cv_std

    result = AutoMLResult(
        pipeline=pipeline,
        problem_type=problem_type,
        problem_type_reason=reason,
        target=config.target,
        algorithm=algorithm_key,
        search="automl",
        metric=metric.key,
        greater_is_better=metric.greater_is_better,
        classes=plain(pipeline.classes_) if problem_type.is_classification else None,
        best_params=plain(best_params),
        trials=[row for row in leaderboard if row["number"] is not None],
        cv_mean=cv_mean,
        cv_std=cv_std,
        test_metrics=test_metrics,
        importance=importance.features,
        importance_method=importance.method,
        feature_schema=feature_schema(X_seen, used, data),
        target_schema=data.target_schema(y_test, plain(pipeline.classes_) if problem_type.is_classification else None),
        used_columns=used,
        dropped_columns=unscaled.dropped,
        notes=notes,
        test_frame=_test_frame(X_test, y_test, config.random_state),
        n_rows_train=len(y_train),
        n_rows_test=len(y_test),
        duration_s=round(time.monotonic() - started, 3),
        versions=library_versions(),
        leaderboard=leaderboard,
        ensemble=plain(ensemble),
        time_budget_s=float(config.time_budget_s),
        cv_folds=config.cv_folds,
        cancelled=cancelled,
        stopped_early=search.stopped_early,
        timings=timings,
    )
    progress("done", 1.0)
    return result
