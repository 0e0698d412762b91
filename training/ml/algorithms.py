"""The algorithm registry: each algorithm is described once, as data.

Forms, the API and the searchers read ``ALGORITHMS``; adding an algorithm
means adding one class here.
"""
from __future__ import annotations

from typing import Any, ClassVar

from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    ExtraTreesClassifier, ExtraTreesRegressor, HistGradientBoostingClassifier, HistGradientBoostingRegressor,
    RandomForestClassifier, RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from xgboost import XGBClassifier, XGBRegressor

from training.ml.errors import MLInputError
from training.ml.problem import ProblemType
from training.ml.space import Choice, Distribution, FloatRange, IntRange
from training.ml.wrappers import LabelEncodedClassifier

CLASSIFICATION = frozenset({ProblemType.BINARY, ProblemType.MULTICLASS})
REGRESSION = frozenset({ProblemType.REGRESSION})
BOTH = CLASSIFICATION | REGRESSION


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


# --- linear models ---------------------------------------------------------------------------

@register
class LogisticRegressionAlgorithm(Algorithm):
    key, label = "logistic_regression", "Logistic regression"
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
    problem_types = REGRESSION
    needs_scaling = True
    regressor = LinearRegression
    defaults = {"fit_intercept": True}

    def runtime_params(self, *, n_threads: int, random_state: int) -> dict[str, Any]:
        return {"n_jobs": n_threads}


@register
class RidgeAlgorithm(Algorithm):
    key, label = "ridge", "Ridge regression"
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
    classifier, regressor = RandomForestClassifier, RandomForestRegressor


@register
class ExtraTreesAlgorithm(_Forest):
    key, label = "extra_trees", "Extra trees"
    classifier, regressor = ExtraTreesClassifier, ExtraTreesRegressor


@register
class HistGradientBoostingAlgorithm(Algorithm):
    key, label = "hist_gradient_boosting", "Histogram gradient boosting"
    problem_types = BOTH
    classifier, regressor = HistGradientBoostingClassifier, HistGradientBoostingRegressor
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
        return {"n_jobs": n_threads, "random_state": random_state, "tree_method": "hist", "verbosity": 0}

    def build(self, problem_type: ProblemType, params: dict[str, Any] | None = None, *,
              n_threads: int = 1, random_state: int = 42) -> BaseEstimator:
        estimator = super().build(problem_type, params, n_threads=n_threads, random_state=random_state)
        # XGBoost wants classes 0..k-1; the wrapper keeps the original labels for predict().
        return LabelEncodedClassifier(estimator) if problem_type.is_classification else estimator
