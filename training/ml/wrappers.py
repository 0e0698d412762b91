"""Small estimator wrappers that live inside saved pipelines (so: module level, skops-safe)."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.preprocessing import LabelEncoder


class LabelEncodedClassifier(ClassifierMixin, BaseEstimator):
    """Fit ``estimator`` on labels encoded as 0..k-1 and answer with the original labels.

    XGBoost only accepts consecutive integer classes; with this wrapper
    ``pipeline.predict`` still returns "yes"/"no" (or whatever the target held).
    """

    def __init__(self, estimator=None):
        self.estimator = estimator

    def fit(self, X, y, **fit_params):
        encoder = LabelEncoder().fit(np.asarray(y))
        self.classes_ = encoder.classes_
        self.estimator_ = clone(self.estimator).fit(X, encoder.transform(np.asarray(y)), **fit_params)
        self.n_features_in_ = self.estimator_.n_features_in_
        return self

    def predict_proba(self, X) -> np.ndarray:
        return self.estimator_.predict_proba(X)

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    @property
    def feature_importances_(self) -> np.ndarray:
        return self.estimator_.feature_importances_
