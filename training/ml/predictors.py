"""Answer predictions for the serving layer, from an ONNX graph or from the fitted pipeline.

Both engines share one interface, ``Predictor``:

- ``predict(frame)`` and ``predict_records(records)`` return ``(labels, probabilities)``
  for classification (probabilities are n x k, columns in the order of ``classes``) and
  ``(values, None)`` for regression;
- a column absent from the input is treated as missing in every row, like a null value;
- labels are the class with the highest probability (first one on a tie), on both engines;
- instances hold no mutable state, so one predictor may serve many threads at once.

The ONNX graph written by ``onnx_export`` holds everything the pipeline *learned*
(imputation values, scaling, the one-hot mapping, the model). What the pipeline's
``FunctionTransformer`` steps do before that - reading raw values as numbers,
strings, booleans or date parts - is stateless and stays in Python here (``coerce_column``),
value by value, without building a DataFrame: that is most of what makes one record fast.
"""
from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from training.ml.columns import BOOLEAN, CATEGORICAL, DATETIME, NUMERIC
from training.ml.preprocess import DATETIME_PARTS, MISSING_CATEGORY, _to_bool, datetime_parts
from training.ml.problem import ProblemType

#: Keys of the ONNX model's metadata_props written by ``onnx_export``.
META_COLUMNS = "ml.columns"
META_PROBLEM_TYPE = "ml.problem_type"
META_CLASSES = "ml.classes"
META_MISSING_CATEGORY = "ml.missing_category"
#: Graph outputs written by ``onnx_export``.
PROBABILITIES_OUTPUT = "probabilities"
VALUE_OUTPUT = "value"

Labels = np.ndarray
Probabilities = np.ndarray | None


# --- raw values -> what a graph input takes ---------------------------------------------------
# These mirror the FunctionTransformer the pipeline runs for each kind (preprocess.to_float_frame,
# to_bool_frame, to_str_frame, datetime_parts) and nothing after it: missing stays NaN (the graph
# imputes it), except for categories, where a string input cannot hold NaN and MISSING_CATEGORY
# is sent instead (the pipeline's own imputer fills in the same string).

#: Strings Python's float() and pandas' to_numeric read alike; any other string goes through pandas.
_PLAIN_DECIMAL = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")
_NAN = float("nan")


def is_missing(value: Any) -> bool:
    """``pd.isna`` for one value: fast for the common types, False for containers."""
    if value is None:
        return True
    if isinstance(value, str):
        return False
    if isinstance(value, float):
        return value != value
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def number(value: Any) -> float:
    """Like ``to_float_frame`` for one value: a float, NaN for anything else and for +/-inf."""
    kind = type(value)
    if kind is float:
        number_ = value
    elif kind is int or kind is bool:
        try:
            number_ = float(value)
        except OverflowError:
            return _NAN
    elif value is None:
        return _NAN
    elif kind is str and _PLAIN_DECIMAL.match(value):
        number_ = float(value)
    elif isinstance(value, (np.floating, np.integer, np.bool_)):
        number_ = float(value)
    else:
        number_ = float(pd.to_numeric(pd.Series([value], dtype=object), errors="coerce")
                        .to_numpy(dtype=float, na_value=np.nan)[0])
    return number_ if number_ - number_ == 0 else _NAN  # inf - inf and nan - nan are NaN


def boolean(value: Any) -> float:
    """Like ``to_bool_frame`` for one value: 1.0, 0.0 or NaN."""
    return _NAN if is_missing(value) else _to_bool(value)


def category(value: Any) -> str:
    """Like ``to_str_frame`` and the constant imputer for one value."""
    return MISSING_CATEGORY if is_missing(value) else str(value)


def date_parts(values: Sequence[Any]) -> np.ndarray:
    """Exactly ``datetime_parts`` (date parsing has too many cases to copy): n x len(DATETIME_PARTS)."""
    return datetime_parts(pd.DataFrame({"value": pd.Series(list(values), dtype=object)}))


#: kind -> (one raw value -> graph value, numpy dtype); kinds read value by value.
VALUE_COERCIONS: dict[str, tuple[Callable[[Any], Any], type]] = {
    NUMERIC: (number, np.float64),
    BOOLEAN: (boolean, np.float64),
    CATEGORICAL: (category, object),
}
#: kind -> raw values of one column -> n x width array; kinds read a column at a time.
COLUMN_COERCIONS: dict[str, Callable[[Sequence[Any]], np.ndarray]] = {DATETIME: date_parts}
#: kind -> width of its graph input
INPUT_WIDTHS = {NUMERIC: 1, BOOLEAN: 1, CATEGORICAL: 1, DATETIME: len(DATETIME_PARTS)}


def coerce_column(kind: str, values: Sequence[Any]) -> np.ndarray:
    """One column's raw values as the graph input for ``kind`` takes them (n x width)."""
    if kind in COLUMN_COERCIONS:
        return COLUMN_COERCIONS[kind](values)
    convert, dtype = VALUE_COERCIONS[kind]
    return np.array([convert(v) for v in values], dtype=dtype).reshape(-1, 1)


# --- the interface ------------------------------------------------------------------------------

class Predictor(ABC):
    """Predictions for new rows, the same way whatever the engine."""

    engine: ClassVar[str]

    def __init__(self, problem_type: str | ProblemType, classes: Sequence | None, input_columns: Sequence[str]):
        self.problem_type: str = ProblemType(problem_type).value
        self.is_classification = self.problem_type != ProblemType.REGRESSION.value
        if self.is_classification and not classes:
            raise ValueError(f"a {self.problem_type} predictor needs its classes")
        self.classes: list | None = list(classes) if self.is_classification else None
        self._class_array = np.array(self.classes, dtype=object) if self.classes is not None else None
        self.input_columns: list[str] = list(input_columns)

    @abstractmethod
    def predict(self, frame: pd.DataFrame) -> tuple[Labels, Probabilities]:
        """(labels, probabilities n x k) for classification, (values, None) for regression."""

    def predict_records(self, records: Sequence[dict[str, Any]]) -> tuple[Labels, Probabilities]:
        """Like ``predict`` for a list of ``{column: value}`` dicts (missing keys are missing values)."""
        return self.predict(pd.DataFrame.from_records(list(records), columns=self.input_columns))

    def _answer(self, output: np.ndarray) -> tuple[Labels, Probabilities]:
        """Turn the raw model output (probabilities or values) into the public answer."""
        if self.is_classification:
            proba = np.asarray(output, dtype=np.float64)
            return self._class_array[np.argmax(proba, axis=1)], proba
        return np.asarray(output, dtype=np.float64).reshape(-1), None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.problem_type}, {len(self.input_columns)} columns>"


class NativePredictor(Predictor):
    """The fitted scikit-learn pipeline itself; works for everything, slower per call.

    Takes ownership of ``pipeline``: estimators are switched to ``n_threads`` (default one),
    since a serving process runs many predictors side by side and a pool per call costs
    more than it saves on a few rows; a batch job, which has its cores, passes more.
    """

    engine = "native"

    def __init__(self, pipeline: Pipeline, problem_type: str | ProblemType, classes: Sequence | None,
                 input_columns: Sequence[str], *, n_threads: int = 1):
        super().__init__(problem_type, classes, input_columns)
        self.pipeline = pipeline
        _set_threads(pipeline, n_threads)

    def predict(self, frame: pd.DataFrame) -> tuple[Labels, Probabilities]:
        if not len(frame):  # scikit-learn refuses empty inputs
            return self._answer(np.empty((0, len(self.classes)) if self.is_classification else (0,)))
        X = frame if list(frame.columns) == self.input_columns else frame.reindex(columns=self.input_columns)
        if self.is_classification:
            return self._answer(self.pipeline.predict_proba(X))
        return self._answer(self.pipeline.predict(X))


def _set_threads(pipeline: Pipeline, n_threads: int) -> None:
    for _, step in pipeline.steps:
        for estimator in (step, getattr(step, "estimator_", None)):
            if estimator is not None and "n_jobs" in estimator.get_params(deep=False):
                estimator.set_params(n_jobs=n_threads)


class OnnxPredictor(Predictor):
    """An onnxruntime session over a graph written by ``onnx_export.export_onnx``.

    ``input_columns`` None means the columns the graph was written for. ``input_kinds``
    (column -> kind) is checked against the kinds the graph was written for; when left
    out, those are used. The session runs on one thread, sequentially: serving
    processes must not oversubscribe the CPU, and one record is faster without a pool.
    """

    engine = "onnx"

    def __init__(self, onnx_bytes: bytes, problem_type: str | ProblemType, classes: Sequence | None,
                 input_columns: Sequence[str] | None, input_kinds: dict[str, str] | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        if META_COLUMNS not in meta:
            raise ValueError("the ONNX graph was not written by onnx_export (no column metadata)")
        columns = [c["column"] for c in json.loads(meta[META_COLUMNS])]
        super().__init__(problem_type, classes, columns if input_columns is None else input_columns)
        written_for = (meta.get(META_PROBLEM_TYPE, self.problem_type), meta.get(META_CLASSES))
        if written_for[0] != self.problem_type or written_for[1] not in (None, json.dumps(self.classes, default=str)):
            raise ValueError(f"the ONNX graph was written for a {written_for[0]} model with classes {written_for[1]}, "
                             f"not {self.problem_type} with {self.classes}")
        self._inputs = self._read_inputs(meta, input_kinds)
        self.input_kinds = {column: kind for column, _, kind in self._inputs}
        #: (kind, columns, graph input names) per kind, so that one kind is converted in one go
        self._groups = [(kind, [c for c, _, k in self._inputs if k == kind],
                         [name for _, name, k in self._inputs if k == kind])
                        for kind in dict.fromkeys(k for _, _, k in self._inputs)]
        output = PROBABILITIES_OUTPUT if self.is_classification else VALUE_OUTPUT
        outputs = [o.name for o in self.session.get_outputs()]
        if output not in outputs:
            raise ValueError(f"the ONNX graph has no '{output}' output (it has {', '.join(outputs)}); "
                             f"was it written for a {self.problem_type} model?")
        self._outputs = [output]

    def _read_inputs(self, meta: dict[str, str], input_kinds: dict[str, str] | None) -> list[tuple[str, str, str]]:
        """(column, graph input name, kind) for every graph input, checked against what we were told."""
        inputs = [(c["column"], c["input"], c["kind"]) for c in json.loads(meta[META_COLUMNS])]
        if meta.get(META_MISSING_CATEGORY, MISSING_CATEGORY) != MISSING_CATEGORY:
            raise ValueError("the ONNX graph expects another marker for missing categories")
        graph_inputs = {i.name for i in self.session.get_inputs()}
        if graph_inputs != {name for _, name, _ in inputs}:
            raise ValueError("the ONNX graph's inputs do not match its column metadata")
        unknown = sorted({c for c, _, _ in inputs} - set(self.input_columns))
        if unknown:
            raise ValueError(f"the ONNX graph needs columns that are not input columns: {', '.join(unknown)}")
        for column, _, kind in inputs:
            if kind not in INPUT_WIDTHS:
                raise ValueError(f"the ONNX graph reads column '{column}' as {kind!r}, which is not supported")
            if input_kinds is not None and input_kinds.get(column, kind) != kind:
                raise ValueError(f"column '{column}' is {input_kinds[column]!r} here but the ONNX graph "
                                 f"was written for {kind!r}")
        return inputs

    def _feeds(self, column_values: Callable[[str], Sequence[Any]]) -> dict[str, np.ndarray]:
        """Graph inputs from a function giving each column's raw values.

        Columns of one kind are converted into one (columns x rows) array, whose rows are
        contiguous n x 1 views: one numpy allocation per kind rather than per column.
        """
        feeds = {}
        for kind, columns, names in self._groups:
            if kind in COLUMN_COERCIONS:
                feeds.update((name, COLUMN_COERCIONS[kind](column_values(c))) for c, name in zip(columns, names))
                continue
            convert, dtype = VALUE_COERCIONS[kind]
            block = np.array([[convert(v) for v in column_values(c)] for c in columns], dtype=dtype)
            feeds.update((name, row.reshape(-1, 1)) for name, row in zip(names, block))
        return feeds

    def _run(self, feeds: dict[str, np.ndarray], n_rows: int) -> tuple[Labels, Probabilities]:
        if n_rows == 0:  # some converted operators refuse empty inputs
            return self._answer(np.empty((0, len(self.classes)) if self.is_classification else (0,)))
        return self._answer(self.session.run(self._outputs, feeds)[0])

    def predict_records(self, records: Sequence[dict[str, Any]]) -> tuple[Labels, Probabilities]:
        return self._run(self._feeds(lambda column: [record.get(column) for record in records]), len(records))

    def predict(self, frame: pd.DataFrame) -> tuple[Labels, Probabilities]:
        # One conversion of the whole frame to Python values beats selecting columns one by one
        # (about 10 us each in pandas), and gives the values the pipeline's functions see.
        values = frame.to_numpy(dtype=object).T.tolist() if len(frame.columns) else []
        by_column, absent = dict(zip(frame.columns, values)), [None] * len(frame)
        return self._run(self._feeds(lambda column: by_column.get(column, absent)), len(frame))
