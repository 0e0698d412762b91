"""Save and load fitted pipelines with skops, never pickle.

Loading checks every type the file names against an allow-list before
anything is constructed:

- classes from ``sklearn.``, ``xgboost.``, ``numpy.`` and ``scipy.`` modules;
- functions only if listed in ``TRUSTED_FUNCTIONS`` (a function inside a
  ``FunctionTransformer`` is called with the data, so it is named one by one);
- this package's own types and functions, listed explicitly.
"""
from __future__ import annotations

import importlib

import skops.io as sio
from sklearn.pipeline import Pipeline

from training.ml import preprocess
from training.ml.interrupt import CheckEveryRound
from training.ml.wrappers import LabelEncodedClassifier

TRUSTED_CLASS_PREFIXES = ("sklearn.", "xgboost.", "numpy.", "scipy.")
TRUSTED_BUILTINS = frozenset({"builtins.bytearray", "builtins.bytes", "builtins.slice", "builtins.complex"})


def _name(obj) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


TRUSTED_FUNCTIONS = frozenset({
    _name(preprocess.to_float_frame),
    _name(preprocess.to_str_frame),
    _name(preprocess.to_bool_frame),
    _name(preprocess.datetime_parts),
    _name(preprocess.datetime_part_names),
})
TRUSTED_PROJECT_CLASSES = frozenset({_name(LabelEncodedClassifier), _name(CheckEveryRound)})


class UntrustedArtifact(Exception):
    """The file names a type or function outside the allow-list; it was not loaded."""


def _is_allowed_class(name: str) -> bool:
    """A class (not a function) defined under one of the trusted prefixes."""
    if not name.startswith(TRUSTED_CLASS_PREFIXES):
        return False
    module_name, _, attribute = name.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError):
        return False
    return isinstance(obj, type)


def is_trusted(name: str) -> bool:
    return (name in TRUSTED_FUNCTIONS or name in TRUSTED_PROJECT_CLASSES or name in TRUSTED_BUILTINS
            or _is_allowed_class(name))


def untrusted_names(data: bytes) -> list[str]:
    """Types and functions named in ``data`` that the allow-list refuses."""
    return [name for name in sio.get_untrusted_types(data=data) if not is_trusted(name)]


def load_pipeline(data: bytes) -> Pipeline:
    """Load a pipeline saved by ``dump_pipeline``; raise ``UntrustedArtifact`` for anything else."""
    try:
        names = sio.get_untrusted_types(data=data)
    except Exception as exc:
        raise UntrustedArtifact(f"not a readable skops file: {exc}") from exc
    refused = [name for name in names if not is_trusted(name)]
    if refused:
        raise UntrustedArtifact("the model file contains types that are not allowed: " + ", ".join(refused))
    pipeline = sio.loads(data, trusted=names)
    if not isinstance(pipeline, Pipeline):
        raise UntrustedArtifact(f"the model file holds a {type(pipeline).__name__}, not a Pipeline")
    return pipeline


def dump_pipeline(pipeline: Pipeline) -> bytes:
    """Serialise a fitted pipeline; refuse to write one that ``load_pipeline`` would reject."""
    data = sio.dumps(pipeline, compression=8)
    refused = untrusted_names(data)
    if refused:
        raise UntrustedArtifact("the pipeline contains types that could not be loaded again: " + ", ".join(refused))
    return data
