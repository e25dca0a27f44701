"""spark-submit: ``ember-submit`` loads the block service before the JVM starts and trains the example;
plain spark-submit without ember's jar gets an error that says what to add; the master and name given
on the command line are kept."""
import os
import re
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = """
import ember
from ember.optim.spark.blocks import SparkSetupError
try:
    sc = ember.init_nncontext(app_name="ember-default-name", default_master="local[2]")
except SparkSetupError as e:
    print("REFUSED:", e, flush=True)
    raise SystemExit(3)

def ping(it):
    from ember.optim.spark.blocks import BlockClient
    client = BlockClient()
    yield client.ping()
    client.close()

print("RESULT", sc.master, sc.appName, sc.parallelize([0], 1).mapPartitions(ping).collect(), flush=True)
sc.stop()
"""


def _ember_submit():
    path = os.path.join(os.path.dirname(sys.executable), "ember-submit")
    if not os.path.exists(path):
        pytest.skip("ember-submit is not installed in this environment (pip install -e .)")
    return path


def _env(**extra):
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable, **extra)
    env.pop("PYSPARK_GATEWAY_PORT", None)
    return env


def test_ember_submit_keeps_the_master_and_name_and_plain_spark_submit_says_what_to_add(tmp_path):
    from ember.cli import _find_spark_submit

    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    # the subcommand `ember submit` (here as python -m ember submit) is the same as the script ember-submit
    out = subprocess.run([sys.executable, "-m", "ember", "submit", "--master", "local[1]", "--name", "given-name",
                          str(script)], capture_output=True, text=True, timeout=300, env=_env())
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT")]
    assert out.returncode == 0 and lines == ["RESULT local[1] given-name [True]"], out.stdout + out.stderr[-3000:]
    plain = subprocess.run([_find_spark_submit(), "--master", "local[1]", str(script)], capture_output=True,
                           text=True, timeout=300, env=_env())
    refused = [line for line in plain.stdout.splitlines() if line.startswith("REFUSED:")]
    assert plain.returncode == 3 and len(refused) == 1, plain.stdout + plain.stderr[-3000:]
    assert "ember-submit" in refused[0] and "--conf spark.plugins=ember.jvm.BlockServicePlugin" in refused[0]
    assert "--jars " in refused[0]


def test_ember_submit_trains_the_lenet_example():
    out = subprocess.run([_ember_submit(), "--master", "local[2]", os.path.join(ROOT, "examples",
                                                                                "train_lenet_spark.py")],
                         capture_output=True, text=True, timeout=600, env=_env(EMBER_EXAMPLE_ITERATIONS="20"))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "on local[2]" in out.stdout
    accuracy = re.search(r"test accuracy (\d\.\d+)", out.stdout)
    assert accuracy is not None, out.stdout[-2000:]
    assert float(accuracy.group(1)) > 0.5  # 20 iterations of 128 images (the full example reaches 0.97)
