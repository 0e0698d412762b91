"""Hyperparameter distributions, usable by every searcher.

Each distribution can give a short grid, a random draw, an Optuna suggestion,
and can check a user-supplied value.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.ml.errors import MLInputError

GRID_POINTS = 3
#: Chance that a random draw picks ``None`` when a range allows it.
NONE_PROBABILITY = 0.25


class Distribution(ABC):
    none_allowed: bool = False

    @abstractmethod
    def grid(self, n: int = GRID_POINTS) -> list: ...

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> Any: ...

    @abstractmethod
    def suggest(self, trial, name: str) -> Any:
        """Ask an Optuna trial for a value of parameter ``name``."""

    @abstractmethod
    def describe(self) -> str: ...

    def as_dict(self) -> dict[str, Any]:
        """A JSON description for forms and the API."""
        return {"type": type(self).__name__, **{k: list(v) if isinstance(v, tuple) else v
                                                for k, v in self.__dict__.items()}}

    @abstractmethod
    def _coerce(self, value: Any) -> Any:
        """The value in its proper type if it lies in the range, else raise ValueError."""

    def coerce(self, name: str, value: Any) -> Any:
        """The value in its proper type, or an MLInputError saying what is allowed."""
        if value is None and self.none_allowed:
            return None
        try:
            return self._coerce(value)
        except (TypeError, ValueError):
            raise MLInputError(f"parameter '{name}' = {value!r} is invalid; it must be {self.describe()}",
                               field="params") from None

    def optuna_params(self, name: str, value: Any) -> dict[str, Any]:
        """The Optuna parameters that make ``suggest`` return ``value`` (to enqueue a trial)."""
        if self.none_allowed:
            return {f"{name}:none": value is None, **({} if value is None else {name: value})}
        return {name: value}

    def _maybe_none(self, trial, name: str) -> bool:
        return self.none_allowed and trial.suggest_categorical(f"{name}:none", [False, True])


def _points(low: float, high: float, n: int, log: bool) -> np.ndarray:
    return np.geomspace(low, high, n) if log else np.linspace(low, high, n)


@dataclass(frozen=True)
class IntRange(Distribution):
    low: int
    high: int
    log: bool = False
    none_allowed: bool = False

    def grid(self, n: int = GRID_POINTS) -> list:
        values = sorted({int(round(v)) for v in _points(self.low, self.high, n, self.log)})
        return values + ([None] if self.none_allowed else [])

    def sample(self, rng: np.random.Generator) -> int | None:
        if self.none_allowed and rng.random() < NONE_PROBABILITY:
            return None
        if self.log:
            return int(round(math.exp(rng.uniform(math.log(self.low), math.log(self.high)))))
        return int(rng.integers(self.low, self.high + 1))

    def suggest(self, trial, name: str) -> int | None:
        return None if self._maybe_none(trial, name) else trial.suggest_int(name, self.low, self.high, log=self.log)

    def describe(self) -> str:
        return f"a whole number from {self.low} to {self.high}" + (" or null" if self.none_allowed else "")

    def _coerce(self, value: Any) -> int:
        if isinstance(value, bool) or float(value) != int(float(value)):
            raise ValueError(value)
        number = int(float(value))
        if not self.low <= number <= self.high:
            raise ValueError(value)
        return number


@dataclass(frozen=True)
class FloatRange(Distribution):
    low: float
    high: float
    log: bool = False
    none_allowed: bool = False

    def grid(self, n: int = GRID_POINTS) -> list:
        values = [float(f"{v:.4g}") for v in _points(self.low, self.high, n, self.log)]
        return values + ([None] if self.none_allowed else [])

    def sample(self, rng: np.random.Generator) -> float | None:
        if self.none_allowed and rng.random() < NONE_PROBABILITY:
            return None
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def suggest(self, trial, name: str) -> float | None:
        return None if self._maybe_none(trial, name) else trial.suggest_float(name, self.low, self.high, log=self.log)

    def describe(self) -> str:
        return f"a number from {self.low:g} to {self.high:g}" + (" or null" if self.none_allowed else "")

    def _coerce(self, value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError(value)
        number = float(value)
        if not (math.isfinite(number) and self.low <= number <= self.high):
            raise ValueError(value)
        return number


@dataclass(frozen=True)
class Choice(Distribution):
    options: tuple

    def __init__(self, options):
        object.__setattr__(self, "options", tuple(options))

    def grid(self, n: int = GRID_POINTS) -> list:
        return list(self.options)

    def sample(self, rng: np.random.Generator) -> Any:
        return self.options[int(rng.integers(len(self.options)))]

    def suggest(self, trial, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.options))

    def describe(self) -> str:
        return "one of: " + ", ".join("null" if o is None else str(o) for o in self.options)

    def _coerce(self, value: Any) -> Any:
        for option in self.options:
            # Compare with types so that True does not match 1 and "1" does not match 1.
            if type(option) is type(value) and option == value:
                return option
            if isinstance(option, float) and isinstance(value, int) and not isinstance(value, bool) and option == value:
                return option
        raise ValueError(value)

    def coerce(self, name: str, value: Any) -> Any:
        try:
            return self._coerce(value)
        except ValueError:
            raise MLInputError(f"parameter '{name}' = {value!r} is invalid; it must be {self.describe()}",
                               field="params") from None
