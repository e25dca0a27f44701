"""The JVM block service: Python tasks exchange byte blocks through the executors' BlockManager."""
import os

import numpy as np
import pytest

from ember.optim.spark import blocks as spark_blocks

pytestmark = pytest.mark.spark


def _exchange(it):
    from pyspark import BarrierTaskContext

    from ember.optim.spark.blocks import BlockClient, BlockTimeout

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


def _shared_memory_checks(it):
    import socket
    import struct
    import time

    from ember.optim.spark.blocks import SHARED_DIR, BlockClient

    out = {}
    client = BlockClient(shared_memory=True)
    out["shared"] = client.shared is not None
    names = [name for _, name in client.shared.values()]
    big = np.arange(300_000, dtype=np.float64)  # 2.4 MB: through the files
    client.put("test-shm-big", big)
    out["roundtrip"] = bool(np.array_equal(np.frombuffer(client.get("test-shm-big", 10)), big))
    small = np.arange(10, dtype=np.float64)  # through the socket
    client.put("test-shm-small", small)
    out["small"] = bool(np.array_equal(np.frombuffer(client.get("test-shm-small", 10)), small))
    # a worker that dies without closing: the service removes its files when the connection drops
    client.stream.close()
    client.sock.close()
    for _ in range(100):
        if not any(os.path.exists(os.path.join(SHARED_DIR, n)) for n in names):
            break
        time.sleep(0.05)
    out["cleaned"] = not any(os.path.exists(os.path.join(SHARED_DIR, n)) for n in names)

    def refused(op, name, tail):
        raw = socket.create_connection(("127.0.0.1", BlockClient(shared_memory=False).port))
        ident = b"test-shm-big"
        raw.sendall(op + struct.pack(">i", len(ident)) + ident + tail(name))
        raw.settimeout(10)
        try:
            return raw.recv(16) == b""  # the service closed the connection instead of answering
        finally:
            raw.close()

    def name_field(name):
        raw = name.encode()
        return struct.pack(">i", len(raw)) + raw

    # names outside /dev/shm/ember-blocks-*, and links, are refused
    out["traversal"] = refused(b"F", "../../etc/passwd", lambda n: name_field(n) + struct.pack(">q", 8))
    victim = os.path.join(SHARED_DIR, f"victim-{os.getpid()}")
    link = os.path.join(SHARED_DIR, f"ember-blocks-link-{os.getpid()}")
    with open(victim, "wb") as f:
        f.write(b"keep me")
    os.symlink(victim, link)
    try:
        out["link"] = refused(b"H", os.path.basename(link),
                              lambda n: struct.pack(">q", 1000) + name_field(n))
        with open(victim, "rb") as f:
            out["victim_intact"] = f.read() == b"keep me"
    finally:
        os.unlink(link)
        os.unlink(victim)
    cleanup = BlockClient(shared_memory=False)
    cleanup.remove("test-shm-big")
    cleanup.remove("test-shm-small")
    cleanup.close()
    yield out


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="no /dev/shm on this system: the socket carries all blocks")
def test_big_blocks_through_shared_memory_files(sc):
    (out,) = sc.parallelize([0], 1).mapPartitions(_shared_memory_checks).collect()
    assert out == {"shared": True, "roundtrip": True, "small": True, "cleaned": True, "traversal": True,
                   "link": True, "victim_intact": True}
