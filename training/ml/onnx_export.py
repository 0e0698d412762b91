"""Write a fitted pipeline as an ONNX graph for fast serving, and check it answers like the pipeline.

What goes where:

- The pipeline's ``FunctionTransformer`` steps only *read* raw values (as numbers,
  strings, booleans, date parts). They are stateless and stay in Python: the
  ``OnnxPredictor`` does them value by value (``predictors.coerce_column``).
- Everything *fitted* goes into the graph: imputation values, scaling, the one-hot
  mapping of every category (infrequent and unseen ones included) and the model.

So the graph has one input per column: numeric and boolean columns as double
``[N, 1]`` with NaN for missing, date columns as double ``[N, 5]`` (the date parts),
categorical columns as string ``[N, 1]`` with ``MISSING_CATEGORY`` for missing. Its
outputs are ``probabilities`` (float64, columns in the order of the classes) and ``label``
(the position of the class, int64) for classifiers, ``value`` (float64) for regressors.
The preprocessing nodes are written here, in float64: the same arithmetic as the pipeline.

Precision of the model part, chosen so that every row takes the same branches as natively:

- linear models (skl2onnx) take float64 features, like their native predict;
- random forests and extra trees are written here: natively a tree compares the
  float32-rounded feature with a float64 threshold, so the graph rounds the features to
  float32 and compares them in float64 with the model's own thresholds; leaf class
  fractions are summed tree by tree in float64 like ``predict_proba``, which keeps exact
  ties (0.5 / 0.5 with an even number of trees) breaking towards the same class;
- histogram gradient boosting is written here too (skl2onnx's converter breaks with
  onnx >= 1.19 and would round its float64 thresholds to float32): float64 features and
  thresholds, then sklearn's link function in float64;
- XGBoost (onnxmltools) takes float32 features, as XGBoost casts them natively.

Tree sums leave onnxruntime's ``TreeEnsembleRegressor`` as float32, so probabilities and
values differ from native ones by about 1e-7 (relative); labels are identical.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import onnx
import pandas as pd
from onnx import TensorProto, helper, numpy_helper
from sklearn.base import is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier, ExtraTreesRegressor, HistGradientBoostingClassifier, HistGradientBoostingRegressor,
    RandomForestClassifier, RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from xgboost import XGBClassifier, XGBRegressor

from training.ml.columns import BOOLEAN, CATEGORICAL, DATETIME, NUMERIC
from training.ml.predictors import (
    INPUT_WIDTHS, META_CLASSES, META_COLUMNS, META_MISSING_CATEGORY, META_PROBLEM_TYPE, PROBABILITIES_OUTPUT,
    VALUE_OUTPUT, NativePredictor, OnnxPredictor, Predictor,
)
from training.ml.preprocess import MISSING_CATEGORY, datetime_parts, to_bool_frame, to_float_frame, to_str_frame
from training.ml.problem import ProblemType
from training.ml.wrappers import LabelEncodedClassifier

#: Opsets the graph is written for (onnxruntime >= 1.14 runs them).
TARGET_OPSET = {"": 18, "ai.onnx.ml": 3}
IR_VERSION = 8
#: Larger tree models are served natively: their graph would near protobuf's 2 GB limit.
MAX_TREE_NODES = 5_000_000
#: Rows of the sample the exported graph must run on before it is returned.
SMOKE_ROWS = 20
#: Models converted with float32 features, as XGBoost reads them natively (see the module docstring).
FLOAT32_MODELS = (XGBClassifier, XGBRegressor, LabelEncodedClassifier)
#: Which FunctionTransformer reads which kind of column (the first step of each column pipeline).
KIND_OF_FUNCTION = {to_float_frame: NUMERIC, to_bool_frame: BOOLEAN, datetime_parts: DATETIME,
                    to_str_frame: CATEGORICAL}
_LABEL_OUTPUT = "label"
_RESERVED_PREFIX = "__"
_MODEL_PREFIX = "__model."
_FEATURES = "features"
_UNSEEN = "\x00unseen category\x00"

logger = logging.getLogger(__name__)


class OnnxUnsupported(Exception):
    """The pipeline cannot be written as ONNX (``reason`` says why); serve it natively."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- converters skl2onnx does not have ----------------------------------------------------------

@cache
def register_converters() -> None:
    """Teach skl2onnx XGBoost (through onnxmltools) and ``LabelEncodedClassifier``. Idempotent."""
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes, calculate_linear_regressor_output_shapes,
    )

    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    update_registered_converter(XGBClassifier, "XGBoostXGBClassifier", calculate_linear_classifier_output_shapes,
                                convert_xgboost, options=classifier_options)
    update_registered_converter(XGBRegressor, "XGBoostXGBRegressor", calculate_linear_regressor_output_shapes,
                                convert_xgboost)
    update_registered_converter(LabelEncodedClassifier, "ProjectLabelEncodedClassifier",
                                calculate_linear_classifier_output_shapes, _convert_label_encoded,
                                options=classifier_options)


def _convert_label_encoded(scope, operator, container) -> None:
    """The wrapped estimator's graph; its labels 0..k-1 are positions in ``classes_``.

    Exported with ``nocl`` (labels as class positions), so they pass through; with
    class labels asked for, they are looked up in ``classes_``.
    """
    from skl2onnx._supported_operators import get_model_alias
    from skl2onnx.common._apply_operation import apply_identity
    from skl2onnx.common.data_types import Int64TensorType

    wrapper = operator.raw_operator
    inner = scope.declare_local_operator(get_model_alias(type(wrapper.estimator_)), wrapper.estimator_)
    inner.inputs = operator.inputs
    label = scope.declare_local_variable("encoded_label", Int64TensorType())
    proba = scope.declare_local_variable("inner_probabilities", operator.outputs[1].type.__class__())
    inner.outputs.extend([label, proba])
    apply_identity(scope, proba.onnx_name, operator.outputs[1].full_name, container)
    if scope.get_options(wrapper, {"nocl": False})["nocl"]:
        apply_identity(scope, label.onnx_name, operator.outputs[0].full_name, container)
        return
    classes = np.asarray(wrapper.classes_)
    name = scope.get_unique_variable_name("classes")
    if classes.dtype.kind in "OUS":
        container.add_initializer(name, TensorProto.STRING, [len(classes)], [str(c).encode() for c in classes])
    else:
        container.add_initializer(name, TensorProto.INT64, [len(classes)], classes.astype(np.int64))
    container.add_node("Gather", [name, label.onnx_name], operator.outputs[0].full_name, axis=0,
                       name=scope.get_unique_operator_name("Gather"))


# --- the preprocessing as ONNX nodes ------------------------------------------------------------

@dataclass
class _Block:
    """One transformer of the ColumnTransformer: its columns in, ``width`` doubles out."""

    kind: str
    columns: list[str]
    width: int
    #: numeric-like kinds: ("fill" | "sub" | "div", values) applied in order
    ops: list[tuple[str, np.ndarray]] = field(default_factory=list)
    #: categorical: category -> output feature (-1: none), and where anything else goes
    mapping: dict[str, int] = field(default_factory=dict)
    default: int = -1


def _kind_of(name: str, transformer: Any) -> tuple[str, list[tuple[str, Any]]]:
    """The column kind a column pipeline reads, and its fitted steps after the reading function."""
    first = transformer.steps[0][1] if isinstance(transformer, Pipeline) else None
    function = getattr(first, "func", None) if isinstance(first, FunctionTransformer) else None
    if function not in KIND_OF_FUNCTION:
        raise OnnxUnsupported(f"the transformer '{name}' ({type(transformer).__name__}) does not start by "
                              f"reading its columns with one of the preprocess functions")
    return KIND_OF_FUNCTION[function], transformer.steps[1:]


def _numeric_block(name: str, kind: str, columns: list[str], steps: list[tuple[str, Any]]) -> _Block:
    width = len(columns) * INPUT_WIDTHS[kind]
    block = _Block(kind=kind, columns=columns, width=width)
    for step_name, step in steps:
        if isinstance(step, SimpleImputer) and not step.add_indicator and _is_nan(step.missing_values):
            fill = np.asarray(step.statistics_, dtype=np.float64)
            if fill.shape != (width,) or not np.all(np.isfinite(fill)):
                raise OnnxUnsupported(f"the imputer of '{name}' drops or cannot fill some features")
            block.ops.append(("fill", fill))
        elif isinstance(step, StandardScaler):
            if step.with_mean:
                block.ops.append(("sub", np.asarray(step.mean_, dtype=np.float64)))
            if step.with_std:
                block.ops.append(("div", np.asarray(step.scale_, dtype=np.float64)))
        else:
            raise OnnxUnsupported(f"step '{step_name}' ({type(step).__name__}) of '{name}' has no ONNX form here")
    return block


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and np.isnan(value)


def _categorical_block(name: str, columns: list[str], transformer: Pipeline) -> _Block:
    """Read the fitted mapping off the pipeline itself: every known category, missing, and an unseen one."""
    if len(columns) != 1:
        raise OnnxUnsupported(f"the categorical transformer '{name}' encodes {len(columns)} columns, not 1")
    encoders = [step for _, step in transformer.steps if hasattr(step, "categories_")]
    if len(encoders) != 1:
        raise OnnxUnsupported(f"the categorical transformer '{name}' has no single fitted encoder")
    categories = [str(c) for c in encoders[0].categories_[0]]
    probe = pd.DataFrame({columns[0]: pd.Series([*categories, np.nan, _UNSEEN], dtype=object)})
    try:
        encoded = np.asarray(transformer.transform(probe), dtype=np.float64)
    except Exception as exc:  # e.g. handle_unknown="error": unseen categories would fail natively too
        raise OnnxUnsupported(f"the categorical transformer '{name}' cannot encode an unseen category: "
                              f"{exc}") from exc
    if not (np.isin(encoded, (0.0, 1.0)).all() and (encoded.sum(axis=1) <= 1).all()):
        raise OnnxUnsupported(f"the categorical transformer '{name}' is not a one-hot encoding")
    positions = np.where(encoded.sum(axis=1) == 1, encoded.argmax(axis=1), -1)
    mapping = dict(zip(categories, positions[:len(categories)].tolist()))
    mapping[MISSING_CATEGORY] = int(positions[-2])  # what the pipeline does with a missing value
    return _Block(kind=CATEGORICAL, columns=columns, width=encoded.shape[1], mapping=mapping,
                  default=int(positions[-1]))


def _blocks(transformer: ColumnTransformer) -> list[_Block]:
    """The transformer's outputs, in output order, as blocks; raise if they do not cover every feature."""
    placed = []
    for name, sub, columns in transformer.transformers_:
        span = transformer.output_indices_.get(name)
        if sub == "drop" or span is None or span.stop == span.start:
            continue
        if not all(isinstance(c, str) for c in columns):
            raise OnnxUnsupported(f"the transformer '{name}' selects columns by position, not by name")
        kind, steps = _kind_of(name, sub)
        block = (_categorical_block(name, list(columns), sub) if kind == CATEGORICAL
                 else _numeric_block(name, kind, list(columns), steps))
        if block.width != span.stop - span.start:
            raise OnnxUnsupported(f"the transformer '{name}' gives {span.stop - span.start} features, "
                                  f"expected {block.width}")
        placed.append((span.start, block))
    placed.sort(key=lambda item: item[0])
    starts = np.cumsum([0] + [b.width for _, b in placed])[:-1].tolist()
    if [start for start, _ in placed] != starts:
        raise OnnxUnsupported("the transformer's outputs do not line up with its parts")
    return [block for _, block in placed]


class _Graph:
    """Collects nodes and constants under unique internal names."""

    def __init__(self):
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def name(self) -> str:
        self._count += 1
        return f"{_RESERVED_PREFIX}prep.{self._count}"

    def constant(self, array: np.ndarray) -> str:
        name = self.name()
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], output: str | None = None, **attributes) -> str:
        output = output or self.name()
        self.nodes.append(helper.make_node(op, inputs, [output], name=f"{output}.op", **attributes))
        return output


def _block_nodes(graph: _Graph, block: _Block, inputs: list[str]) -> str:
    if block.kind == CATEGORICAL:
        keys = list(block.mapping)
        position = graph.node("LabelEncoder", inputs, domain="ai.onnx.ml", keys_strings=keys,
                              values_int64s=[block.mapping[k] for k in keys], default_int64=block.default)
        one_hot = graph.node("Equal", [position, graph.constant(np.arange(block.width, dtype=np.int64))])
        return graph.node("Cast", [one_hot], to=TensorProto.DOUBLE)
    x = inputs[0] if len(inputs) == 1 else graph.node("Concat", inputs, axis=1)
    for op, values in block.ops:
        if op == "fill":
            x = graph.node("Where", [graph.node("IsNaN", [x]), graph.constant(values), x])
        else:
            x = graph.node({"sub": "Sub", "div": "Div"}[op], [x, graph.constant(values)])
    return x


def _input_infos(blocks: list[_Block]) -> list[tuple[str, str, str]]:
    """(column, graph input name, kind); a column named like an output or an internal name is renamed."""
    taken = {_LABEL_OUTPUT, PROBABILITIES_OUTPUT, VALUE_OUTPUT}
    infos = []
    for i, (column, kind) in enumerate((c, b.kind) for b in blocks for c in b.columns):
        clashes = column in taken or column.startswith(_RESERVED_PREFIX)
        infos.append((column, f"{_RESERVED_PREFIX}in.{i}" if clashes else column, kind))
    return infos


# --- the whole graph ----------------------------------------------------------------------------

def _split(pipeline: Any) -> tuple[ColumnTransformer, Any]:
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2 or \
            not isinstance(pipeline.steps[0][1], ColumnTransformer):
        raise OnnxUnsupported("only a Pipeline of one ColumnTransformer and one model can be exported")
    return pipeline.steps[0][1], pipeline.steps[1][1]


class _Trees:
    """One ``TreeEnsembleRegressor`` (ai.onnx.ml 3) with float64 thresholds and leaf values.

    A leaf may feed several targets (one per class). onnxruntime sums in float64, tree by
    tree, and only rounds the final sums to float32 (the operator's output type).
    """

    def __init__(self):
        self._nodes: list[dict[str, np.ndarray]] = []
        self._leaves: list[dict[str, np.ndarray]] = []
        self.n_nodes = 0

    def add(self, *, is_leaf: np.ndarray, feature: np.ndarray, threshold: np.ndarray, left: np.ndarray,
            right: np.ndarray, missing_left: np.ndarray, leaf_weights: np.ndarray) -> None:
        """One tree, as arrays over its nodes; a split sends ``x[feature] <= threshold`` (and NaN when
        ``missing_left``) to ``left``. ``leaf_weights`` is nodes x targets (rows of splits are ignored)."""
        tree_id, n = len(self._nodes), len(is_leaf)
        split = ~np.asarray(is_leaf, dtype=bool)
        self._nodes.append({
            "nodes_treeids": np.full(n, tree_id), "nodes_nodeids": np.arange(n),
            "nodes_featureids": np.where(split, feature, 0), "nodes_values": np.where(split, threshold, 0.0),
            "nodes_modes": np.where(split, "BRANCH_LEQ", "LEAF"),
            "nodes_truenodeids": np.where(split, left, 0), "nodes_falsenodeids": np.where(split, right, 0),
            "nodes_missing_value_tracks_true": np.where(split, missing_left, 0),
        })
        weights = np.where(split[:, None], 0.0, leaf_weights)
        nodes, targets = np.nonzero(weights)
        self._leaves.append({"target_treeids": np.full(len(nodes), tree_id), "target_nodeids": nodes,
                             "target_ids": targets, "target_weights": weights[nodes, targets]})
        self.n_nodes += n
        if self.n_nodes > MAX_TREE_NODES:
            raise OnnxUnsupported(f"the model has more than {MAX_TREE_NODES:,} tree nodes; "
                                  f"its ONNX graph would be too large")

    def add_to(self, graph: _Graph, features: str, n_targets: int, base_values: np.ndarray | None = None,
               offset: np.ndarray | None = None) -> str:
        """Node summing the trees (plus ``base_values``); returns its float64 output [N, n_targets].

        The operator sums in float64 but hands its result over as float32, whose 24 bits cannot hold a value
        near 1e9 closer than 64. ``offset`` (about the sum itself) is therefore subtracted inside the operator
        and added back in float64 after it, so only the small remainder is rounded to float32.
        """
        offset = np.zeros(n_targets) if offset is None else np.asarray(offset, np.float64).reshape(-1)
        base_values = (np.zeros(n_targets) if base_values is None else
                       np.asarray(base_values, np.float64).reshape(-1)) - offset
        attributes: dict[str, Any] = {}
        for parts in (self._nodes, self._leaves):
            for key in parts[0]:
                values = np.concatenate([part[key] for part in parts])
                if key in ("nodes_values", "target_weights"):
                    attributes[f"{key}_as_tensor"] = numpy_helper.from_array(values.astype(np.float64))
                elif key == "nodes_modes":
                    attributes[key] = values.tolist()
                else:
                    attributes[key] = values.astype(np.int64).tolist()
        attributes["base_values_as_tensor"] = numpy_helper.from_array(base_values)
        raw = graph.node("TreeEnsembleRegressor", [features], domain="ai.onnx.ml", n_targets=n_targets,
                         aggregate_function="SUM", post_transform="NONE", **attributes)
        summed = graph.node("Cast", [raw], to=TensorProto.DOUBLE)
        return graph.node("Add", [summed, graph.constant(offset)]) if np.any(offset) else summed


def _model_proto(graph: _Graph, name: str, n_features: int, classification: bool, output: str,
                 n_classes: int = 0) -> onnx.ModelProto:
    """Finish a model graph: ``output`` becomes the probabilities (plus labels) or the values."""
    if classification:
        graph.node("Identity", [output], "probabilities")
        graph.node("ArgMax", [output], "label", axis=1, keepdims=0)
        outputs = [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                   helper.make_tensor_value_info("probabilities", TensorProto.DOUBLE, [None, n_classes])]
    else:
        graph.node("Identity", [output], "variable")
        outputs = [helper.make_tensor_value_info("variable", TensorProto.DOUBLE, [None, 1])]
    inputs = [helper.make_tensor_value_info(_FEATURES, TensorProto.DOUBLE, [None, n_features])]
    return helper.make_model(helper.make_graph(graph.nodes, name, inputs, outputs, initializer=graph.initializers),
                             opset_imports=[helper.make_opsetid(d, v) for d, v in TARGET_OPSET.items()],
                             ir_version=IR_VERSION)


def _forest(model: Any, n_features: int, classification: bool) -> onnx.ModelProto:
    """Random forest / extra trees, splitting and averaging exactly like ``predict_proba``/``predict``.

    Natively each tree compares the float32-rounded feature with a float64 threshold and the
    forest averages per-tree class fractions in float64, tree by tree; the same happens
    here, so ties (0.5 / 0.5 with an even number of trees) break the same way.
    """
    if model.n_outputs_ != 1:
        raise OnnxUnsupported("forests predicting several targets are not exported")
    trees = _Trees()
    for estimator in model.estimators_:
        tree = estimator.tree_
        values = tree.value[:, 0, :]
        if classification:  # as DecisionTreeClassifier.predict_proba normalises a leaf
            totals = values.sum(axis=1, keepdims=True)
            values = values / np.where(totals == 0.0, 1.0, totals)
        trees.add(is_leaf=tree.children_left == -1, feature=tree.feature, threshold=tree.threshold,
                  left=tree.children_left, right=tree.children_right,
                  missing_left=getattr(tree, "missing_go_to_left", np.zeros(tree.node_count, dtype=np.uint8)),
                  leaf_weights=values)
    graph = _Graph()
    rounded = graph.node("Cast", [graph.node("Cast", [_FEATURES], to=TensorProto.FLOAT)], to=TensorProto.DOUBLE)
    n_targets = len(model.classes_) if classification else 1
    # Regression leaves hold target values: centre their sum on the training mean (see _Trees.add_to).
    offset = None if classification else np.array([len(model.estimators_) * _leaf_mean(model)])
    total = trees.add_to(graph, rounded, n_targets, offset=offset)
    mean = graph.node("Div", [total, graph.constant(np.array([float(len(model.estimators_))]))])
    return _model_proto(graph, type(model).__name__, n_features, classification, mean, n_targets)


def _leaf_mean(model: Any) -> float:
    """The mean of a regression forest's leaf values (about the training target's mean)."""
    leaves = [e.tree_.value[e.tree_.children_left == -1, 0, 0] for e in model.estimators_]
    return float(np.mean(np.concatenate(leaves))) if leaves else 0.0


def _hist_gradient_boosting(model: Any, n_features: int, classification: bool) -> onnx.ModelProto:
    """Raw scores from float64 thresholds on float64 features, then sklearn's link function in float64."""
    trees = _Trees()
    for iteration in model._predictors:
        for target, predictor in enumerate(iteration):
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise OnnxUnsupported("histogram gradient boosting with categorical splits is not exported")
            weights = np.zeros((len(nodes), len(iteration)))
            weights[:, target] = nodes["value"]
            trees.add(is_leaf=nodes["is_leaf"].astype(bool), feature=nodes["feature_idx"],
                      threshold=nodes["num_threshold"], left=nodes["left"], right=nodes["right"],
                      missing_left=nodes["missing_go_to_left"], leaf_weights=weights)
    n_targets = int(model.n_trees_per_iteration_)
    graph = _Graph()
    baseline = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1)
    raw = trees.add_to(graph, _FEATURES, n_targets, baseline, offset=baseline)
    link = type(model._loss.link).__name__
    if not classification:
        if link != "IdentityLink":
            raise OnnxUnsupported(f"histogram gradient boosting with loss {model.loss!r} is not exported")
        return _model_proto(graph, type(model).__name__, n_features, False, raw)
    if n_targets == 1:  # HalfBinomialLoss: [1 - expit(raw), expit(raw)]
        positive = graph.node("Sigmoid", [raw])
        proba = graph.node("Concat", [graph.node("Sub", [graph.constant(np.array([1.0])), positive]), positive],
                           axis=1)
    else:
        proba = graph.node("Softmax", [raw], axis=1)
    return _model_proto(graph, type(model).__name__, n_features, True, proba, max(n_targets, 2))


#: Models written here instead of by skl2onnx (see the module docstring).
OWN_CONVERTERS = {
    RandomForestClassifier: _forest, RandomForestRegressor: _forest,
    ExtraTreesClassifier: _forest, ExtraTreesRegressor: _forest,
    HistGradientBoostingClassifier: _hist_gradient_boosting, HistGradientBoostingRegressor: _hist_gradient_boosting,
}


def _convert_model(model: Any, n_features: int, float32: bool, classification: bool) -> onnx.ModelProto:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    if type(model) in OWN_CONVERTERS:
        return OWN_CONVERTERS[type(model)](model, n_features, classification)
    register_converters()
    tensor = FloatTensorType if float32 else DoubleTensorType
    options = {id(model): {"zipmap": False, "nocl": True}} if classification else None
    try:
        return convert_sklearn(model, initial_types=[(_FEATURES, tensor([None, n_features]))], options=options,
                               target_opset=TARGET_OPSET)
    except Exception as exc:
        raise OnnxUnsupported(f"{type(model).__name__} could not be converted: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc


def _assemble(blocks: list[_Block], model_proto: onnx.ModelProto, float32: bool,
              classification: bool) -> onnx.ModelProto:
    """Preprocessing nodes in front of the (prefixed) model graph, outputs under their public names."""
    model_proto = onnx.compose.add_prefix(model_proto, _MODEL_PREFIX)
    model_graph = model_proto.graph
    infos = _input_infos(blocks)
    graph = _Graph()
    names = iter(name for _, name, _ in infos)
    parts = [_block_nodes(graph, block, [next(names) for _ in block.columns]) for block in blocks]
    features = parts[0] if len(parts) == 1 else graph.node("Concat", parts, axis=1)
    graph.node("Cast" if float32 else "Identity", [features], _MODEL_PREFIX + _FEATURES,
               **({"to": TensorProto.FLOAT} if float32 else {}))

    wanted = {_MODEL_PREFIX + "label": _LABEL_OUTPUT, _MODEL_PREFIX + "probabilities": PROBABILITIES_OUTPUT} \
        if classification else {_MODEL_PREFIX + "variable": VALUE_OUTPUT}
    produced = {o.name: o for o in model_graph.output}
    if not set(wanted) <= set(produced):
        raise OnnxUnsupported(f"the converted model has outputs {', '.join(produced)}, not {', '.join(wanted)}")
    outputs = []
    for internal, public in wanted.items():
        graph.node("Identity", [internal], public)
        outputs.append(helper.make_value_info(public, produced[internal].type))

    inputs = [helper.make_tensor_value_info(
        name, TensorProto.STRING if kind == CATEGORICAL else TensorProto.DOUBLE, [None, INPUT_WIDTHS[kind]])
        for _, name, kind in infos]
    nodes = graph.nodes[:-len(wanted)] + list(model_graph.node) + graph.nodes[-len(wanted):]
    merged = helper.make_graph(nodes, "pipeline", inputs, outputs,
                               initializer=graph.initializers + list(model_graph.initializer))
    opsets = {o.domain: o.version for o in model_proto.opset_import}
    # LabelEncoder needs ai.onnx.ml >= 2; the converters may have asked for less.
    opsets = {**opsets, **{d: max(opsets.get(d, 0), v) for d, v in TARGET_OPSET.items()}}
    result = helper.make_model(merged, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
                               producer_name="training.ml.onnx_export", ir_version=model_proto.ir_version)
    helper.set_model_props(result, {META_COLUMNS: json.dumps(
        [{"column": column, "input": name, "kind": kind} for column, name, kind in infos])})
    return result


def export_onnx(pipeline: Pipeline, sample: pd.DataFrame, *, problem_type: str | ProblemType,
                classes: list | None) -> bytes:
    """The fitted ``pipeline`` as ONNX bytes, checked to run on (a few rows of) ``sample``.

    Raises ``OnnxUnsupported`` with the reason for anything that cannot be exported (and
    for any converter failure); the caller then serves the pipeline natively. Whether
    the graph *agrees* with the pipeline is for ``check_parity``.
    """
    try:
        data = _export(pipeline, ProblemType(problem_type), classes)
    except OnnxUnsupported:
        raise
    except Exception as exc:
        raise OnnxUnsupported(f"the export failed: {type(exc).__name__}: {exc}") from exc
    try:  # the sample's first rows and a row with every value missing
        predictor = OnnxPredictor(data, problem_type, classes, None)
        predictor.predict(sample.head(SMOKE_ROWS))
        predictor.predict_records([{}])
    except Exception as exc:
        raise OnnxUnsupported(f"onnxruntime cannot run the exported graph: {type(exc).__name__}: {exc}") from exc
    return data


def _export(pipeline: Pipeline, problem: ProblemType, classes: list | None) -> bytes:
    preprocess, model = _split(pipeline)
    if is_classifier(model) != problem.is_classification:
        raise OnnxUnsupported(f"the model {type(model).__name__} does not fit a {problem.value} problem")
    if problem.is_classification and np.asarray(pipeline.classes_).tolist() != list(classes or []):
        raise OnnxUnsupported("the classes given are not the pipeline's classes, in its order")
    blocks = _blocks(preprocess)
    if not blocks:
        raise OnnxUnsupported("the pipeline uses no columns")
    float32 = isinstance(model, FLOAT32_MODELS)
    model_proto = _convert_model(model, sum(b.width for b in blocks), float32, problem.is_classification)
    proto = _assemble(blocks, model_proto, float32, problem.is_classification)
    meta = {p.key: p.value for p in proto.metadata_props}
    meta.update({META_PROBLEM_TYPE: problem.value, META_MISSING_CATEGORY: MISSING_CATEGORY,
                 META_CLASSES: json.dumps(classes if problem.is_classification else None, default=str),
                 "ml.model_precision": "float32" if float32 else "float64"})
    helper.set_model_props(proto, meta)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


# --- parity and choosing the engine -------------------------------------------------------------

#: The agreement every route must reach: probabilities within this, regression values within this times the
#: spread (standard deviation) of the target on the test split. A difference this small cannot change a
#: decision and survives rounding to the 6 decimals of a prediction response.
PARITY_TOLERANCE = 1e-6


def check_parity(pipeline: Pipeline, onnx_bytes: bytes, frame: pd.DataFrame, *, problem_type: str | ProblemType,
                 classes: list | None, spread: float | None = None,
                 tolerance: float = PARITY_TOLERANCE) -> dict[str, Any]:
    """Compare the graph with the pipeline on ``frame`` (extra columns, e.g. the target, are ignored).

    Classification agrees when every probability is within ``tolerance`` and every label is
    identical. Regression agrees when every value is within ``tolerance * spread``, where
    ``spread`` is the standard deviation of the target on the test split (when not given or
    zero: of the native predictions, else 1). A difference relative to |value| would let a
    target near 1e9 differ by 1e5 and still "agree"; the spread is the scale its errors are
    judged on. ``labels_identical`` repeats the value check for regression. ``max_abs_diff``
    is the largest absolute difference (of probabilities, or values); None when nothing
    could be compared. The report also gives ``tolerance`` (absolute, as applied) and the
    graph's ``model_precision``.
    """
    problem = ProblemType(problem_type)
    report = {"agree": False, "max_abs_diff": None, "labels_identical": False, "rows": int(len(frame)), "reason": "",
              "tolerance": None, "model_precision": None}
    try:
        predictor = OnnxPredictor(onnx_bytes, problem, classes, None)
    except Exception as exc:
        return {**report, "reason": f"the ONNX graph cannot be loaded: {type(exc).__name__}: {exc}"}
    report["model_precision"] = predictor.session.get_modelmeta().custom_metadata_map.get("ml.model_precision")
    if not len(frame):
        return {**report, "reason": "no rows to compare"}
    X = frame.reindex(columns=predictor.input_columns)
    try:
        labels, proba = predictor.predict(X)
        if problem.is_classification:
            native, native_labels = pipeline.predict_proba(X), pipeline.predict(X)
            ours = proba
        else:
            native, ours = pipeline.predict(X), labels
    except Exception as exc:
        return {**report, "reason": f"prediction failed: {type(exc).__name__}: {exc}"}

    native = np.asarray(native, dtype=np.float64)
    ours = np.asarray(ours, dtype=np.float64).reshape(native.shape)
    diff = np.abs(native - ours)
    max_diff = float(np.max(diff)) if np.all(np.isfinite(diff)) else float("inf")
    if problem.is_classification:
        allowed = tolerance
        within = max_diff <= allowed
        labels_identical = bool(np.array_equal(np.asarray(native_labels, dtype=object), labels))
        n_diff = int(np.sum(np.asarray(native_labels, dtype=object) != labels))
        agree = within and labels_identical
        reason = (f"probabilities within {allowed:g} and labels identical on {len(X)} test rows" if agree else
                  f"{'' if within else f'probabilities differ by up to {max_diff:.3g} (tolerance {allowed:g}); '}"
                  f"{'' if labels_identical else f'{n_diff} of {len(X)} labels differ'}".rstrip("; "))
    else:
        scale = spread if spread and np.isfinite(spread) else float(np.std(native)) or 1.0
        allowed = tolerance * scale
        outside = int(np.sum(~(diff <= allowed)))
        agree = labels_identical = outside == 0
        precision = report["model_precision"]
        reason = (f"values within {allowed:.3g} ({tolerance:g} x the target's spread {scale:.4g}) on {len(X)} test rows"
                  if agree else
                  f"{outside} of {len(X)} values differ by more than {allowed:.3g} ({tolerance:g} x the target's spread "
                  f"{scale:.4g}; largest difference {max_diff:.3g})"
                  + (": the graph computes in single precision, which cannot hold values of this size closely enough"
                     if precision == "float32" else ""))
    return {**report, "agree": bool(agree), "max_abs_diff": max_diff, "labels_identical": bool(labels_identical),
            "reason": reason, "tolerance": float(allowed)}


def build_predictor(*, pipeline: Pipeline | None, onnx_bytes: bytes | None, problem_type: str | ProblemType,
                    classes: list | None, input_columns: list[str],
                    input_kinds: dict[str, str] | None = None) -> Predictor:
    """An ``OnnxPredictor`` when a graph is given and loads, else a ``NativePredictor`` of ``pipeline``."""
    if onnx_bytes is not None:
        try:
            return OnnxPredictor(onnx_bytes, problem_type, classes, input_columns, input_kinds)
        except Exception:
            if pipeline is None:
                raise
            logger.warning("ONNX graph not usable, serving the pipeline natively", exc_info=True)
    if pipeline is None:
        raise ValueError("build_predictor needs a pipeline or ONNX bytes")
    return NativePredictor(pipeline, problem_type, classes, input_columns)
