"""Page forms; their choices come from the ML registries, so a new algorithm appears without touching this file."""
from __future__ import annotations

from django import forms

from mlplatform.forms import PlatformForm
from training.ml.algorithms import ALGORITHMS, algorithms_for
from training.ml.metrics import METRICS, metrics_for
from training.ml.problem import ProblemType
from training.ml.reading import DATE_FORMATS, KIND_CHOICES, NUMBER_FORMATS
from training.ml.search import SEARCHERS


PROBLEM_TYPE_CHOICES = [("auto", "Detect"), ("binary", "Binary classification"),
                        ("multiclass", "Multiclass classification"), ("regression", "Regression")]


class DatasetUploadForm(PlatformForm):
    file = forms.FileField(help_text="CSV (comma, semicolon, tab or pipe; UTF-8 or Latin-1) or Parquet.")
    name = forms.CharField(max_length=200, required=False, help_text="Defaults to the file name.")


class ColumnReadingForm(PlatformForm):
    """The per-column form of the dataset page: a column's kind, or (numbers and dates) its format. The
    choices come from the reading registry (``training.ml.reading``)."""

    KIND_CHOICES = KIND_CHOICES

    column = forms.CharField()
    kind = forms.ChoiceField(choices=[("", "as before"), *KIND_CHOICES], required=False)
    format = forms.ChoiceField(choices=[("", "as before"), *((k, k) for k in DATE_FORMATS),
                                        *((k, f.label) for k, f in NUMBER_FORMATS.items())], required=False)


class TrainingJobForm(PlatformForm):
    dataset = forms.TypedChoiceField(coerce=int)
    model_name = forms.CharField(max_length=200, help_text="Versions of the same name are numbered 1, 2, 3…")
    target = forms.ChoiceField()
    features = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                         help_text="Leave all unticked to use every other usable column.")
    algorithm = forms.ChoiceField()
    problem_type = forms.ChoiceField(choices=PROBLEM_TYPE_CHOICES)
    search = forms.ChoiceField()
    n_trials = forms.IntegerField(min_value=1, max_value=1000, initial=20)
    time_limit_s = forms.FloatField(min_value=1, required=False, label="Time limit (seconds)")
    metric = forms.ChoiceField(required=False)
    cv_folds = forms.IntegerField(min_value=2, max_value=20, initial=5, label="CV folds")
    test_size = forms.FloatField(min_value=0.05, max_value=0.5, initial=0.2, label="Test fraction")
    random_state = forms.IntegerField(min_value=0, initial=42, label="Random seed")
    time_budget_s = forms.FloatField(min_value=5, initial=60, required=False, label="AutoML budget (seconds)")
    keep_best_on_cancel = forms.BooleanField(required=False, initial=True, label="If cancelled, keep the best model so far")
    refit_on_all_rows = forms.BooleanField(required=False, initial=False,
                                           label="After the evaluation, refit the model on all rows (test part included)")

    def __init__(self, *args, datasets, columns: list[str], target: str | None = None,
                 problem_type: str | None = None, **kwargs):
        """`target`: left out of the features offered. `problem_type` (binary, multiclass, regression; None when
        unknown): only the algorithms and metrics that apply to it are offered."""
        super().__init__(*args, **kwargs)
        problem = ProblemType(problem_type) if problem_type in ProblemType._value2member_map_ else None
        algorithms = algorithms_for(problem) if problem else list(ALGORITHMS.values())
        metrics = metrics_for(problem) if problem else list(METRICS.values())
        self.fields["dataset"].choices = [(d.pk, f"{d.name} ({d.rows:,} rows)") for d in datasets]
        self.fields["target"].choices = [(c, c) for c in columns]
        self.fields["features"].choices = [(c, c) for c in columns if c != target]
        self.fields["algorithm"].choices = [("auto", "AutoML: every algorithm, within the budget")] + [
            (a.key, a.label) for a in algorithms]
        self.fields["search"].choices = [(s.key, s.label) for s in SEARCHERS.values()]
        self.fields["metric"].choices = [("", "Default for the problem type")] + [(m.key, m.label) for m in metrics]
        for name in ("dataset", "target", "problem_type"):  # the form is drawn again for these (static/js/forms.js)
            self.fields[name].widget.attrs["data-submit-on-change"] = True
