"""Spark Connect: pyspark's own server (sbin/start-connect-server.sh, local[2], no internet needed) and a
client session from ``SparkSession.builder.remote``: NNModel/NNClassifierModel.transform and the SQL UDF
give the model's predictions; training says it needs a classic session."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]

CLIENT = """
import json, sys
import numpy as np
from pyspark.sql import SparkSession
import ember
from ember.layers import Dense
from ember.zoo.pipeline import NNClassifier, NNClassifierModel, NNModel, register_udf

spark = SparkSession.builder.remote(sys.argv[1]).getOrCreate()
ember.set_seed(0)
model = ember.Sequential([Dense(8, activation="relu", input_shape=(4,)), Dense(3, activation="softmax")])
x = np.random.default_rng(0).normal(size=(200, 4))
df = spark.createDataFrame([(i, x[i].tolist(), i % 3) for i in range(len(x))],
                           "id long, features array<double>, label long")
here = model.predict(x.astype(np.float32))
out = NNModel(model, batchSize=64).transform(df).orderBy("id").collect()
classes = NNClassifierModel(model).transform(df).orderBy("id").select("prediction", "probability").collect()
register_udf(spark, "ember_predict", model)
df.createOrReplaceTempView("points")
sql = spark.sql("SELECT id, ember_predict(features) AS p FROM points ORDER BY id").collect()
try:
    NNClassifier(model, maxEpoch=1).fit(df)
    fit_error = None
except Exception as error:
    fit_error = [type(error).__name__, str(error)]
print("RESULT " + json.dumps({
    "session": type(spark).__module__, "here": here.tolist(), "transform": [r.prediction for r in out],
    "kept": [r.features for r in out[:3]], "x": x[:3].tolist(),
    "class": [r.prediction for r in classes], "probability": [r.probability.toArray().tolist() for r in classes],
    "sql": [r.p for r in sql], "fit_error": fit_error}))
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def connect_url(tmp_path_factory):
    import pyspark

    home = os.path.dirname(pyspark.__file__)
    script = os.path.join(home, "sbin", "start-connect-server.sh")
    if not os.path.exists(script) or not any("spark-connect" in n for n in os.listdir(os.path.join(home, "jars"))):
        pytest.skip("this pyspark ships no Spark Connect server (sbin/start-connect-server.sh and its jar)")
    pytest.importorskip("grpc_status", reason="Spark Connect's client needs grpcio-status (pip install "
                        "'pyspark[connect]')")
    pytest.importorskip("google.rpc", reason="Spark Connect's client needs googleapis-common-protos")
    pytest.importorskip("zstandard", reason="Spark Connect's client needs zstandard")
    port, folder = _free_port(), tmp_path_factory.mktemp("connect")
    env = dict(os.environ, SPARK_HOME=home, SPARK_NO_DAEMONIZE="1", SPARK_LOG_DIR=str(folder),
               SPARK_PID_DIR=str(folder), PYSPARK_PYTHON=sys.executable)
    server = subprocess.Popen([script, "--master", "local[2]", "--conf", f"spark.connect.grpc.binding.port={port}",
                               "--conf", "spark.ui.enabled=false"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 180
        while True:
            with socket.socket() as s:
                if s.connect_ex(("localhost", port)) == 0:
                    break
            if server.poll() is not None or time.time() > deadline:
                logs = " ".join(p.read_text()[-2000:] for p in folder.glob("*.out"))
                pytest.fail(f"the Spark Connect server did not start on port {port}: {logs}")
            time.sleep(1)
        yield f"sc://localhost:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and the JVM it started (its own process group)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def test_transform_and_the_udf_work_on_spark_connect_and_training_says_it_needs_a_classic_session(connect_url,
                                                                                                tmp_path):
    import numpy as np

    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    done = subprocess.run([sys.executable, str(script), connect_url], capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-2000:] + done.stderr[-3000:]
    r = json.loads(lines[0][len("RESULT "):])
    assert r["session"].startswith("pyspark.sql.connect")
    here = np.array(r["here"])
    np.testing.assert_allclose(np.array(r["transform"]), here, rtol=1e-6)
    np.testing.assert_allclose(np.array(r["kept"]), np.array(r["x"]))  # the row's own columns are kept
    np.testing.assert_array_equal(np.array(r["sql"]), np.array(r["transform"]))
    np.testing.assert_array_equal(r["class"], here.argmax(axis=1))
    np.testing.assert_allclose(np.array(r["probability"]), here, rtol=1e-6)
    kind, message = r["fit_error"]
    assert kind == "SparkSetupError" and "needs a classic SparkSession" in message and "Spark Connect" in message
