"""``init_nncontext``: a SparkSession set up for ember (its block service plugin loaded)."""
import logging

from ember.optim.spark_blocks import PLUGIN_CLASS, SparkSetupError, block_service_jar, find_java_tool

logger = logging.getLogger("ember.spark")


def _merge_list(existing, item):
    parts = [p for p in (existing or "").split(",") if p]
    return ",".join(parts + ([item] if item not in parts else []))


def init_nncontext(conf=None, app_name="ember", master=None):
    """Create (or reuse) the SparkSession ember trains on, and return its SparkContext.

    Args:
        conf: a dict of extra Spark settings (or a SparkConf).
        app_name: the application name.
        master: e.g. "local[4]" or "yarn"; default: the submitted master, else "local[*]".

    A session created elsewhere must already load ember's plugin (spark.plugins must include
    ``ember.jvm.BlockServicePlugin`` and spark.jars the jar from ``block_service_jar()``).
    """
    find_java_tool("java")
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        plugins = active.sparkContext.getConf().get("spark.plugins", "")
        if PLUGIN_CLASS not in plugins.split(","):
            raise SparkSetupError("a SparkSession without ember's block service is already running; stop it, or start "
                                  f"it with spark.plugins={PLUGIN_CLASS} and spark.jars={block_service_jar()}")
        return active.sparkContext
    jar = block_service_jar()
    spark_conf = conf if isinstance(conf, SparkConf) else SparkConf()
    if isinstance(conf, dict):
        for k, v in conf.items():
            spark_conf.set(k, str(v))
    if master is not None:
        spark_conf.setMaster(master)
    elif not spark_conf.contains("spark.master"):
        spark_conf.setMaster("local[*]")
    spark_conf.setAppName(app_name)
    spark_conf.set("spark.jars", _merge_list(spark_conf.get("spark.jars", ""), jar))
    spark_conf.set("spark.plugins", _merge_list(spark_conf.get("spark.plugins", ""), PLUGIN_CLASS))
    spark_conf.set("spark.python.worker.reuse", "true")  # workers keep their cached training data
    spark = SparkSession.builder.config(conf=spark_conf).getOrCreate()
    logger.info("Spark %s session %s on %s with ember's block service", spark.version, app_name,
                spark.sparkContext.master)
    return spark.sparkContext
