"""``init_nncontext``: a SparkSession set up for ember (its block service plugin loaded), and the
check that a context the user made can train."""
import logging
import os
import sys
import time

from ember.optim.loop import ensure_log_handler
from ember.optim.spark.blocks import (
    PLUGIN_CLASS,
    SparkSetupError,
    block_service_jar,
    find_java_tool,
    remove_stale_shared_files,
)

logger = logging.getLogger("ember.spark")


def _merge_list(existing, item):
    parts = [p for p in (existing or "").split(",") if p]
    return ",".join(parts + ([item] if item not in parts else []))


def _how_to_enable():
    return (f"start it with spark.plugins={PLUGIN_CLASS} and spark.jars={block_service_jar()} (for example "
            "`spark-submit --jars <that jar> --conf spark.plugins=" + PLUGIN_CLASS + " ...`), or let "
            "ember.init_nncontext() create the session")


def has_block_service(sc):
    return PLUGIN_CLASS in sc.getConf().get("spark.plugins", "").split(",")


def ensure_block_service(sc):
    """A clear error when ``sc`` was started without ember's block service (training needs it)."""
    if not has_block_service(sc):
        raise SparkSetupError("this SparkContext was started without ember's block service, which training on "
                              "Spark needs: " + _how_to_enable())


def _running_context():
    from pyspark import SparkContext

    return SparkContext._active_spark_context


def _submitted():
    """Whether this driver was started by spark-submit (which passes its gateway to pyspark)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def init_nncontext(conf=None, app_name="ember", master=None, log_level="WARN", default_master="local[*]"):
    """Create (or reuse) the SparkSession ember trains on, and return its SparkContext.

    Args:
        conf: a dict of extra Spark settings (or a SparkConf).
        app_name: the application name.
        master: e.g. "local[4]" or "yarn"; default: spark-submit's ``--master`` (or ``spark.master`` in
            ``conf``), else ``default_master``.
        log_level: Spark's log level for this application ("WARN" by default; None keeps Spark's).

    A running SparkContext (from a SparkSession or SparkContext you made) is reused when it loads
    ember's plugin; without it the error says how to start one that does. On a local master the Python
    workers run this interpreter unless ``PYSPARK_PYTHON`` says otherwise.
    """
    ensure_log_handler()
    find_java_tool("java")
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    running = _running_context()
    if running is not None:
        if not has_block_service(running):
            raise SparkSetupError("a SparkContext without ember's block service is already running; stop it, or "
                                  + _how_to_enable())
        return running
    t0 = time.perf_counter()
    remove_stale_shared_files()  # left by processes of earlier runs that were killed
    jar = block_service_jar()
    spark_conf = conf if isinstance(conf, SparkConf) else SparkConf()
    if isinstance(conf, dict):
        for k, v in conf.items():
            spark_conf.set(k, str(v))
    if master is not None:
        spark_conf.setMaster(master)
    elif not spark_conf.contains("spark.master") and not _submitted():
        spark_conf.setMaster(default_master)
    chosen = spark_conf.get("spark.master", "the submitted master")
    if chosen.startswith("local") and "PYSPARK_PYTHON" not in os.environ and \
            not spark_conf.contains("spark.pyspark.python"):
        os.environ["PYSPARK_PYTHON"] = sys.executable  # the workers run the driver's interpreter
    spark_conf.setAppName(app_name)
    spark_conf.set("spark.jars", _merge_list(spark_conf.get("spark.jars", ""), jar))
    spark_conf.set("spark.plugins", _merge_list(spark_conf.get("spark.plugins", ""), PLUGIN_CLASS))
    spark_conf.set("spark.python.worker.reuse", "true")  # workers keep their cached training data
    if not spark_conf.contains("spark.ui.showConsoleProgress"):  # ember prints its own progress lines
        spark_conf.set("spark.ui.showConsoleProgress", "false")
    logger.info("starting Spark (%s) with ember's block service...", chosen)
    spark = SparkSession.builder.config(conf=spark_conf).getOrCreate()
    if log_level:
        spark.sparkContext.setLogLevel(log_level)
    logger.info("Spark %s session %s on %s ready in %.1f s", spark.version, app_name, spark.sparkContext.master,
                time.perf_counter() - t0)
    return spark.sparkContext
