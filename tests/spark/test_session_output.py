"""What a user sees when ember starts Spark: ember's own lines, not Spark's INFO start-up log."""
import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.spark

PROGRAM = """
import ember
sc = ember.init_nncontext(master="local[1]", app_name="output-check", conf={"spark.ui.enabled": "false"})
print("OPTIONS", sc.getConf().get("spark.driver.extraJavaOptions", ""))
sc.stop()
"""
JVM_LOG_LINE = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (INFO|WARN|ERROR) ", re.M)
OURS = ("SPARK_CONF_DIR", "SPARK_LOCAL_IP", "PYSPARK_GATEWAY_PORT")


def _start(tmp_path, **env):
    full = {k: v for k, v in os.environ.items() if k not in OURS}
    full.update(env)
    proc = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=300, env=full,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_spark_starts_quietly_at_warn(tmp_path):
    proc = _start(tmp_path)
    # before: "Using Spark's default log4j profile", the hostname and native-hadoop WARN lines, INFO lines
    assert "log4j profile" not in proc.stderr and "NativeCodeLoader" not in proc.stderr, proc.stderr
    assert "resolves to a loopback address" not in proc.stderr, proc.stderr
    assert JVM_LOG_LINE.findall(proc.stderr) == [], proc.stderr
    first = proc.stderr.strip().splitlines()[0]
    assert "starting Spark (local[1])" in first, proc.stderr
    assert "log4j2-ember.properties" in proc.stdout


def test_a_users_log4j2_file_is_left_alone(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "log4j2.properties").write_text(
        "rootLogger.level = info\nrootLogger.appenderRef.stderr.ref = console\n"
        "appender.console.type = Console\nappender.console.name = console\nappender.console.target = SYSTEM_ERR\n"
        "appender.console.layout.type = PatternLayout\n"
        "appender.console.layout.pattern = USERLOG %p %c{1}: %m%n\n")
    proc = _start(tmp_path, SPARK_CONF_DIR=str(conf))
    assert "log4j2-ember.properties" not in proc.stdout
    assert "USERLOG WARN NativeCodeLoader" in proc.stderr, proc.stderr[-3000:]  # their file, their levels
