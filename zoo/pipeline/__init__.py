"""Spark ML for ember: estimators and models for Pipelines (``nnframes``), batched inference and SQL UDFs
(``inference``), images: reader, pretrained featurizer and predictor, image SQL UDF (``image``). This
package imports pyspark."""
from ember.zoo.pipeline.image import (
    DeepImageFeaturizer,
    DeepImagePredictor,
    NNImageReader,
    read_images,
    register_image_udf,
)
from ember.zoo.pipeline.inference import register_udf
from ember.zoo.pipeline.nnframes import NNClassifier, NNClassifierModel, NNEstimator, NNModel

__all__ = ["DeepImageFeaturizer", "DeepImagePredictor", "NNClassifier", "NNClassifierModel", "NNEstimator",
           "NNImageReader", "NNModel", "read_images", "register_image_udf", "register_udf"]
