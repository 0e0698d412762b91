"""Numbers and parameters as pages show them (mlplatform/present.py)."""
import pytest

from mlplatform.present import ensemble_members, parameter, readable


@pytest.mark.parametrize(("value", "shown"), [
    (0.123456789, "0.1235"), (1234.5678, "1,235"), (1e9 + 5504.3, "1,000,005,504"), (2.0, "2"), (-2.3982328653977714, "-2.398"),
    (0.0004, "0.0004"), (1.234e-05, "1.234e-05"), (12, "12"), (0, "0"), (None, "—"), (float("nan"), "—"),
    (float("inf"), "∞"), ("sqrt", "sqrt"),
])
def test_readable_keeps_four_significant_digits(value, shown):
    assert readable(value) == shown


def test_parameters_read_like_settings():
    assert [parameter(v) for v in (None, True, 0.1000001, [64, 32], "balanced")] == ["none", "true", "0.1", "[64, 32]", "balanced"]


def test_ensemble_members_are_shown_by_rank_not_by_search_number():
    # Given a leaderboard where search candidate 7 ranks first and candidate 2 third
    board = [{"rank": 1, "number": 7, "cv_mean": 0.9, "params": {"C": 1.0}}, {"rank": 2, "number": 4, "cv_mean": 0.8},
             {"rank": 3, "number": 2, "cv_mean": 0.7, "params": {"max_depth": None}}, {"rank": None, "number": 5}]
    # When members name them as the leaderboard's ensemble row does (trial) or a version's parameters do (candidate)
    for key in ("trial", "candidate"):
        members = ensemble_members({"members": [{key: 2, "algorithm": "random_forest", "weight": 1},
                                                {key: 7, "algorithm": "logistic_regression", "weight": 3}]}, board)
        # Then each carries its rank, its share of the vote and its parameters, best first
        assert [(m["rank"], m["number"], m["share"]) for m in members] == [(1, 7, 0.75), (3, 2, 0.25)]
        assert members[1]["params"] == [("max_depth", "none")]
