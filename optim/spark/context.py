"""``init_nncontext``: a SparkSession set up for ember (its block service plugin loaded), and the
check that a context the user made can train."""
import atexit
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
    submit_args,
)

logger = logging.getLogger("ember.spark")


def _merge_list(existing, item):
    parts = [p for p in (existing or "").split(",") if p]
    return ",".join(parts + ([item] if item not in parts else []))


def _how_to_enable():
    return (f"start it with spark.plugins={PLUGIN_CLASS} and spark.jars={block_service_jar()}: run your script "
            "with `ember-submit` (same arguments as spark-submit), or add `" + " ".join(submit_args()) + "` to "
            "spark-submit (`python -m ember.jvm` prints them), or let ember.init_nncontext() create the session")


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


def _plugin_in_driver_jvm(jvm):
    """Whether the running driver JVM can load ember's plugin class (under spark-submit the class path is
    fixed before Python starts: spark.jars set from Python comes too late for the driver)."""
    try:
        return bool(jvm.org.apache.spark.util.Utils.classIsLoadable(PLUGIN_CLASS))
    except Exception:  # noqa: BLE001 - py4j error: ask the class loader directly
        loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
        try:
            jvm.java.lang.Class.forName(PLUGIN_CLASS, False, loader)
            return True
        except Exception:  # noqa: BLE001 - ClassNotFoundException through py4j
            return False


def _submitted_conf():
    """spark-submit's configuration (its --master, --conf, --name, spark-defaults), checked for the plugin."""
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()  # connects to spark-submit's JVM; SparkConf() then reads its settings
    if not _plugin_in_driver_jvm(SparkContext._jvm):
        raise SparkSetupError("this driver was started by spark-submit without ember's block-service jar on its "
                              "class path, and Spark cannot add it now that the JVM runs: run the same command with "
                              "`ember-submit` instead of `spark-submit`, or add `" + " ".join(submit_args()) +
                              "` before the script (`python -m ember.jvm` prints them)")
    return SparkConf()


LOG_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "jvm",
                          "log4j2-ember.properties")


def _user_log_config(spark_conf):
    """Whether the user configures Spark's logging: a log4j2 file in Spark's conf folder or a -Dlog4j option."""
    options = spark_conf.get("spark.driver.extraJavaOptions", "") or ""
    if "log4j" in options:
        return True
    folders = [os.environ.get("SPARK_CONF_DIR"),
               os.path.join(os.environ["SPARK_HOME"], "conf") if os.environ.get("SPARK_HOME") else None]
    return any(f and os.path.exists(os.path.join(f, name)) for f in folders
               for name in ("log4j2.properties", "log4j2.xml", "log4j2.yaml", "log4j2.json"))


def _quiet_start(spark_conf, master):
    """Start the driver JVM at WARN (ember's log4j2 file) so that Spark's INFO start-up lines, printed before
    ``setLogLevel`` can run, do not bury ember's progress; nothing changes when the user configures logging.
    Returns the environment the JVM should start with: on a local master the driver binds to the loopback
    address (every executor is on this host), which also spares the 'hostname resolves to a loopback
    address' warning."""
    if not _user_log_config(spark_conf) and os.path.exists(LOG_CONFIG):
        option = f"-Dlog4j2.configurationFile=file:{LOG_CONFIG}"
        if " " in option:
            option = f'"{option}"'
        spark_conf.set("spark.driver.extraJavaOptions",
                       " ".join(p for p in (spark_conf.get("spark.driver.extraJavaOptions", ""), option) if p))
    if master.startswith("local") and "SPARK_LOCAL_IP" not in os.environ and \
            not spark_conf.contains("spark.driver.host") and not spark_conf.contains("spark.driver.bindAddress"):
        return {"SPARK_LOCAL_IP": "127.0.0.1"}
    return {}


def _release_barrier_timer(jvm):
    """At a spark-submit driver's exit: let the JVM end (Spark 3.5's barrier timer is a non-daemon thread)."""
    try:
        jvm.ember.jvm.BlockServicePlugin.releaseBarrierTimer()
    except Exception:  # noqa: BLE001 - the gateway is gone already: nothing holds the JVM then
        pass


def init_nncontext(conf=None, app_name="ember", master=None, log_level="WARN", default_master="local[*]"):
    """Create (or reuse) the SparkSession ember trains on, and return its SparkContext.

    Args:
        conf: a dict of extra Spark settings (or a SparkConf).
        app_name: the application name.
        master: e.g. "local[4]" or "yarn"; default: spark-submit's ``--master`` (or ``spark.master`` in
            ``conf``), else ``default_master``.
        log_level: Spark's log level for this application ("WARN" by default; None keeps Spark's). At WARN
            or above, the JVM ember starts logs at WARN from its first line (``jvm/log4j2-ember.properties``)
            unless you configure log4j2 yourself (a file in Spark's conf folder or a -Dlog4j2 option).

    A running SparkContext (from a SparkSession or SparkContext you made) is reused when it loads
    ember's plugin; without it the error says how to start one that does. On a local master the Python
    workers run this interpreter unless ``PYSPARK_PYTHON`` says otherwise.

    Example (+SKIP: it starts Spark, a JVM):
        >>> import ember
        >>> sc = ember.init_nncontext(master="local[2]", app_name="demo")  # doctest: +SKIP
        >>> sc.master, sc.appName  # doctest: +SKIP
        ('local[2]', 'demo')
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
    remove_stale_shared_files()  # left in /dev/shm by killed processes of earlier ember versions
    submitted = _submitted()
    spark_conf = _submitted_conf() if submitted else SparkConf()  # under spark-submit: its settings, checked
    if isinstance(conf, SparkConf):
        spark_conf = conf
    elif isinstance(conf, dict):
        for k, v in conf.items():
            spark_conf.set(k, str(v))
    if master is not None:
        spark_conf.setMaster(master)
    elif not spark_conf.contains("spark.master") and not submitted:
        spark_conf.setMaster(default_master)
    chosen = spark_conf.get("spark.master", "the submitted master")
    if chosen.startswith("local") and "PYSPARK_PYTHON" not in os.environ and \
            not spark_conf.contains("spark.pyspark.python"):
        os.environ["PYSPARK_PYTHON"] = sys.executable  # the workers run the driver's interpreter
    if not spark_conf.contains("spark.app.name"):  # spark-submit's --name (or the script's name) stays
        spark_conf.setAppName(app_name)
    if not submitted:  # under spark-submit the jar came with --jars (checked above): the JVM has it
        spark_conf.set("spark.jars", _merge_list(spark_conf.get("spark.jars", ""), block_service_jar()))
    spark_conf.set("spark.plugins", _merge_list(spark_conf.get("spark.plugins", ""), PLUGIN_CLASS))
    if not spark_conf.contains("spark.python.worker.reuse"):
        spark_conf.set("spark.python.worker.reuse", "true")  # workers keep their cached training data
    if not spark_conf.contains("spark.ui.showConsoleProgress"):  # ember prints its own progress lines
        spark_conf.set("spark.ui.showConsoleProgress", "false")
    jvm_env = {}
    if not submitted and log_level and log_level.upper() in ("WARN", "ERROR", "FATAL", "OFF"):
        jvm_env = _quiet_start(spark_conf, chosen)
    logger.info("starting Spark (%s) with ember's block service...", chosen)
    saved = {k: os.environ.get(k) for k in jvm_env}
    os.environ.update(jvm_env)  # the JVM (started now) inherits it; this process gets its environment back
    try:
        spark = SparkSession.builder.config(conf=spark_conf).getOrCreate()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if log_level:
        spark.sparkContext.setLogLevel(log_level)
    if submitted:
        atexit.register(_release_barrier_timer, spark.sparkContext._jvm)
    logger.info("Spark %s session %s on %s ready in %.1f s", spark.version, spark.sparkContext.appName,
                spark.sparkContext.master, time.perf_counter() - t0)
    return spark.sparkContext
