import numpy as np
import pandas as pd
import pytest

from training.ml.errors import MLInputError
from training.ml.problem import ProblemType, detect_problem_type, resolve_problem_type


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([True, False] * 50, ProblemType.BINARY),
        (["yes", "no", "no"] * 30, ProblemType.BINARY),
        ([0, 1] * 50, ProblemType.BINARY),
        (["red", "green", "blue"] * 30, ProblemType.MULTICLASS),
        (list(range(5)) * 100, ProblemType.MULTICLASS),  # 5 whole-number values in 500 rows
        (list(range(50)) * 2, ProblemType.REGRESSION),  # 50 distinct in 100 rows: a count, not classes
        (list(np.linspace(0, 1, 100)), ProblemType.REGRESSION),
        ([1.0, 2.0, 3.0] * 40, ProblemType.MULTICLASS),  # whole numbers stored as floats
        ([1.5, 2.5, 3.5] * 40, ProblemType.REGRESSION),  # decimals are never classes
    ],
    ids=["bool", "two-strings", "zero-one", "strings", "few-ints", "many-ints", "floats", "int-floats", "decimals"],
)
def test_detect_problem_type_rules(values, expected):
    # Given a target column / When the problem type is detected
    problem_type, reason = detect_problem_type(pd.Series(values, name="y"))
    # Then it follows the documented rule and explains itself
    assert problem_type is expected
    assert len(reason) > 10


def test_detection_ignores_missing_values():
    y = pd.Series(["a", None, "b", np.nan] * 10)
    assert detect_problem_type(y)[0] is ProblemType.BINARY


def test_user_override_is_honoured():
    # Few integer values would be detected as classes, but the user may ask for regression
    y = pd.Series(list(range(5)) * 100)
    assert resolve_problem_type("regression", y) is ProblemType.REGRESSION
    assert resolve_problem_type("auto", y) is ProblemType.MULTICLASS


@pytest.mark.parametrize(
    ("requested", "values", "message"),
    [
        ("regression", ["a", "b", "c"] * 10, "numeric target"),
        ("binary", ["a", "b", "c"] * 10, "exactly 2 classes"),
        ("multiclass", ["a", "b"] * 10, "at least 3 classes"),
        ("clustering", [1, 2] * 10, "binary, multiclass, regression"),
    ],
)
def test_impossible_problem_type_is_refused(requested, values, message):
    with pytest.raises(MLInputError) as error:
        resolve_problem_type(requested, pd.Series(values, name="y"))
    assert error.value.field == "problem_type"
    assert message in error.value.message
