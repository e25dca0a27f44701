"""A real Spark standalone cluster (a Master and two Workers started with pyspark's own ``spark-class``,
spark.authenticate on with a shared secret): ``ember-submit --master spark://...`` trains; one executor
JVM is killed mid-training (and another as the last epoch's job ends) and the run ends, from its newest
checkpoint, with the weights of an undisturbed run; the block services use Spark's secret and refuse a wrong
one."""
import json
import os
import re
import secrets
import signal
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def cluster(tmp_path):
    sys.path.insert(0, HERE)
    try:
        from standalone import StandaloneCluster
    finally:
        sys.path.remove(HERE)
    folder = tmp_path / "cluster"
    folder.mkdir()
    started = StandaloneCluster(str(folder), workers=2, cores=1, memory="1g", secret=secrets.token_hex(16))
    try:
        started.start(timeout=180)
        yield started
    finally:
        started.stop()  # every daemon's process group: the executors (and their Python workers) too


def _ember_submit():
    path = os.path.join(os.path.dirname(sys.executable), "ember-submit")
    if not os.path.exists(path):
        pytest.skip("ember-submit is not installed in this environment (pip install -e .)")
    return path


def _submit(cluster, tmp_path, timeout=600):
    """ember-submit the job, its settings (the secret among them) in a 0600 properties file, not on the
    command line; the whole process group is ended if it overruns."""
    properties = tmp_path / "app.conf"
    fd = os.open(properties, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    conf = {**cluster.conf, "spark.ui.enabled": "false", "spark.executor.memory": "512m",
            "spark.scheduler.barrier.maxConcurrentTasksCheck.interval": "1s",
            "spark.pyspark.python": sys.executable}
    with os.fdopen(fd, "w") as f:
        f.writelines(f"{k} {v}\n" for k, v in conf.items())
    env = dict(cluster.env(), PYSPARK_DRIVER_PYTHON=sys.executable)
    command = [_ember_submit(), "--master", cluster.url, "--properties-file", str(properties),
               os.path.join(HERE, "standalone_job.py"), str(tmp_path / "job")]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"the job ran past {timeout} s:\n{stdout[-2000:]}\n{stderr[-4000:]}\n{cluster.log_tail()}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return proc.returncode, stdout, stderr


def test_killed_executor_on_a_standalone_cluster_resumes_from_its_checkpoint(cluster, tmp_path):
    (tmp_path / "job").mkdir()
    code, stdout, stderr = _submit(cluster, tmp_path)
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    assert code == 0 and lines, f"{stdout[-2000:]}\n{stderr[-5000:]}\n{cluster.log_tail()}"
    out = json.loads(lines[-1])
    assert out["master"] == cluster.url and out["executors_ready"], out
    # the block services took Spark's own secret (spark.authenticate), made none of their own, and refused
    # a client with a wrong one; blocks crossed the two executor JVMs
    assert out["authenticate"] == "true" and not out["plugin_made_a_secret"], out
    assert out["secret_is_sparks"] == [True, True] and out["wrong_secret_refused"] == [True, True], out
    assert out["secret_on_command_lines"] == [], out  # handed over in files and by Spark, never as an argument
    assert len(out["probe_pids"]) == 2 and out["read_other"] == [1, 0], out
    # one executor JVM killed mid-training: the job failed, the run went on from the newest checkpoint on the
    # executor the worker started in its place, and ended where the undisturbed run ended
    assert out["clean_iteration"] == 375 and out["iteration"] == 375, out
    assert len(out["killed"]) == 2 and out["killed"][0] in out["executors_before"], out
    assert out["failures"] == 2, f"not one retry per killed executor: {out}"
    assert set(out["executors_after"]) - set(out["executors_before"]), f"no executor replaced the killed one: {out}"
    retried = [line for line in out["warnings"] if "retrying from" in line]
    # killed after the first epoch's checkpoint, before the last one (on a slow machine it may land in the
    # third epoch): the retry starts from the newest checkpoint, at least the one there was at the kill (a
    # later one when the job had just ended and its checkpoint was being written), never from scratch
    assert out["checkpoint_at_kill"] in (125, 250), out
    assert len(retried) == 2 and any(k in retried[0] for k in ("lost executor", "lost block", "block timeout")), out
    used = re.search(r"checkpoint-(\d+)\.ember", retried[0])
    assert used and out["checkpoint_at_kill"] <= int(used.group(1)) < 375, out
    # the second executor killed as the last epoch's job ended: the driver's read of a block it held (for the
    # checkpoint) failed within seconds, not after the 600 s block timeout, and the run went on from checkpoint-250
    assert "lost block" in retried[1] and "checkpoint-250.ember" in retried[1], out
    assert out["boundary_wait_s"] is not None and out["boundary_wait_s"] < 60, out
    assert out["max_weight_difference"] < 1e-10, out
    assert out["accuracy"] > 0.95, out
    print("standalone run:", json.dumps({k: v for k, v in out.items() if k != "warnings"}))
