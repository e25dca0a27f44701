"""The JVM block service: Python tasks exchange byte blocks through the executors' BlockManager; only
clients that present the application's secret are served; its folders and files are private."""
import os
import re

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


def test_jar_is_shipped_and_errors_are_clear(tmp_path, monkeypatch):
    assert spark_blocks.block_service_jar() == spark_blocks.SHIPPED_JAR  # no JDK needed
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(spark_blocks.SparkSetupError, match="JDK"):
        spark_blocks.find_java_tool("javac")
    with pytest.raises(spark_blocks.SparkSetupError, match="block service"):
        spark_blocks.find_service_port(pid=os.getpid())


def _raw_connection(port):
    import socket

    raw = socket.create_connection(("127.0.0.1", port))
    raw.settimeout(20)
    return raw


def _closed_unanswered(raw, message):
    """Send ``message``; True when the service closes the connection without a byte of answer."""
    raw.sendall(message)
    try:
        return raw.recv(64) == b""
    except ConnectionResetError:
        return True
    finally:
        raw.close()


def _request(op, block_id, tail=b""):
    import struct

    raw = block_id.encode()
    return op + struct.pack(">i", len(raw)) + raw + tail


def _auth(secret):
    import struct

    return b"A" + struct.pack(">i", len(secret)) + secret


def _authentication_checks(it):
    import struct

    from ember.optim.spark.blocks import BlockClient, BlockTimeout, find_service

    service = find_service()
    good = BlockClient(shared_memory=False)
    good.put("test-auth-kept", b"weights")
    wrong = bytes(b ^ 1 for b in service.secret)  # same length, every byte different
    out = {
        # no secret: a get, a remove and a put are closed unanswered
        "get_without": _closed_unanswered(_raw_connection(service.port), _request(b"G", "test-auth-kept",
                                                                                  struct.pack(">q", 0))),
        "remove_without": _closed_unanswered(_raw_connection(service.port), _request(b"R", "test-auth-kept")),
        "put_without": _closed_unanswered(_raw_connection(service.port),
                                          _request(b"P", "test-auth-planted", struct.pack(">q", 4) + b"evil")),
        # a wrong secret, then requests: closed unanswered
        "get_wrong": _closed_unanswered(_raw_connection(service.port), _auth(wrong) + _request(
            b"G", "test-auth-kept", struct.pack(">q", 0))),
        "put_wrong": _closed_unanswered(_raw_connection(service.port), _auth(wrong) + _request(
            b"P", "test-auth-planted", struct.pack(">q", 4) + b"evil")),
        "short_secret": _closed_unanswered(_raw_connection(service.port), _auth(service.secret[:-1]) + b"E"),
    }
    # the right secret is served (the control that shows the refusals above are refusals)
    right = _raw_connection(service.port)
    right.sendall(_auth(service.secret) + b"E")
    answer = b""
    while len(answer) < 2:
        part = right.recv(2 - len(answer))
        if not part:
            break
        answer += part
    out["right_served"] = answer == b"\x00\x00"  # authenticated, then the echo
    right.close()
    out["kept_intact"] = good.get("test-auth-kept", 10) == b"weights"
    try:
        good.get("test-auth-planted", timeout=0.3)
        out["nothing_planted"] = False
    except BlockTimeout:
        out["nothing_planted"] = True
    good.remove("test-auth-kept")
    good.close()
    yield out


def test_service_refuses_clients_without_the_applications_secret(sc):
    (out,) = sc.parallelize([0], 1).mapPartitions(_authentication_checks).collect()
    assert out == {"get_without": True, "remove_without": True, "put_without": True, "get_wrong": True,
                   "put_wrong": True, "short_secret": True, "right_served": True, "kept_intact": True,
                   "nothing_planted": True}


def _folder_listing(it):
    import stat

    from ember.optim.spark.blocks import BlockClient, find_service

    service = find_service()
    client = BlockClient(shared_memory=True)
    paths = [os.path.dirname(service.folder), service.folder, os.path.join(service.folder, f"{service.pid}.port")]
    paths += [path for _, path in client.shared.values()]
    listing = [(p, oct(stat.S_IMODE(os.lstat(p).st_mode)), os.lstat(p).st_uid, stat.S_ISLNK(os.lstat(p).st_mode))
               for p in paths]
    # the secret is on no process's command line (the JVMs got it through Spark's RPC)
    secret_on_command_line = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if service.secret in f.read():
                        secret_on_command_line.append(int(entry))
            except OSError:
                continue
    client.close()
    yield listing, secret_on_command_line, os.getuid()


def test_block_folders_and_files_are_private(sc):
    (listing, on_command_line, uid), = sc.parallelize([0], 1).mapPartitions(_folder_listing).collect()
    modes = [mode for _, mode, _, _ in listing]
    assert modes == ["0o700", "0o700", "0o600", "0o600", "0o600"], listing
    assert all(owner == uid and not link for _, _, owner, link in listing), listing
    assert os.path.basename(listing[0][0]) == f"ember-{uid}"
    assert on_command_line == []
    # the conf entry that carries the secret is redacted by Spark (its name says "secret")
    keys = [k for k, _ in sc.getConf().getAll() if k.startswith("spark.plugins.internal.conf.ember")]
    assert sorted(keys) == ["spark.plugins.internal.conf.ember.jvm.BlockServicePlugin.app",
                            "spark.plugins.internal.conf.ember.jvm.BlockServicePlugin.secret"]
    pattern = sc.getConf().get("spark.redaction.regex", "(?i)secret|password|token|access[.]?key")
    assert all(re.search(pattern, k) for k in keys if k.endswith("secret"))


def test_port_file_is_never_written_through_a_planted_link(sc, tmp_path):
    from py4j.protocol import Py4JJavaError

    plugin = sc._jvm.ember.jvm.BlockServicePlugin
    folder = tmp_path / "app"
    folder.mkdir(mode=0o700)
    folder.chmod(0o700)
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    (folder / "4242.port").symlink_to(victim)
    plugin.writePrivateFile(str(folder), "4242.port", "1234\nsecret\n")
    assert victim.read_bytes() == b"keep me"  # the link was replaced, not followed
    port_file = folder / "4242.port"
    assert not port_file.is_symlink() and oct(port_file.stat().st_mode & 0o777) == "0o600"
    assert spark_blocks.read_port_file(str(port_file)) == (1234, b"secret")
    assert sorted(p.name for p in folder.iterdir()) == ["4242.port"]  # no temporary file left
    # a folder that is a link, or that others may enter, is refused before anything is written in it
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "linked").symlink_to(real, target_is_directory=True)
    with pytest.raises(Py4JJavaError, match="symbolic link"):
        plugin.writePrivateFile(str(tmp_path / "linked"), "4242.port", "1\ns\n")
    assert list(real.iterdir()) == []
    (tmp_path / "open").mkdir()
    (tmp_path / "open").chmod(0o755)
    with pytest.raises(Py4JJavaError, match="0700"):
        plugin.writePrivateFile(str(tmp_path / "open"), "4242.port", "1\ns\n")
    assert list((tmp_path / "open").iterdir()) == []
    # and the Python side reads no port file through a link or out of a folder others may enter
    (folder / "link.port").symlink_to(port_file)
    with pytest.raises(OSError):
        spark_blocks.read_port_file(str(folder / "link.port"))
    folder.chmod(0o755)
    with pytest.raises(spark_blocks.SparkSetupError, match="mode 755"):
        spark_blocks.read_port_file(str(port_file))


def test_files_of_dead_processes_are_removed_at_start(sc, tmp_path):
    import subprocess
    import sys

    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    root = tmp_path / "root"
    root.mkdir(mode=0o700)
    root.chmod(0o700)
    app = root / "app-0123456789abcdef"
    app.mkdir(mode=0o700)
    for name in (f"{dead}.port", f"shm-{dead}-ab12-put", f".{dead}.port.ab12.tmp", f"{os.getpid()}.port",
                 f"shm-{os.getpid()}-cd34-get"):
        (app / name).write_bytes(b"x")
    removed = sc._jvm.ember.jvm.BlockServicePlugin.removeStale(str(root))
    assert removed == 3
    assert sorted(p.name for p in app.iterdir()) == [f"{os.getpid()}.port", f"shm-{os.getpid()}-cd34-get"]


def _shared_memory_checks(it):
    import time

    from ember.optim.spark.blocks import BlockClient, find_service

    out = {}
    service = find_service()
    client = BlockClient(shared_memory=True)
    out["shared"] = client.shared is not None
    paths = [path for _, path in client.shared.values()]
    out["in_app_folder"] = all(os.path.dirname(p) == service.folder for p in paths)
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
        if not any(os.path.exists(p) for p in paths):
            break
        time.sleep(0.05)
    out["cleaned"] = not any(os.path.exists(p) for p in paths)
    # an authenticated client that asks for a shared-memory transfer before the service made its files
    import struct

    for op, tail in ((b"F", struct.pack(">q", 8)), (b"H", struct.pack(">q", 1000))):
        raw = _raw_connection(service.port)
        raw.sendall(_auth(service.secret))
        assert raw.recv(1) == b"\x00"
        out[f"{op.decode()}_without_files"] = _closed_unanswered(raw, _request(op, "test-shm-big", tail))
    cleanup = BlockClient(shared_memory=False)
    cleanup.remove("test-shm-big")
    cleanup.remove("test-shm-small")
    cleanup.close()
    yield out


def test_big_blocks_through_shared_memory_files(sc):
    (out,) = sc.parallelize([0], 1).mapPartitions(_shared_memory_checks).collect()
    assert out == {"shared": True, "in_app_folder": True, "roundtrip": True, "small": True, "cleaned": True,
                   "F_without_files": True, "H_without_files": True}



def _block_file_checks(it):
    import stat
    import threading

    from ember.optim.spark.blocks import BlockClient, BlockCorruptError, BlockTimeout, find_service

    service = find_service()
    writer, reader = BlockClient(shared_memory=True), BlockClient(shared_memory=True)
    head, big = np.array([7.0, 8.0]), np.arange(200_000, dtype=np.float64)  # 1.6 MB: through the files
    writer.put_parts("test-file-a", (head, big), wait=False)  # answered with the writer's next request
    writer.ping()  # the put stored (its answer read) before the reader asks for it
    got = np.empty(200_002)
    reader.get_into("test-file-a", got, timeout=10)
    out = {"parts_joined": bool(np.array_equal(got, np.concatenate([head, big]))),
           "read_in_place": len(reader._maps) == 1}
    from ember.optim.spark.blocks import FILE_ROUND

    rounded = lambda n: -(-n // FILE_ROUND) * FILE_ROUND  # noqa: E731 - a block file's length
    size = rounded(got.nbytes + 20)
    blk = [os.path.join(service.folder, n) for n in os.listdir(service.folder)
           if n.endswith("-blk") and os.path.getsize(os.path.join(service.folder, n)) == size]
    out["one_private_file"] = len(blk) == 1 and all(
        stat.S_IMODE(os.lstat(p).st_mode) == 0o600 and not os.path.islink(p) for p in blk)
    try:
        reader.get_into("test-file-a", np.empty(10), timeout=10)
        out["wrong_size"] = "accepted"
    except ValueError as e:
        out["wrong_size"] = "destination holds 80" in str(e)
    # a block read in place stays locked until the reader's next request: a removal waits for it
    view = reader.get_view("test-file-a", 10)
    removed = threading.Event()
    remover = threading.Thread(target=lambda: (writer.remove("test-file-a"), removed.set()))
    remover.start()
    out["removal_waits_for_the_reader"] = not removed.wait(0.5)
    out["view_intact"] = bytes(view[:16]) == head.tobytes()
    del view
    reader.ping()
    out["removed_after_its_next_request"] = removed.wait(20)
    remover.join()
    # a block damaged in its file is refused (the checksum is checked where the block is read)
    writer.put("test-file-b", big)
    reader.get("test-file-b", 10)
    (path,) = [os.path.join(service.folder, n) for n in os.listdir(service.folder) if n.endswith("-blk") and
               os.path.getsize(os.path.join(service.folder, n)) == rounded(big.nbytes + 20) and
               os.stat(os.path.join(service.folder, n)).st_ino in {k[1] for k in reader._maps}]
    with open(path, "r+b") as f:
        f.seek(1000)
        byte = f.read(1)[0]
        f.seek(1000)
        f.write(bytes([byte ^ 1]))
    try:
        reader.get("test-file-b", 10)
        out["damaged"] = "read"
    except BlockCorruptError as e:
        out["damaged"] = "checksum" in str(e)
    writer.remove("test-file-b")
    # files of removed blocks are reused (at most 16 kept free), not piled up
    before = len([n for n in os.listdir(service.folder) if n.endswith("-blk")])
    for k in range(40):
        writer.put_parts(f"test-file-c{k}", (big,), wait=False)
        reader.get_into(f"test-file-c{k}", got[2:], 10)  # unlocks the block at once: its removal need not wait
        writer.remove_many([f"test-file-c{k}"], wait=False)
    writer.ping()
    out["files_reused"] = len([n for n in os.listdir(service.folder) if n.endswith("-blk")]) - before <= 16
    # a block of PWRITE_ABOVE bytes or more is written with pwrite (the rest through a kept mapping): read back whole
    from ember.optim.spark.blocks import PWRITE_ABOVE

    large = np.arange(PWRITE_ABOVE // 8 + 1000, dtype=np.float64)
    writer.put_parts("test-file-d", (head, large), wait=True)
    back = np.empty(large.size + 2)
    reader.get_into("test-file-d", back, 10)
    out["large_put_read_back"] = bool(np.array_equal(back, np.concatenate([head, large])))
    writer.remove("test-file-d")
    # a large block's file that comes back as the writer's put file (it read that block, so it maps the file) is
    # written through that mapping, not pwrite, whatever the size of the block it held (16 bytes more or less)
    target, mapped = writer._put_target, []
    writer._put_target = lambda fd, n: mapped.append(target(fd, n)) or mapped[-1]
    intact = []
    for k in range(8):
        data = large[:large.size - 2 * (k % 2)] + k
        parts = (head, data) if k % 2 else (data,)
        writer.put_parts(f"test-file-e{k}", parts, wait=True)
        writer.get_into(f"test-file-e{k}", np.empty(data.size + 2 * (k % 2)), 10)  # maps its file
        whole = np.empty(data.size + 2 * (k % 2))
        reader.get_into(f"test-file-e{k}", whole, 10)
        intact.append(bool(np.array_equal(whole, np.concatenate(parts))))
        writer.remove(f"test-file-e{k}")
    writer._put_target = target
    out["large_puts_through_kept_mappings"] = all(intact) and sum(m is not None for m in mapped) >= 4
    # the shared memory full while a large put is written (pwrite fails): the whole block goes through the socket
    import ember.optim.spark.blocks as blocks_module

    def full(fd, view, offset):
        raise OSError(28, "No space left on device")

    fresh, real = BlockClient(shared_memory=True), blocks_module._write_all
    blocks_module._write_all = full
    try:
        fresh.put_parts("test-file-f", (head, large), wait=True)
    finally:
        blocks_module._write_all = real
    whole = []
    for client in (reader, fresh, fresh):  # the writer's next requests too: its stream carried nothing more
        back = np.empty(large.size + 2)
        try:
            client.get_into("test-file-f", back, 10)
            whole.append(bool(np.array_equal(back, np.concatenate([head, large]))))
        except Exception as e:  # noqa: BLE001 - reported in the result
            whole.append(repr(e))
    fresh.remove("test-file-f")
    try:
        reader.get("test-file-f", 0.5)
        whole.append("not removed")
    except BlockTimeout:
        pass
    out["full_memory_puts_through_the_socket"] = whole == [True, True, True] or whole
    fresh.close()
    writer.close()
    reader.close()
    yield out


def test_blocks_are_read_in_place_from_their_own_files(sc):
    (out,) = sc.parallelize([0], 1).mapPartitions(_block_file_checks).collect()
    assert out == {"parts_joined": True, "read_in_place": True, "one_private_file": True, "wrong_size": True,
                   "removal_waits_for_the_reader": True, "view_intact": True, "removed_after_its_next_request": True,
                   "damaged": True, "files_reused": True, "large_put_read_back": True,
                   "large_puts_through_kept_mappings": True, "full_memory_puts_through_the_socket": True}, out


def _deferred_request_checks(it):
    import threading

    from ember.optim.spark.blocks import BlockClient, BlockTimeout

    writer, reader = BlockClient(shared_memory=True), BlockClient(shared_memory=True)
    big = np.arange(200_000, dtype=np.float64)  # 1.6 MB: through the files
    out = {}
    # a deferred put is not sent until the writer's next request that is sent (here flush)
    writer.put_parts("test-defer-a", big, wait=False, defer=True)
    try:
        reader.get("test-defer-a", timeout=0.3)
        out["deferred_put_held"] = False
    except BlockTimeout:
        out["deferred_put_held"] = True
    writer.flush()
    out["sent_at_flush"] = bool(np.array_equal(np.frombuffer(reader.get("test-defer-a", 10)), big))
    # a deferred put and removal go out with the writer's next get, which reads their answers first
    writer.put_parts("test-defer-b", big * 2, wait=False, defer=True)
    writer.remove_many(["test-defer-a"], wait=False, defer=True)
    out["get_after_deferred"] = bool(np.array_equal(np.frombuffer(writer.get("test-defer-b", 10)), big * 2))
    out["pending_read"] = not writer._pending
    try:
        reader.get("test-defer-a", timeout=0.2)
        out["deferred_removal_done"] = False
    except BlockTimeout:
        out["deferred_removal_done"] = True
    # a reader already waiting when the block is stored reads it in place (the service recorded its file
    # before storing it), never through a copy in its get file; puts of changing sizes through the writer's
    # kept mappings of its put files arrive whole
    copies = [0]
    through_get_file = reader._mapped_get_file
    reader._mapped_get_file = lambda size: (copies.__setitem__(0, copies[0] + 1), through_get_file(size))[1]
    intact = []
    for k in range(24):
        payload = np.arange((100_000, 200_000, 300_000)[k % 3], dtype=np.float64) + k
        got = np.empty_like(payload)
        waiting = threading.Thread(target=reader.get_into, args=(f"test-defer-w{k}", got, 20))
        waiting.start()
        writer.put_parts(f"test-defer-w{k}", payload, wait=False)
        waiting.join()
        intact.append(bool(np.array_equal(got, payload)))
        writer.remove_many([f"test-defer-w{k}"], wait=False, defer=True)
    out["waiting_reads_intact"] = all(intact)
    out["waiting_reads_in_place"] = copies[0] == 0 and reader._get_map is None
    # close sends what was deferred
    writer.put_parts("test-defer-c", big, wait=False, defer=True)
    writer.close()
    out["sent_at_close"] = bool(np.array_equal(np.frombuffer(reader.get("test-defer-c", 10)), big))
    reader.remove_many(["test-defer-b", "test-defer-c"])
    reader.close()
    yield out


def test_deferred_requests_go_with_the_next_sent_one_and_waiting_readers_read_in_place(sc):
    (out,) = sc.parallelize([0], 1).mapPartitions(_deferred_request_checks).collect()
    assert out == {"deferred_put_held": True, "sent_at_flush": True, "get_after_deferred": True, "pending_read": True,
                   "deferred_removal_done": True, "waiting_reads_intact": True, "waiting_reads_in_place": True,
                   "sent_at_close": True}, out


# ---------------------------------------------------------------- checksums
def test_every_damaged_byte_a_cut_and_another_id_are_detected():
    import doctest

    rng = np.random.default_rng(0)
    payload = rng.bytes(1000)
    stored = payload + spark_blocks.block_trailer("run-g-3-0-1", payload)
    assert len(stored) == 1000 + spark_blocks.TRAILER.size
    assert bytes(spark_blocks.verified_payload("run-g-3-0-1", stored)) == payload
    for at in range(len(stored)):  # one flipped bit anywhere, payload or trailer
        damaged = bytearray(stored)
        damaged[at] ^= 1 << (at % 8)
        with pytest.raises(spark_blocks.BlockCorruptError, match="'run-g-3-0-1' is corrupt"):
            spark_blocks.verified_payload("run-g-3-0-1", damaged)
    for keep in (0, 19, 500, len(stored) - 1):  # half received
        with pytest.raises(spark_blocks.BlockCorruptError, match="corrupt"):
            spark_blocks.verified_payload("run-g-3-0-1", stored[:keep])
    with pytest.raises(spark_blocks.BlockCorruptError, match="another id"):
        spark_blocks.verified_payload("run-g-3-1-0", stored)  # the right bytes under another name
    with pytest.raises(spark_blocks.BlockCorruptError, match="checksum trailer"):
        spark_blocks.verified_payload("run-g-3-0-1", payload)  # written without the client
    assert issubclass(spark_blocks.BlockCorruptError, ConnectionError)  # an infrastructure failure: retried
    from ember.optim.spark.trainer import describe_user_error

    assert describe_user_error(spark_blocks.BlockCorruptError("x"), 0) is None
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder().find(spark_blocks):
        if test.name.endswith(("block_trailer", "verified_payload")):
            runner.run(test)
    assert runner.summarize(verbose=False) == doctest.TestResults(0, 5)


def _store_for_damage(it):
    from ember.optim.spark.blocks import BlockClient

    client = BlockClient(shared_memory=True)
    client.put("test-crc-big", np.arange(100_000, dtype=np.float64))  # 800 KB: through the shared-memory file
    client.put("test-crc-small", np.arange(10, dtype=np.float64))  # through the socket
    client.close()
    yield True


def _read_damaged(it):
    from ember.optim.spark.blocks import BlockClient, BlockCorruptError

    out = {}
    for shared in (True, False):
        client = BlockClient(shared_memory=shared)
        for name in ("test-crc-big", "test-crc-small", "test-crc-cut"):
            try:
                client.get(name, timeout=10)
                out[(shared, name)] = "read"
            except BlockCorruptError as e:
                out[(shared, name)] = str(e)
        client.close()
    yield out


def test_a_damaged_stored_block_is_refused_on_every_path(sc):
    from ember.optim.spark.blocks import DriverBlocks

    plugin = sc._jvm.ember.jvm.BlockServicePlugin
    sc.parallelize([0], 1).mapPartitions(_store_for_damage).collect()
    driver = DriverBlocks(sc)
    assert np.array_equal(np.frombuffer(driver.get("test-crc-big", 10)), np.arange(100_000, dtype=np.float64))
    # damage the stored bytes in the BlockManager: one bit of one float, and a block cut to half its length
    for name, cut in (("test-crc-big", False), ("test-crc-small", False), ("test-crc-cut", True)):
        raw = bytearray(plugin.driverGet("test-crc-big" if cut else name, 10000))
        if cut:
            raw = raw[:len(raw) // 2]
        else:
            raw[len(raw) // 3] ^= 0x10
        plugin.driverRemove(name)
        plugin.driverPut(name, raw)
    (out,) = sc.parallelize([0], 1).mapPartitions(_read_damaged).collect()
    for shared in (True, False):
        assert "checksum" in out[(shared, "test-crc-big")], out
        assert "checksum" in out[(shared, "test-crc-small")], out
        assert "half received" in out[(shared, "test-crc-cut")] or "trailer" in out[(shared, "test-crc-cut")], out
    with pytest.raises(spark_blocks.BlockCorruptError, match="'test-crc-big' is corrupt"):
        driver.get("test-crc-big", 10)
    for name in ("test-crc-big", "test-crc-small", "test-crc-cut"):
        driver.remove(name)


def test_a_block_damaged_between_jobs_is_retried_from_the_checkpoint(sc, tmp_path, float64, caplog):
    """A weight block damaged after the epoch-1 checkpoint: the next job refuses it, the run goes on from
    that checkpoint and ends with the weights of an undisturbed run."""
    import logging

    import ember
    from ember import optim
    from ember.layers import Dense

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 5))
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    rdd = sc.parallelize([(x[i], y[i]) for i in range(len(x))], 2)

    def run(folder, damage):
        ember.set_seed(0)
        model = ember.Sequential([Dense(8, activation="tanh", input_shape=(5,)), Dense(2, activation="softmax")])
        opt = optim.Optimizer(model, rdd, "sparse_categorical_crossentropy", optim.SGD(0.1, momentum=0.9),
                              optim.MaxEpoch(3), 32)
        opt.set_checkpoint(str(folder), optim.EveryEpoch()).set_progress(0, quiet=True)
        damaged = []

        class Damage:
            def on_epoch_end(self, loop, epoch, logs):
                if damage and epoch == 1:
                    name = f"ember-{loop.engine.run_id}-w-{loop.state['iteration']}-1"
                    plugin = sc._jvm.ember.jvm.BlockServicePlugin
                    raw = bytearray(plugin.driverGet(name, 10000))
                    raw[7] ^= 0x01  # one bit of the first weight
                    plugin.driverRemove(name)
                    plugin.driverPut(name, raw)
                    damaged.append(name)

        opt.add_listener(Damage())
        opt.optimize()
        return model, opt, damaged

    clean, _, _ = run(tmp_path / "clean", False)
    with caplog.at_level(logging.WARNING, logger="ember.optim"):
        model, opt, damaged = run(tmp_path / "damaged", True)
    assert damaged and opt._failures == 1 and opt.state["iteration"] == 24
    assert "corrupt block" in caplog.text and "checkpoint-8.ember" in caplog.text, caplog.text
    for a, b in zip(model.get_weights(), clean.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_blocks_lost_between_jobs_are_retried_from_the_checkpoint_at_once(sc, tmp_path, float64, caplog):
    """Blocks gone as when their executor dies between jobs: trainer 1's weight block after the epoch-1
    checkpoint (the next job's trainers read it), then trainer 1's optimizer-state block between the end of
    epoch 2's job and the driver's checkpoint read. Each read fails within seconds, not the trainers' block
    timeout, and the run goes on from the epoch-1 checkpoint to the weights of an undisturbed run."""
    import logging
    import time

    import ember
    from ember import optim
    from ember.layers import Dense

    rng = np.random.default_rng(1)
    x = rng.normal(size=(256, 5))
    y = (x[:, 0] - x[:, 2] > 0).astype(np.int64)
    rdd = sc.parallelize([(x[i], y[i]) for i in range(len(x))], 2)
    plugin = sc._jvm.ember.jvm.BlockServicePlugin

    def run(folder, lose):
        ember.set_seed(0)
        model = ember.Sequential([Dense(8, activation="tanh", input_shape=(5,)), Dense(2, activation="softmax")])
        opt = optim.Optimizer(model, rdd, "sparse_categorical_crossentropy", optim.Adam(0.01), optim.MaxEpoch(3), 32)
        opt.set_checkpoint(str(folder), optim.EveryEpoch()).set_progress(0, quiet=True)
        engine, lost, failed, segment, retry = opt.engine, {}, [], opt.engine._segment, opt._retry

        class LoseWeights:
            def on_epoch_end(self, loop, epoch, logs):
                if lose and epoch == 1:
                    plugin.driverRemove(f"ember-{engine.run_id}-w-8-1")
                    lost["w"] = time.perf_counter()

        def lose_state(loop, results, start, stop, job_seconds):
            if lose and stop == 16 and "s" not in lost:
                plugin.driverRemove(f"ember-{engine.run_id}-s-16-1")
                lost["s"] = time.perf_counter()
            return segment(loop, results, start, stop, job_seconds)

        opt.add_listener(LoseWeights())
        engine._segment = lose_state
        opt._retry = lambda failure, start: (failed.append((failure.kind, time.perf_counter())), retry(failure, start))
        opt.optimize()
        return model, opt, lost, failed

    clean, _, _, _ = run(tmp_path / "clean", False)
    with caplog.at_level(logging.WARNING, logger="ember.optim"):
        model, opt, lost, failed = run(tmp_path / "lost", True)
    assert opt._failures == 2 and opt.state["iteration"] == 24, failed
    assert failed[0][0] == "block timeout" and failed[1][0] == "lost block", failed
    for (_, at), what in zip(failed, "ws"):
        assert at - lost[what] < 30, f"a reader waited for block {what!r}, stored before it asked"
    assert caplog.text.count("retrying from") == 2 and "checkpoint-8.ember" in caplog.text, caplog.text
    for a, b in zip(model.get_weights(), clean.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
