"""The JVM block service: Python tasks exchange byte blocks through the executors' BlockManager."""
import os

import numpy as np
import pytest

from ember.optim import spark_blocks

pytestmark = pytest.mark.spark


def _exchange(it):
    from pyspark import BarrierTaskContext

    from ember.optim.spark_blocks import BlockClient, BlockTimeout

    ctx = BarrierTaskContext.get()
    p, n = ctx.partitionId(), 2
    client = BlockClient()
    mine = np.arange(250_000, dtype=np.float64) * (p + 1)
    client.put(f"test-x-{p}", mine)
    received = {}
    for q in range(2):
        received[q] = np.frombuffer(client.get(f"test-x-{q}", timeout=60), dtype=np.float64)
    try:
        client.get("test-never-put", timeout=0.2)
        timed_out = False
    except BlockTimeout:
        timed_out = True
    ctx.barrier()
    client.remove(f"test-x-{p}")
    client.close()
    yield p, {q: bool(np.array_equal(a, np.arange(250_000) * (q + 1))) for q, a in received.items()}, timed_out, n


def test_tasks_exchange_blocks(sc):
    out = sorted(sc.parallelize(range(2), 2).barrier().mapPartitions(_exchange).collect())
    assert [p for p, *_ in out] == [0, 1]
    for _, received, timed_out, _ in out:
        assert received == {0: True, 1: True}
        assert timed_out


def test_jar_is_cached_and_errors_are_clear(tmp_path, monkeypatch):
    jar = spark_blocks.block_service_jar()
    assert os.path.exists(jar) and spark_blocks.block_service_jar() == jar
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(spark_blocks.SparkSetupError, match="JDK"):
        spark_blocks.find_java_tool("javac")
    with pytest.raises(spark_blocks.SparkSetupError, match="block service"):
        spark_blocks.find_service_port(pid=os.getpid())
