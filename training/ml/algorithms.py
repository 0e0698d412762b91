"""The algorithm registry: each algorithm is described once, as data.

Forms, the API and the searchers read ``ALGORITHMS``; adding an algorithm
means adding one class here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    ExtraTreesClassifier, ExtraTreesRegressor, HistGradientBoostingClassifier, HistGradientBoostingRegressor,
    RandomForestClassifier, RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from xgboost import XGBClassifier, XGBRegressor

from training.ml.errors import MLInputError
from training.ml.interrupt import CheckEveryRound
from training.ml.problem import ProblemType
from training.ml.space import Choice, Distribution, FloatRange, IntRange
from training.ml.wrappers import LabelEncodedClassifier

CLASSIFICATION = frozenset({ProblemType.BINARY, ProblemType.MULTICLASS})
REGRESSION = frozenset({ProblemType.REGRESSION})
BOTH = CLASSIFICATION | REGRESSION


#: Dataset descriptors (each 0..1) that ``Traits.affinity`` weighs; see ``data_descriptors``.
DESCRIPTORS = ("small", "large", "wide", "categorical", "missing")
#: How a descriptor reads in a suggestion when it helps (+) or hurts (-) an algorithm.
DESCRIPTOR_PHRASES = {
    "small": ("suits few rows", "tends to overfit few rows"),
    "large": ("scales well to many rows", "usually outperformed on many rows"),
    "wide": ("copes with many columns for the rows", "struggles with many columns for the rows"),
    "categorical": ("handles many one-hot categories well", "weaker with many categories"),
    "missing": ("tolerates missing values well", "relies on imputed missing values"),
}


@dataclass(frozen=True)
class Traits:
    """What suggestions and AutoML know about an algorithm, as data (no branches on names).

    ``prior`` is how well it does on typical tabular data; ``affinity`` adds
    ``weight * descriptor`` for each dataset descriptor (see ``DESCRIPTORS``).
    ``work_params`` are the parameters fit time grows in proportion to (trees, depth,
    iterations), for cost estimates. ``starts`` are configurations AutoML tries first,
    after the defaults.
    """

    family: str
    summary: str
    prior: float
    affinity: dict[str, float] = field(default_factory=dict)
    baseline: bool = False
    work_params: tuple[str, ...] = ()
    starts: tuple[dict[str, Any], ...] = ()

    def suitability(self, descriptors: dict[str, float]) -> float:
        return self.prior + sum(w * descriptors.get(k, 0.0) for k, w in self.affinity.items())

    def strongest_effect(self, descriptors: dict[str, float]) -> tuple[str, float] | None:
        """The descriptor that moves the score most (name, signed contribution), if any does."""
        effects = [(k, w * descriptors.get(k, 0.0)) for k, w in self.affinity.items()]
        effects = [e for e in effects if abs(e[1]) >= 0.05]
        return max(effects, key=lambda e: abs(e[1])) if effects else None


class Algorithm:
    """Shared behaviour; a subclass names its estimators, space and defaults.

    ``build`` merges ``defaults`` with the given params and the runtime settings
    (threads, seed). Estimators without ``n_jobs`` (logistic regression,
    histogram gradient boosting) are capped by ``threads.limit_threads``.
    """

    key: ClassVar[str]
    label: ClassVar[str]
    problem_types: ClassVar[frozenset[ProblemType]]
    needs_scaling: ClassVar[bool] = False
    search_space: ClassVar[dict[str, Distribution]] = {}
    defaults: ClassVar[dict[str, Any]] = {}
    classifier: ClassVar[type[BaseEstimator] | None] = None
    regressor: ClassVar[type[BaseEstimator] | None] = None
    traits: ClassVar[Traits] = Traits(family="other", summary="", prior=0.5)
    #: The engine that predicts whole tables (batch, evaluation) fastest, measured by ``bench/engines.py``:
    #: the native pipeline with the job's threads, or the version's ONNX graph (used only when it agreed
    #: with the pipeline at registration). One record is always fastest in ONNX.
    table_engine: ClassVar[str] = "native"

    def runtime_params(self, *, n_threads: int, random_state: int) -> dict[str, Any]:
        """Thread and seed arguments this estimator accepts."""
        return {}

    def estimator_class(self, problem_type: ProblemType) -> type[BaseEstimator]:
        return self.classifier if problem_type.is_classification else self.regressor

    def build(self, problem_type: ProblemType, params: dict[str, Any] | None = None, *,
              n_threads: int = 1, random_state: int = 42) -> BaseEstimator:
        if problem_type not in self.problem_types:
            raise MLInputError(
                f"{self.label} does not support {problem_type.value}; "
                f"algorithms that do: {', '.join(a.key for a in algorithms_for(problem_type))}",
                field="algorithm",
            )
        arguments = {**self.defaults, **(params or {}),
                     **self.runtime_params(n_threads=n_threads, random_state=random_state)}
        return self.estimator_class(problem_type)(**arguments)

    def validate_params(self, params: dict[str, Any] | None) -> dict[str, Any]:
        """Params coerced to their types; MLInputError(field="params") if unknown or out of range."""
        params = dict(params or {})
        allowed = sorted(set(self.search_space) | set(self.defaults))
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise MLInputError(
                f"unknown parameter{'s' if len(unknown) > 1 else ''} for {self.key}: {', '.join(unknown)}; "
                f"valid parameters are: {', '.join(allowed) or '(none)'}",
                field="params",
            )
        return {name: self._coerce(name, value) for name, value in params.items()}

    def _coerce(self, name: str, value: Any) -> Any:
        if name in self.search_space:
            return self.search_space[name].coerce(name, value)
        default = self.defaults[name]
        if default is not None and type(value) is not type(default):
            raise MLInputError(f"parameter '{name}' = {value!r} is invalid; it must be a "
                               f"{type(default).__name__} like the default {default!r}", field="params")
        return value

    def describe(self) -> dict[str, Any]:
        """JSON description for forms and the API."""
        return {"key": self.key, "label": self.label,
                "problem_types": sorted(p.value for p in self.problem_types),
                "needs_scaling": self.needs_scaling, "defaults": dict(self.defaults),
                "search_space": {name: dist.as_dict() for name, dist in self.search_space.items()}}


ALGORITHMS: dict[str, Algorithm] = {}


def register(cls: type[Algorithm]) -> type[Algorithm]:
    ALGORITHMS[cls.key] = cls()
    return cls


def get_algorithm(key: str) -> Algorithm:
    try:
        return ALGORITHMS[key]
    except (KeyError, TypeError):
        raise MLInputError(f"algorithm '{key}' is unknown; available algorithms are: {', '.join(ALGORITHMS)}",
                           field="algorithm") from None


def algorithms_for(problem_type: ProblemType) -> list[Algorithm]:
    return [a for a in ALGORITHMS.values() if problem_type in a.problem_types]


def _ramp(value: float, zero_at: float, one_at: float) -> float:
    return float(min(1.0, max(0.0, (value - zero_at) / (one_at - zero_at))))


def data_descriptors(*, n_rows: int, n_features: int, categorical_share: float = 0.0,
                     missing_share: float = 0.0) -> dict[str, float]:
    """The dataset descriptors ``Traits.affinity`` weighs, each between 0 and 1.

    small: 1 at 500 rows or fewer, 0 from 5,000; large: 0 up to 10,000 rows, 1 from 200,000;
    wide: 1 when there are at least a tenth as many columns as rows.
    """
    log_rows = math.log10(max(n_rows, 1))
    return {
        "small": _ramp(-log_rows, -math.log10(5000), -math.log10(500)),
        "large": _ramp(log_rows, 4.0, math.log10(200_000)),
        "wide": _ramp(n_features / max(n_rows, 1), 0.01, 0.1),
        "categorical": float(categorical_share),
        "missing": float(missing_share),
    }


def rank_algorithms(algorithms: list[Algorithm], descriptors: dict[str, float]) -> list[tuple[Algorithm, float]]:
    """Algorithms with their suitability for data described by ``descriptors``, best first."""
    scored = [(a, a.traits.suitability(descriptors)) for a in algorithms]
    return sorted(scored, key=lambda pair: -pair[1])


# --- linear models ---------------------------------------------------------------------------

@register
class LogisticRegressionAlgorithm(Algorithm):
    key, label = "logistic_regression", "Logistic regression"
    traits = Traits(family="linear", summary="fast, well-calibrated baseline; strong when effects are mostly linear",
                    prior=0.55, affinity={"small": 0.3, "wide": 0.25, "large": -0.2}, baseline=True,
                    starts=({"C": 0.1},))
    problem_types = CLASSIFICATION
    needs_scaling = True
    classifier = LogisticRegression
    search_space = {"C": FloatRange(1e-3, 100.0, log=True), "class_weight": Choice([None, "balanced"])}
    defaults = {"C": 1.0, "class_weight": None, "max_iter": 1000}

    def runtime_params(self, *, n_threads: int, random_state: int) -> dict[str, Any]:
        return {"random_state": random_state}  # no n_jobs: it has no effect since sklearn 1.8


@register
class LinearRegressionAlgorithm(Algorithm):
    key, label = "linear_regression", "Linear regression"
    traits = Traits(family="linear", summary="the simplest baseline: instant, fully interpretable, nothing to tune",
                    prior=0.35, affinity={"small": 0.25, "wide": -0.2, "large": -0.2}, baseline=True)
    problem_types = REGRESSION
    needs_scaling = True
    regressor = LinearRegression
    defaults = {"fit_intercept": True}

    def runtime_params(self, *, n_threads: int, random_state: int) -> dict[str, Any]:
        return {"n_jobs": n_threads}


@register
class RidgeAlgorithm(Algorithm):
    key, label = "ridge", "Ridge regression"
    traits = Traits(family="linear", summary="fast regularised linear baseline; robust to correlated columns",
                    prior=0.5, affinity={"small": 0.3, "wide": 0.3, "large": -0.2}, baseline=True,
                    starts=({"alpha": 10.0},))
    problem_types = REGRESSION
    needs_scaling = True
    regressor = Ridge
    search_space = {"alpha": FloatRange(1e-3, 1000.0, log=True)}
    defaults = {"alpha": 1.0}

    def runtime_params(self, *, n_threads: int, random_state: int) -> dict[str, Any]:
        return {"random_state": random_state}


# --- tree ensembles ---------------------------------------------------------------------------

_FOREST_SPACE = {
    "n_estimators": IntRange(10, 500, log=True),
    "max_depth": IntRange(2, 32, none_allowed=True),
    "min_samples_leaf": IntRange(1, 20, log=True),
    "max_features": Choice(["sqrt", 0.5, 1.0]),
}


class _Forest(Algorithm):
    problem_types = BOTH
    search_space = _FOREST_SPACE
    defaults = {"n_estimators": 100, "max_depth": None, "min_samples_leaf": 1, "max_features": "sqrt"}

    def runtime_params(self, *, n_threads: int, random_state: int) -> dict[str, Any]:
        return {"n_jobs": n_threads, "random_state": random_state}


@register
class RandomForestAlgorithm(_Forest):
    key, label = "random_forest", "Random forest"
    traits = Traits(family="bagged trees", summary="robust with little tuning; captures non-linear effects",
                    prior=0.68, affinity={"small": 0.15, "large": -0.1, "missing": 0.05}, work_params=("n_estimators",),
                    starts=({"n_estimators": 300, "max_features": 0.5, "min_samples_leaf": 2},
                            {"n_estimators": 300, "max_features": "sqrt", "min_samples_leaf": 5}))
    classifier, regressor = RandomForestClassifier, RandomForestRegressor


@register
class ExtraTreesAlgorithm(_Forest):
    key, label = "extra_trees", "Extra trees"
    traits = Traits(family="bagged trees", summary="like a random forest, faster and smoother; good on small noisy data",
                    prior=0.62, affinity={"small": 0.18, "large": -0.1}, work_params=("n_estimators",),
                    starts=({"n_estimators": 300, "max_features": 1.0, "min_samples_leaf": 2},))
    classifier, regressor = ExtraTreesClassifier, ExtraTreesRegressor


@register
class HistGradientBoostingAlgorithm(Algorithm):
    key, label = "hist_gradient_boosting", "Histogram gradient boosting"
    traits = Traits(family="boosted trees", summary="accurate on larger tabular data, fast on many rows",
                    prior=0.74, affinity={"large": 0.35, "small": -0.15, "missing": 0.05}, work_params=("max_iter",),
                    starts=({"learning_rate": 0.05, "max_iter": 300, "max_leaf_nodes": 15, "min_samples_leaf": 10,
                             "l2_regularization": 1.0},
                            {"learning_rate": 0.05, "max_iter": 200, "max_leaf_nodes": 8, "min_samples_leaf": 40,
                             "l2_regularization": 1.0}))
    problem_types = BOTH
    classifier, regressor = HistGradientBoostingClassifier, HistGradientBoostingRegressor
    table_engine = "onnx"  # bench/engines.py, 2 threads: ONNX 1.7x to 3x the native rows/s
    search_space = {
        "learning_rate": FloatRange(0.01, 0.3, log=True),
        "max_iter": IntRange(10, 500, log=True),
        "max_leaf_nodes": IntRange(4, 128, log=True),
        "min_samples_leaf": IntRange(2, 100, log=True),
        "l2_regularization": FloatRange(1e-6, 10.0, log=True),
    }
    defaults = {"learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 31, "min_samples_leaf": 20,
                "l2_regularization": 1e-6}

    def runtime_params(self, *, n_threads: int, random_state: int) -> dict[str, Any]:
        return {"random_state": random_state}  # threads: OpenMP, capped by limit_threads


@register
class XGBoostAlgorithm(Algorithm):
    key, label = "xgboost", "XGBoost"
    traits = Traits(family="boosted trees", summary="often the most accurate on tabular data, with tuning",
                    prior=0.76, affinity={"large": 0.3, "small": -0.15, "categorical": 0.05}, work_params=("n_estimators", "max_depth"),
                    starts=({"n_estimators": 500, "learning_rate": 0.03, "max_depth": 4, "subsample": 0.8,
                             "colsample_bytree": 0.8, "min_child_weight": 2.0, "reg_lambda": 1.0},
                            {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 3, "subsample": 0.8,
                             "colsample_bytree": 0.8, "min_child_weight": 5.0, "reg_lambda": 1.0}))
    problem_types = BOTH
    classifier, regressor = XGBClassifier, XGBRegressor
    search_space = {
        "n_estimators": IntRange(10, 1000, log=True),
        "max_depth": IntRange(2, 12),
        "learning_rate": FloatRange(0.01, 0.3, log=True),
        "subsample": FloatRange(0.5, 1.0),
        "colsample_bytree": FloatRange(0.5, 1.0),
        "min_child_weight": FloatRange(1.0, 10.0, log=True),
        "reg_lambda": FloatRange(1e-3, 10.0, log=True),
    }
    defaults = {"n_estimators": 200, "max_depth": 6, "learning_rate": 0.1, "subsample": 1.0,
                "colsample_bytree": 1.0, "min_child_weight": 1.0, "reg_lambda": 1.0}

    def runtime_params(self, *, n_threads: int, random_state: int) -> dict[str, Any]:
        # CheckEveryRound: a running job's cancel and time limit are checked between boosting rounds.
        return {"n_jobs": n_threads, "random_state": random_state, "tree_method": "hist", "verbosity": 0,
                "callbacks": [CheckEveryRound()]}

    def build(self, problem_type: ProblemType, params: dict[str, Any] | None = None, *,
              n_threads: int = 1, random_state: int = 42) -> BaseEstimator:
        estimator = super().build(problem_type, params, n_threads=n_threads, random_state=random_state)
        # XGBoost wants classes 0..k-1; the wrapper keeps the original labels for predict().
        return LabelEncodedClassifier(estimator) if problem_type.is_classification else estimator
