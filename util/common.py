"""``bigdl.util.common``: ``Sample``, ``create_spark_conf``, ``init_engine`` (see ``ember.zoo.bigdl.common``)."""
from ember.zoo.bigdl.common import Sample, create_spark_conf, init_engine

__all__ = ["Sample", "create_spark_conf", "init_engine"]
