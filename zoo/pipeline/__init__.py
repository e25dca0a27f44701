"""Spark ML for ember: estimators and models for Pipelines (``nnframes``), batched inference and SQL UDFs
(``inference``). This package imports pyspark."""
from ember.zoo.pipeline.inference import register_udf
from ember.zoo.pipeline.nnframes import NNClassifier, NNClassifierModel, NNEstimator, NNModel

__all__ = ["NNClassifier", "NNClassifierModel", "NNEstimator", "NNModel", "register_udf"]
