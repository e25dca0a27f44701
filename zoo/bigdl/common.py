"""BigDL's ``bigdl.util.common``: ``Sample.from_ndarray``, ``create_spark_conf``, ``init_engine``.

Example:
    >>> import numpy as np
    >>> x, y = Sample.from_ndarray(np.zeros((2, 2)), 3)
    >>> x.shape, int(y)
    ((2, 2), 3)
"""
import numpy as np


class Sample:
    """BigDL's Sample: ember trains on RDDs of ``(features, label)`` pairs, which ``from_ndarray`` returns."""

    @staticmethod
    def from_ndarray(features, labels, bigdl_type="float"):
        features = [np.asarray(f) for f in features] if isinstance(features, list) else np.asarray(features)
        return features, np.asarray(labels)


def create_spark_conf():
    """A SparkConf that starts ember's block service with the SparkContext made from it (BigDL's conf
    carried its jars the same way): pass it to ``SparkContext(conf=...)``. Local masters run the workers
    on this interpreter."""
    import os
    import sys

    from pyspark import SparkConf

    from ember.optim.spark.blocks import PLUGIN_CLASS, block_service_jar

    if "PYSPARK_PYTHON" not in os.environ:
        os.environ["PYSPARK_PYTHON"] = sys.executable
    return (SparkConf().set("spark.jars", block_service_jar()).set("spark.plugins", PLUGIN_CLASS)
            .set("spark.python.worker.reuse", "true").set("spark.ui.showConsoleProgress", "false"))


def init_engine(bigdl_type="float"):
    """BigDL set up its native engine here; ember needs nothing beyond an active SparkContext, which this
    checks (and returns)."""
    from pyspark import SparkContext

    sc = SparkContext._active_spark_context
    if sc is None:
        raise RuntimeError("init_engine: create a SparkContext first (SparkContext(conf=create_spark_conf()))")
    return sc
