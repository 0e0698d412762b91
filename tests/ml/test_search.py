import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from training.ml.algorithms import Algorithm, RidgeAlgorithm, get_algorithm
from training.ml.errors import JobCancelled, MLInputError
from training.ml.metrics import get_metric
from training.ml.preprocess import plan_preprocessing
from training.ml.problem import ProblemType
from training.ml.search import SEARCHERS, SearchTask, get_searcher, run_search
from training.ml.space import Choice, FloatRange


def make_task(df, algorithm, problem_type, **overrides) -> SearchTask:
    X, y = df.drop(columns="target"), df["target"]
    settings = dict(X=X, y=y, problem_type=problem_type, algorithm=algorithm,
                    metric=get_metric(None, problem_type),
                    preprocessor=plan_preprocessing(X, scale_numeric=algorithm.needs_scaling).transformer,
                    n_trials=4, cv_folds=3, random_state=0)
    return SearchTask(**{**settings, **overrides})


@pytest.mark.parametrize("key", ["grid", "random", "bayesian"])
def test_each_searcher_runs_n_trials_with_params_and_cv_scores(key, binary_df):
    # Given a forest with a fixed small size, searched over its other parameters
    algorithm = get_algorithm("random_forest")
    task = make_task(binary_df, algorithm, ProblemType.BINARY, fixed_params={"n_estimators": 10})
    # When the search runs
    result = run_search(key, task)
    # Then there are n_trials numbered trials, each with its parameters and fold scores
    assert [t["number"] for t in result.trials] == [1, 2, 3, 4]
    for trial in result.trials:
        assert trial["params"]["n_estimators"] == 10
        assert set(trial["params"]) - {"n_estimators"} <= set(algorithm.search_space)
        if trial["state"] == "complete":
            assert len(trial["fold_scores"]) == 3
            assert trial["cv_mean"] == pytest.approx(np.mean(trial["fold_scores"]))
    # And trials actually explore different parameters
    assert len({repr(sorted(t["params"].items())) for t in result.trials}) > 1
    # And the best trial is the complete one with the highest CV ROC AUC
    complete = [t for t in result.trials if t["state"] == "complete"]
    assert result.best["cv_mean"] == max(t["cv_mean"] for t in complete)


def test_no_search_runs_the_defaults_once(regression_df):
    task = make_task(regression_df, get_algorithm("ridge"), ProblemType.REGRESSION)
    result = run_search("none", task)
    assert len(result.trials) == 1 and result.best_params == {}


def test_lower_is_better_metrics_pick_the_smallest_error(regression_df):
    task = make_task(regression_df, get_algorithm("ridge"), ProblemType.REGRESSION, n_trials=5)
    result = run_search("random", task)
    assert result.best["cv_mean"] == min(t["cv_mean"] for t in result.trials if t["state"] == "complete")


class WideRidge(RidgeAlgorithm):
    """Ridge with a range so wide that many trials are hopeless: pruning should stop them."""

    search_space = {"alpha": FloatRange(1e-3, 1e6, log=True)}


def test_bayesian_search_prunes_hopeless_trials(regression_df):
    # Given a search space where large alphas are far worse than small ones
    task = make_task(regression_df, WideRidge(), ProblemType.REGRESSION, n_trials=20, cv_folds=5)
    # When the Bayesian search runs
    result = run_search("bayesian", task)
    pruned = [t for t in result.trials if t["state"] == "pruned"]
    # Then some trials are stopped after fewer folds than the full CV
    assert pruned, [t["state"] for t in result.trials]
    assert all(1 <= len(t["fold_scores"]) < 5 and t["cv_mean"] is None for t in pruned)
    # And the winner is a sensible (small) alpha
    assert result.best_params["alpha"] < 100
    assert any("stopped early" in note for note in result.notes)


class SometimesBroken(Algorithm):
    key, label = "sometimes_broken", "Logistic regression with a bad solver option"
    problem_types = frozenset({ProblemType.BINARY})
    needs_scaling = True
    classifier = LogisticRegression
    search_space = {"solver": Choice(["lbfgs", "no-such-solver"])}
    defaults = {"solver": "lbfgs", "max_iter": 500}


def test_a_failing_trial_is_recorded_and_the_search_goes_on(binary_df):
    result = run_search("grid", make_task(binary_df, SometimesBroken(), ProblemType.BINARY))
    states = {t["params"]["solver"]: t for t in result.trials}
    assert states["no-such-solver"]["state"] == "failed"
    assert "solver" in states["no-such-solver"]["error"]
    assert result.best_params == {"solver": "lbfgs"}


def test_time_limit_stops_starting_new_trials(binary_df):
    task = make_task(binary_df, get_algorithm("logistic_regression"), ProblemType.BINARY,
                     n_trials=50, time_limit_s=0.01)
    result = run_search("random", task)
    assert 1 <= len(result.trials) < 50
    assert any("time limit" in note for note in result.notes)


@pytest.mark.parametrize("key", sorted(SEARCHERS))
def test_cancel_from_progress_stops_between_folds(key, binary_df):
    # Given a progress callback that cancels when the second fold of trial 2 is about to start
    calls = []

    def progress(stage: str, fraction: float) -> None:
        calls.append(stage)
        if stage.endswith("fold 2/3") and (stage.startswith("trial 2/") or key == "none"):
            raise JobCancelled

    task = make_task(binary_df, get_algorithm("logistic_regression"), ProblemType.BINARY, progress=progress)
    # When the search runs, Then the cancel propagates (it is not recorded as a failed trial)
    with pytest.raises(JobCancelled):
        run_search(key, task)
    # And nothing ran after it
    assert calls[-1].endswith("fold 2/3")


def test_progress_fraction_only_grows(binary_df):
    fractions = []
    task = make_task(binary_df, get_algorithm("logistic_regression"), ProblemType.BINARY,
                     progress=lambda stage, fraction: fractions.append(fraction))
    run_search("bayesian", task)
    assert fractions == sorted(fractions) and 0 <= fractions[0] and fractions[-1] <= 1


def test_unknown_searcher_lists_the_choices():
    with pytest.raises(MLInputError) as error:
        get_searcher("exhaustive")
    assert error.value.field == "search"
    assert "none, grid, random, bayesian" in error.value.message
