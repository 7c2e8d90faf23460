"""A fitted scikit-learn model as a predictor of the feature columns, without per-ride dicts.

A model here is a DictVectorizer followed by an estimator: a course
``model.bin`` tuple, or a Pipeline as training logs it. The linear family
(LinearRegression, Ridge, Lasso, ElasticNet and their CV variants) becomes a
``WeightTable``; any other estimator keeps scikit-learn and gets the sparse
matrix ``DictVectorizer.transform`` would build, made straight from the columns.
Imported only for models that are not already a weight table, so scikit-learn
stays off the import path of a function serving one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import ElasticNet, ElasticNetCV, Lasso, LassoCV, LinearRegression, Ridge, RidgeCV
from sklearn.pipeline import Pipeline

from model_service.errors import NotARideModel
from model_service.model.features import FeatureLayout
from model_service.model.weight_table import WeightTable

LINEAR_FAMILY = (LinearRegression, Ridge, RidgeCV, Lasso, LassoCV, ElasticNet, ElasticNetCV)
"""Regressors whose ``predict`` is exactly ``X @ coef_ + intercept_`` (matched by exact type: subclasses may differ)."""


@dataclass(frozen=True)
class SparseModel:
    """Any estimator after a DictVectorizer, fed the vectorizer's matrix built from the columns directly."""

    layout: FeatureLayout
    estimator: Any

    def predict(self, pu_location_id: np.ndarray, do_location_id: np.ndarray, trip_distance: np.ndarray) -> np.ndarray:
        matrix = self.layout.matrix(pu_location_id, do_location_id, trip_distance)
        return np.asarray(self.estimator.predict(matrix), dtype=np.float64)


def vectorizer_and_estimator(model: Any) -> tuple[DictVectorizer, Any]:
    """Split a ``(DictVectorizer, estimator)`` tuple or a Pipeline that starts with a DictVectorizer."""
    if isinstance(model, Pipeline) and len(model.steps) >= 2:
        vectorizer, estimator = model.steps[0][1], model[1:] if len(model.steps) > 2 else model.steps[-1][1]
    elif isinstance(model, tuple) and len(model) == 2:
        vectorizer, estimator = model
    else:
        raise NotARideModel(
            f"it holds an object of type {type(model).__name__}, not a DictVectorizer followed by an estimator"
        )
    if not isinstance(vectorizer, DictVectorizer):
        raise NotARideModel(f"its first step is a {type(vectorizer).__name__}, not a DictVectorizer")
    if not callable(getattr(estimator, "predict", None)):
        raise NotARideModel(f"its estimator, a {type(estimator).__name__}, has no predict method")
    return vectorizer, estimator


def weight_table(vectorizer: DictVectorizer, estimator: Any, layout: FeatureLayout | None = None) -> WeightTable | None:
    """The estimator as a weight table, if it is of the linear family with one target; else None."""
    if type(estimator) not in LINEAR_FAMILY:
        return None
    coefficients = np.asarray(estimator.coef_)
    if coefficients.ndim != 1 or np.ndim(estimator.intercept_) != 0:
        return None  # one weight vector per target: several targets are not a ride duration
    if np.dtype(vectorizer.dtype) != np.float64:
        return None  # the regressor would then multiply float32 features; only the sparse path reproduces that
    layout = layout or FeatureLayout.of(vectorizer)
    return WeightTable.from_coefficients(
        layout.pair_columns, layout.distance_column, coefficients, float(estimator.intercept_)
    )


def predictor_for(model: Any) -> tuple[WeightTable | SparseModel, str]:
    """The fastest exact predictor of ``model``, and a description of it for the logs."""
    vectorizer, estimator = vectorizer_and_estimator(model)
    layout = FeatureLayout.of(vectorizer)
    table = weight_table(vectorizer, estimator, layout)
    if table is not None:
        return table, f"weight table of a {type(estimator).__name__}"
    return SparseModel(layout, estimator), f"scikit-learn {type(estimator).__name__}"
