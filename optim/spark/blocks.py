"""ember's Spark block service: build its plugin jar, and the Python client that tasks use.

The plugin (``ember/jvm/ember/jvm/BlockServicePlugin.java``) runs in every executor JVM and lets
Python workers put, get and remove byte blocks in that executor's BlockManager; Spark's own block
transfer service moves them between executors. Its docstring describes the protocol and the security
model (a per-application secret, private folders and files). The compiled jar ships inside the package
(``ember/jvm/ember-blocks.jar``, Java 8 class files, one jar for Spark 3.5 and 4.x; it records the
digest of the source it was built from, and ``python -m ember.jvm --build`` rebuilds it); only when the
source has changed since is it compiled with the JDK's ``javac`` and cached in ``~/.ember/jvm``.

Every block the Python clients (``BlockClient`` in tasks, ``DriverBlocks`` on the driver) put ends in a
20-byte trailer: its size and an XXH3-64 checksum seeded by its id (``block_trailer``); every get
checks both before the bytes are used (``verified_payload``), so that a block damaged or cut short
anywhere between two Python processes (shared-memory files, sockets, the BlockManagers, Spark's
transfer between executors) raises ``BlockCorruptError``, an infrastructure failure that training
retries from its newest checkpoint, and is never applied.
"""
import collections
import hashlib
import logging
import mmap
import os
import shutil
import socket
import stat
import struct
import subprocess
import tempfile
import zipfile

import xxhash

PLUGIN_CLASS = "ember.jvm.BlockServicePlugin"
_PACKAGE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SOURCE = os.path.join(_PACKAGE, "jvm", "ember", "jvm", "BlockServicePlugin.java")
# ember.jvm.FeaturePacking (zoo/pipeline's JVM-side feature packing): a Catalyst expression that links
# against Spark 4.x's Scala 2.13 classes only; a build against Spark 3.5 leaves it out (packing is then off)
_PACKING_SOURCE = os.path.join(_PACKAGE, "jvm", "ember", "jvm", "FeaturePacking.java")
SHIPPED_JAR = os.path.join(_PACKAGE, "jvm", "ember-blocks.jar")
_DIGEST_ENTRY = "META-INF/ember/source.sha256"
# NOTE: Java 8 class files: Spark 3.5 still runs on Java 8; one jar loads in Spark 3.5 and 4.x (the
# BlockManager calls whose signatures differ are resolved by reflection in the plugin).
JAVA_RELEASE = "8"


class SparkSetupError(RuntimeError):
    """Java, the JDK or the installed Spark cannot run ember's block service."""


def spark_jars_folder():
    """Spark's ``jars/`` folder, found whatever way pyspark was imported: ``$SPARK_HOME/jars``, the pip
    package's ``pyspark/jars``, or, under spark-submit (pyspark imported from ``python/lib/pyspark.zip``),
    the Spark home three levels above that zip."""
    candidates = []
    if os.environ.get("SPARK_HOME"):
        candidates.append(os.path.join(os.environ["SPARK_HOME"], "jars"))
    try:
        import pyspark

        folder = os.path.dirname(os.path.abspath(pyspark.__file__))
        candidates.append(os.path.join(folder, "jars"))
        zipped = os.path.dirname(folder)  # .../python/lib/pyspark.zip when imported from the zip
        if zipped.endswith(".zip"):
            candidates.append(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(zipped))), "jars"))
    except ImportError:
        pass
    for candidate in candidates:
        if os.path.isdir(candidate) and any(n.startswith("spark-core") for n in os.listdir(candidate)):
            return candidate
    looked = ", ".join(candidates) or "nowhere: pyspark does not import"
    raise SparkSetupError(f"no Spark jars found (looked in {looked}); install pyspark (pip install "
                          "'pyspark>=3.5') or set SPARK_HOME to a Spark install")


def _spark_version(jars):
    for name in sorted(os.listdir(jars)):
        if name.startswith("spark-core_") and name.endswith(".jar"):
            return name[:-4].split("-")[-1]
    return "unknown"


def find_java_tool(name):
    """``java`` or ``javac`` from $JAVA_HOME/bin, else from PATH; a clear error when missing."""
    home = os.environ.get("JAVA_HOME")
    if home and os.path.exists(os.path.join(home, "bin", name)):
        return os.path.join(home, "bin", name)
    found = shutil.which(name)
    if found:
        return found
    what = "a Java runtime" if name == "java" else "a JDK (javac)"
    raise SparkSetupError(f"ember on Spark needs {what}: install Java 17 (e.g. `apt install openjdk-17-jdk-headless`) "
                          "or set JAVA_HOME")


def cache_folder():
    return os.environ.get("EMBER_JVM_CACHE", os.path.join(os.path.expanduser("~"), ".ember", "jvm"))


def source_digest():
    """SHA-256 of the plugin's Java sources: the shipped jar records the digest of the sources it was built from."""
    digest = hashlib.sha256()
    for path in (_SOURCE, _PACKING_SOURCE):
        with open(path, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def _scala_213(jars):
    return any(n.startswith("scala-library-2.13") for n in os.listdir(jars))


def jar_source_digest(jar):
    """The source digest recorded in ``jar`` (None when it has none or cannot be read)."""
    try:
        with zipfile.ZipFile(jar) as z:
            return z.read(_DIGEST_ENTRY).decode().strip()
    except (OSError, KeyError, zipfile.BadZipFile):
        return None


def compile_plugin(target, jars=None):
    """Compile the plugin with ``javac --release 8`` against Spark's jars into the jar ``target`` (written
    atomically, reproducible: fixed timestamps, sorted entries) and return ``target``."""
    jars = jars or spark_jars_folder()
    javac = find_java_tool("javac")
    folder = os.path.dirname(os.path.abspath(target))
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ember-javac-") as work:
        proc = subprocess.run([javac, "--release", JAVA_RELEASE, "-Xlint:-options", "-nowarn", "-d", work, "-cp",
                               os.path.join(jars, "*"), _SOURCE] + ([_PACKING_SOURCE] if _scala_213(jars) else []),
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise SparkSetupError(f"ember's block service does not compile against the Spark jars in {jars} "
                                  f"(Spark {_spark_version(jars)}; ember supports 3.5 and 4.x); javac said:\n"
                                  f"{proc.stderr.strip()[-2000:]}")
        classes = sorted(os.path.relpath(os.path.join(root, n), work) for root, _, names in os.walk(work)
                         for n in names)
        version = subprocess.run([javac, "-version"], capture_output=True, text=True)
        javac_version = (version.stdout or version.stderr).strip()
        fd, tmp = tempfile.mkstemp(prefix=".ember-jar-", dir=folder)
        stamp = (2020, 1, 1, 0, 0, 0)
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as jar:
            jar.writestr(zipfile.ZipInfo("META-INF/MANIFEST.MF", stamp),
                         f"Manifest-Version: 1.0\nCreated-By: {javac_version} --release {JAVA_RELEASE}\n"
                         f"Ember-Built-Against: Spark {_spark_version(jars)}\n")
            jar.writestr(zipfile.ZipInfo(_DIGEST_ENTRY, stamp), source_digest() + "\n")
            for name in classes:
                with open(os.path.join(work, name), "rb") as c:
                    jar.writestr(zipfile.ZipInfo(name.replace(os.sep, "/"), stamp), c.read())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    return target


def block_service_jar():
    """The plugin jar: the one shipped inside the package (built from this source: no JDK needed), else,
    when the source was changed since, one compiled once with javac into ``cache_folder()``."""
    digest = source_digest()
    if jar_source_digest(SHIPPED_JAR) == digest:
        return SHIPPED_JAR
    jars = spark_jars_folder()
    version = _spark_version(jars)
    target = os.path.join(cache_folder(), f"ember-blocks-{version}-{digest[:16]}.jar")
    if os.path.exists(target):
        return target
    logging.getLogger("ember.spark").info("the shipped plugin jar does not match its source: compiling ember's Spark "
                                          "plugin against Spark %s once (about 5 s; cached in %s)", version,
                                          cache_folder())
    return compile_plugin(target, jars)


def submit_args():
    """What spark-submit needs to load ember's block service: ``--jars <jar> --conf spark.plugins=...``."""
    return ["--jars", block_service_jar(), "--conf", f"spark.plugins={PLUGIN_CLASS}"]


# ---------------------------------------------------------------- finding the service
def root_folders():
    """Where executors put their application folders: ``{base}/ember-{uid}``, base being $EMBER_BLOCKS_DIR,
    else /dev/shm, else the temporary folder (the JVM's rule, ``BlockServicePlugin.rootFolder``)."""
    env = os.environ.get("EMBER_BLOCKS_DIR")
    bases = [env] if env else ["/dev/shm", "/tmp", tempfile.gettempdir()]
    return list(dict.fromkeys(os.path.join(b, f"ember-{os.getuid()}") for b in bases))


def check_private(path, folder):
    """Raise SparkSetupError unless ``path`` is a folder (``folder``) or regular file of this user, not a
    link, that nobody else may read or write (0700 / 0600)."""
    st = os.lstat(path)
    kind_ok = stat.S_ISDIR(st.st_mode) if folder else stat.S_ISREG(st.st_mode)
    what = "folder" if folder else "file"
    if not kind_ok:
        raise SparkSetupError(f"ember block service: {path} is not a {what} of its own (a link or something else "
                              "planted there?); remove it")
    if st.st_uid != os.getuid():
        raise SparkSetupError(f"ember block service: {path} belongs to user id {st.st_uid}, not to this user "
                              f"({os.getuid()}); remove it or set EMBER_BLOCKS_DIR to a folder of your own")
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise SparkSetupError(f"ember block service: {path} has mode {stat.S_IMODE(st.st_mode):o}: other users may "
                              f"read or change it; remove it (expected {'700' if folder else '600'})")


def _parent_pid(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat_line = f.read().decode(errors="replace")
        return int(stat_line[stat_line.rindex(")") + 2:].split()[1])
    except (OSError, ValueError, IndexError):
        out = subprocess.run(["ps", "-o", "ppid=", "-p", str(pid)], capture_output=True, text=True)
        return int(out.stdout.strip() or 0)


def port_files():
    """``[(jvm pid, path of its port file)]`` of this user's running block services on this host."""
    found = []
    for root in root_folders():
        if not os.path.isdir(root):
            continue
        for app in sorted(os.listdir(root)):
            folder = os.path.join(root, app)
            if not os.path.isdir(folder) or os.path.islink(folder):
                continue
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            found += [(int(n[:-5]), os.path.join(folder, n)) for n in names if n.endswith(".port") and
                      n[:-5].isdigit()]
    return found


def read_port_file(path):
    """``(port, secret)`` from a port file, which must be private (0600, this user's, not a link) inside a
    private folder; opened without following links."""
    for folder in (os.path.dirname(os.path.dirname(path)), os.path.dirname(path)):
        check_private(folder, folder=True)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o077:
            raise SparkSetupError(f"ember block service: {path} is not a private file of this user; remove it")
        text = os.read(fd, 4096).decode()
    finally:
        os.close(fd)
    lines = text.split("\n")
    if len(lines) < 2 or not lines[0].isdigit() or not lines[1]:
        raise SparkSetupError(f"ember block service: {path} is incomplete")
    return int(lines[0]), lines[1].encode()


class ServiceAddress:
    """Where a JVM's block service listens, its application secret, and its application folder."""

    def __init__(self, port, secret, folder, pid):
        self.port, self.secret, self.folder, self.pid = port, secret, folder, pid

    def __repr__(self):  # never the secret
        return f"ServiceAddress(port={self.port}, folder={self.folder!r}, pid={self.pid})"


def find_service(pid=None):
    """The block service of the JVM that is ``pid`` (default: this process) or one of its ancestors."""
    pid = os.getpid() if pid is None else pid
    services = {}
    for jvm, path in port_files():
        services.setdefault(jvm, path)
    seen = 0
    while pid > 1 and seen < 16:
        if pid in services:
            port, secret = read_port_file(services[pid])
            return ServiceAddress(port, secret, os.path.dirname(services[pid]), pid)
        pid = _parent_pid(pid)
        seen += 1
    raise SparkSetupError("no ember block service found for this process: start Spark with ember.init_nncontext() "
                          f"(it sets spark.plugins={PLUGIN_CLASS}), or with `ember-submit`")


def find_service_port(pid=None):
    """The port of the block service of the JVM that is ``pid`` or one of its ancestors."""
    return find_service(pid).port


class BlockTimeout(TimeoutError):
    """A block did not appear in the BlockManagers in time."""


# ---------------------------------------------------------------- checksums
class BlockCorruptError(ConnectionError):
    """A block whose bytes do not match its trailer: damaged in memory, in a shared-memory file or on the
    wire, cut short (half received), or not written by ember's block clients. An infrastructure failure
    (a ``ConnectionError``): training retries it from the newest checkpoint, never applies the block."""


TRAILER = struct.Struct(">4sQQ")  # mark, payload bytes, XXH3-64 of the payload seeded by the block id
TRAILER_MARK = b"EMB1"


def _id_seed(block_id):
    return xxhash.xxh3_64_intdigest(block_id.encode())


def block_trailer(block_id, payload):
    """The 20 bytes that follow every block ember stores: a mark, the payload's size and its checksum,
    XXH3-64 seeded by the block's id (bytes stored under another id do not verify either). ``payload``
    is bytes-like, or a list or tuple of the parts whose concatenation is the payload.

    NOTE: XXH3-64 runs at 24-29 GB/s on this machine against 0.5-1.3 GB/s for zlib.crc32 (4 MB
    buffers, wall time on a loaded machine). Per W1 iteration (0.54M parameters, 2 trainers) a trainer
    checksums 4 blocks of 1.07 MB (2 puts, 2 gets): 0.11 ms of CPU with XXH3 against 0.99 ms with
    CRC32 (process time, median of 7 x 50), against an iteration of about 20 ms.

    Example:
        >>> data = b"weights" + block_trailer("run-w-0-1", b"weights")
        >>> bytes(verified_payload("run-w-0-1", data))
        b'weights'
    """
    views = _views(payload)
    if len(views) == 1:
        return TRAILER.pack(TRAILER_MARK, views[0].nbytes, xxhash.xxh3_64_intdigest(views[0], _id_seed(block_id)))
    digest = xxhash.xxh3_64(seed=_id_seed(block_id))
    for view in views:
        digest.update(view)
    return TRAILER.pack(TRAILER_MARK, sum(v.nbytes for v in views), digest.intdigest())


def verified_payload(block_id, data):
    """The payload of the stored block ``data`` (payload + ``block_trailer``), as a memoryview without
    the trailer, after checking its size and checksum; ``BlockCorruptError`` naming the block otherwise.

    Example:
        >>> data = bytearray(b"weights" + block_trailer("run-w-0-1", b"weights"))
        >>> data[0] ^= 1
        >>> verified_payload("run-w-0-1", data)
        Traceback (most recent call last):
        ...
        ember.optim.spark.blocks.BlockCorruptError: block 'run-w-0-1' is corrupt: ...
    """
    payload, digest = _trailed_payload(block_id, data)
    _check_digest(block_id, xxhash.xxh3_64_intdigest(payload, _id_seed(block_id)), digest, payload.nbytes)
    return payload


def _trailed_payload(block_id, data):
    """The payload of the stored block ``data`` and the checksum its trailer records, after checking the
    trailer's mark and size (``BlockCorruptError`` otherwise); the checksum itself is the caller's to check."""
    view = memoryview(data).cast("B")
    where = f"block {block_id!r} is corrupt: "
    if view.nbytes < TRAILER.size:
        raise BlockCorruptError(f"{where}{view.nbytes} bytes arrived, fewer than its {TRAILER.size}-byte checksum "
                                "trailer (cut short, or not written by ember's block client)")
    mark, size, digest = TRAILER.unpack(view[view.nbytes - TRAILER.size:])
    payload = view[:view.nbytes - TRAILER.size]
    if mark != TRAILER_MARK:
        raise BlockCorruptError(f"{where}it does not end in ember's checksum trailer (found {bytes(mark)!r}, "
                                f"expected {TRAILER_MARK!r}): damaged, cut short, or not written by ember's block "
                                "client")
    if size != payload.nbytes:
        raise BlockCorruptError(f"{where}{payload.nbytes} payload bytes arrived, its trailer says {size} (half "
                                "received or cut short)")
    return payload, digest


def _check_digest(block_id, actual, digest, size):
    if actual != digest:
        raise BlockCorruptError(f"block {block_id!r} is corrupt: checksum {actual:016x} of its {size} bytes, expected "
                                f"{digest:016x} (damaged in memory, in a file or on the wire, or stored under another "
                                "id)")


# NOTE: a large block is checksummed and copied a piece at a time, each piece copied while it is still in the cache
# after its checksum: one pass over main memory instead of two (50 MB, one core: 7.6-8.0 ms against 8.7-9.0 for
# the checksum then the copy; pieces of 256 KB and less cost more per piece out of a mapped file)
COPY_PIECE = 1 << 20


def _copy_hashing(dest, views, offset, seed):
    """Copy ``views`` one after the other into ``dest`` from ``offset``; the XXH3-64 (``seed``) of what was copied."""
    digest = xxhash.xxh3_64(seed=seed)
    for view in views:
        for at in range(0, view.nbytes, COPY_PIECE):
            piece = view[at:at + COPY_PIECE]
            digest.update(piece)
            dest[offset:offset + piece.nbytes] = piece
            offset += piece.nbytes
    return digest.intdigest()


SHARED_DIR = "/dev/shm"  # where ember before 0.1 put its shared-memory files (see remove_stale_shared_files)
SHARED_MIN = 1 << 16  # smaller blocks go through the socket (as fast, one round trip less)
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)
_KEPT_MAPS = 32  # mappings of block files a client keeps (the service reuses at most 16 free files)
# NOTE: a block file's length is its block's size rounded up to FILE_ROUND (the client allocates the put file so,
# the service cuts only a longer tail): a file that held one block then fits the next block of about its size (a
# gradient block carries 16 bytes more than a weight block), and a client that mapped the file before, to read or
# write it, copies the next put into that mapping
FILE_ROUND = 1 << 16
# NOTE: a put of this size and more into a file the client has not mapped yet is written with pwrite: mapping a
# large file anew costs the page-table work of every page, more than pwrite's own cost (50 MB into a tmpfs
# file whose pages exist: kept mapping 5.5 ms, pwrite 9.7, new mapping with MAP_POPULATE + copy 11.7); W1's 1 MB
# puts gain from mapping every file (0.09-0.14 against 0.21-0.34 ms)
PWRITE_ABOVE = 8 << 20


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_shared_files(folder=SHARED_DIR):
    """Delete this user's ``ember-blocks-<pid>-*`` files whose process has died, left in /dev/shm by earlier
    ember versions (the service now keeps its files in the application folder and cleans those itself);
    returns their names."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        parts = name.split("-")
        if len(parts) < 5 or parts[:2] != ["ember", "blocks"] or not parts[2].isdigit():
            continue
        path = os.path.join(folder, name)
        try:
            if os.stat(path).st_uid != os.getuid() or _process_alive(int(parts[2])):
                continue
            os.unlink(path)
            removed.append(name)
        except OSError:  # gone already, or not ours to remove
            continue
    return removed


def _views(payload):
    """A payload (bytes-like) or the parts of one (a list or tuple of bytes-likes) as byte views."""
    parts = payload if isinstance(payload, (list, tuple)) else (payload,)
    return [memoryview(p).cast("B") for p in parts]


def _copy_into(dest, view, offset):
    dest[offset:offset + view.nbytes] = view


def _write_all(fd, view, offset):
    done = 0
    while done < view.nbytes:
        done += os.pwrite(fd, view[done:], offset + done)


class BlockStore:
    """What a trainer asks of a block store. Subclasses give ``put``, ``get`` and ``remove``; the batched and
    copy-saving forms below are defined from those three, and a store that can do better overrides them
    (``BlockClient`` does: no copy of a block in Python beyond the one into its destination, and no wait
    for answers it does not need).

    Example:
        >>> class Store(BlockStore):
        ...     def __init__(self):
        ...         self.blocks = {}
        ...     def put(self, block_id, payload):
        ...         self.blocks[block_id] = b"".join(bytes(v) for v in _views(payload))
        ...     def get(self, block_id, timeout=120.0):
        ...         return self.blocks[block_id]
        ...     def remove(self, block_id):
        ...         self.blocks.pop(block_id, None)
        >>> store, out = Store(), bytearray(4)
        >>> store.put_parts("b", [b"ab", b"cd"], wait=False)
        >>> bytes(store.get_into("b", out))
        b'abcd'
        >>> store.remove_many(["b"])
        >>> store.blocks
        {}
    """

    def put(self, block_id, payload):
        raise NotImplementedError

    def get(self, block_id, timeout=120.0):
        raise NotImplementedError

    def remove(self, block_id):
        raise NotImplementedError

    def put_parts(self, block_id, parts, wait=True, defer=False):
        """Store the concatenation of ``parts`` (bytes-likes) as one block. With ``wait=False`` the store may
        answer later: a failure then raises from the next call. With ``defer=True`` (implies ``wait=False``)
        the store may even send the request later, with the next request whose answer is needed (or
        ``flush``): do not wait for another client in between."""
        self.put(block_id, b"".join(bytes(v) for v in _views(parts)))

    def get_view(self, block_id, timeout=120.0):
        """The block's bytes as a memoryview that may be valid only until the next call on this store."""
        return memoryview(self.get(block_id, timeout)).cast("B")

    def get_into(self, block_id, out, timeout=120.0, defer_unlock=False):
        """Copy the block into ``out`` (a writable buffer of exactly its size) and return ``out`` as bytes.
        ``defer_unlock``: a store that locks the block while it is read may unlock it with the next request
        rather than at once (do not wait for another client before that request)."""
        data = self.get_view(block_id, timeout)
        dest = memoryview(out).cast("B")
        if dest.nbytes != data.nbytes:
            raise ValueError(f"block {block_id!r} has {data.nbytes} bytes; its destination holds {dest.nbytes}")
        dest[:] = data
        return dest

    def remove_many(self, block_ids, wait=True, defer=False):
        """Remove several blocks (with ``wait=False``, possibly answered later; ``defer``: as ``put_parts``)."""
        for block_id in block_ids:
            self.remove(block_id)

    def flush(self):
        """Send the requests deferred so far (``defer=True``) now."""


class BlockClient(BlockStore):
    """Put, get and remove byte blocks in the local executor's BlockManager (see module docstring).

    The client finds its executor's service through the port file in the application's private folder,
    and presents the application's secret as the first message (the service serves nothing before).
    Blocks of 64 KB and more travel through files in that folder (the worker and its JVM share the host),
    not through the socket. A put writes its parts and trailer straight into this connection's put file,
    which the service renames to a block file and maps into the BlockManager as the block (no copy; it
    then gives the connection a new put file, reusing the file of a removed block). A get of a block
    stored that way reads the block's own file in place, through a mapping the client keeps per file,
    checks it there and copies it once to where it is needed; other blocks (fetched from another
    executor, or put through the socket or by the driver) arrive in this connection's get file.
    ``EMBER_BLOCK_SHM=0`` turns the files off; where they cannot be made, or the memory is full, the
    socket carries everything.

    Requests that need no answer to go on (``put_parts(..., wait=False)``, ``remove_many(..., wait=False)``)
    are answered later: their answers are read before the next answer that is needed, so a failure raises
    from the next call, and the round trip is not waited for.

    NOTE: measured per W1 iteration on local[2] (contended), before these cuts a 1 MB put took 4.6 ms in
    the task, 2.0 ms of it in the service copying the file into a new array. A trainer makes 6 requests per
    iteration, of which 2 (the gets) wait; the other 4 are deferred (``defer=True``, ``defer_unlock=True``)
    and go out with those 2, and the service answers each batch in one write (``bench/sync_profile.py``,
    stand-in compute of 2.76 ms, load 2.4-4.7, alternating: the service's CPU 1.36-1.47 ms per iteration for
    both trainers against 1.97-2.01 when each request was sent alone; iteration 5.3-6.3 ms against 6.5-6.6).

    Example (inside a Spark task started by ``init_nncontext``):
        client = BlockClient()
        client.put("run1-w-0", payload)
        data = client.get("run1-w-0", timeout=60)
    """

    def __init__(self, service=None, shared_memory=None):
        self.service = find_service() if service is None else service
        self.port = self.service.port
        self.sock = socket.create_connection(("127.0.0.1", self.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.stream = self.sock.makefile("rwb", buffering=1 << 16)
        self.shared = None
        self._pending = collections.deque()  # what each answer not read yet is for ("put x", "remove")
        self._unflushed = False  # requests written to the stream's buffer, not sent yet (defer=True)
        self._put_used = False  # the service has taken the put file: open its replacement before writing
        self._get_map = None
        self._maps = {}  # (device, inode) of a block or put file -> this client's mapping of it, least recent first
        self._authenticate()
        if shared_memory is None:
            shared_memory = os.environ.get("EMBER_BLOCK_SHM", "1") != "0"
        if shared_memory:
            self.shared = self._open_shared()

    def _authenticate(self):
        secret = self.service.secret
        self.stream.write(b"A" + struct.pack(">i", len(secret)) + secret)
        self.stream.flush()
        try:
            self._read(1)
        except ConnectionError:
            self.close()
            raise ConnectionError(f"ember block service on port {self.port} refused this client's secret (the port "
                                  "file belongs to another application, or the service restarted)") from None

    def _open_shared(self):
        """Ask the service for this connection's two files (put, get) and open them; None where it has none."""
        self.stream.write(b"S")
        self.stream.flush()
        (length,) = struct.unpack(">i", self._read(4))
        name = self._read(length).decode() if length else ""
        if not name:
            return None
        if "/" in name or name.startswith("."):
            raise ConnectionError(f"ember block service named an unexpected shared-memory file {name!r}")
        files = {}
        try:
            for kind in ("put", "get"):
                path = os.path.join(self.service.folder, f"{name}-{kind}")
                files[kind] = (os.open(path, os.O_RDWR | os.O_NOFOLLOW), path)
        except OSError:
            for fd, _ in files.values():
                os.close(fd)
            return None
        return files

    @staticmethod
    def _id(block_id):
        raw = block_id.encode()
        return struct.pack(">i", len(raw)) + raw

    def _read(self, n):
        data = self.stream.read(n)
        if data is None or len(data) != n:
            raise ConnectionError("ember block service closed the connection")
        return data

    def _send(self, request, wait, what, defer=False):
        """Send the buffered request; with ``wait``, read the answers owed before it, then its own status.
        ``defer``: only buffer it (no answer awaited); it goes out with the next request that is sent."""
        self.stream.write(request)
        if defer:
            self._pending.append(what)
            self._unflushed = True
            return
        self._send_now()
        if not wait:
            self._pending.append(what)
            return
        self._settle()
        if self._read(1) != b"\x00":
            raise ConnectionError(f"ember block service failed to {what}")

    def flush(self):
        if self._unflushed:
            self._send_now()

    def _send_now(self):
        """Send everything written to the stream so far (the requests deferred before included)."""
        self.stream.flush()
        self._unflushed = False

    def _settle(self):
        """Read the answers of the requests sent without waiting (in order); raise on a failure."""
        if self._pending:
            self.flush()
        while self._pending:
            what = self._pending.popleft()
            if self._read(1) != b"\x00":
                self._pending.clear()
                raise ConnectionError(f"ember block service failed to {what}")

    def _put_fd(self):
        """The put file's descriptor; after a put the service has mapped the old file and made a new one."""
        fd, path = self.shared["put"]
        if self._put_used:
            self._settle()  # the service has replaced the file once the put before is answered
            new = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
            os.close(fd)
            self.shared["put"] = (new, path)
            self._put_used = False
            fd = new
        return fd

    def put(self, block_id, payload):
        """Store ``payload`` (bytes-like) as block ``block_id`` (replicated nowhere; other executors fetch it),
        followed by its checksum trailer (``block_trailer``)."""
        self.put_parts(block_id, payload)

    def put_parts(self, block_id, parts, wait=True, defer=False):
        views = _views(parts)
        payload = sum(v.nbytes for v in views)
        size = payload + TRAILER.size
        what = f"store {block_id!r}"
        if self.shared is not None and payload >= SHARED_MIN:
            fd = self._put_fd()
            try:
                dest = self._put_target(fd, size)
                if dest is None:
                    offset = 0
                    for view in [*views, memoryview(block_trailer(block_id, views))]:
                        _write_all(fd, view, offset)
                        offset += view.nbytes
                else:  # the checksum taken while copying (the trailer after the payload)
                    digest = _copy_hashing(dest, views, 0, _id_seed(block_id))
                    _copy_into(dest, memoryview(TRAILER.pack(TRAILER_MARK, payload, digest)), payload)
            except OSError:  # the shared memory is full: the socket it is
                pass
            else:
                self._put_used = True  # whatever the answer: the service has unlinked that file
                self._send(b"F" + self._id(block_id) + struct.pack(">q", size), wait, what, defer and not wait)
                return
        views.append(memoryview(block_trailer(block_id, views)))
        self.stream.write(b"P" + self._id(block_id) + struct.pack(">q", size))
        for view in views:
            self.stream.write(view)
        self._send(b"", wait, what, defer and not wait)

    def _put_target(self, fd, size):
        """The first ``size`` bytes of the put file ``fd``, writable, through the mapping this client keeps of
        that file (the service makes the put file from the file of a removed block: the files come back), or
        None for a large put into a file not mapped yet (written with pwrite: see PWRITE_ABOVE).

        NOTE: W1 (two 1.07 MB puts per iteration and trainer), perf on local[2]: pwrite into the put file
        took 10.7% of a trainer's CPU (0.2 ms per put); a copy into a kept mapping is a memcpy. Before any
        page is written through a mapping, the file's pages up to ``size`` are allocated (``posix_fallocate``:
        an OSError when the memory is full, never a SIGBUS at a write)."""
        st = os.fstat(fd)
        length = -(-size // FILE_ROUND) * FILE_ROUND
        kept = self._kept_map(st, size)
        if kept is None and size >= PWRITE_ABOVE:
            if st.st_size < length:  # a hole: pwrite allocates [0, size), the rest stays unallocated
                os.ftruncate(fd, length)
            return None
        if st.st_size < size:  # a new file (or shorter): every page allocated up to its rounded length
            os.posix_fallocate(fd, 0, length)
        if kept is None:
            kept = self._keep_map(fd, os.fstat(fd))
        return memoryview(kept)

    def _kept_map(self, st, size):
        """This client's mapping of the file ``st`` (an ``os.stat_result``), when it has one of ``size`` bytes or
        more (most recently used last). The mapping holds the file: its (device, inode) is not reused."""
        key = (st.st_dev, st.st_ino)
        kept = self._maps.pop(key, None)
        if kept is not None and len(kept) >= size:
            self._maps[key] = kept
            return kept
        return None

    def _keep_map(self, fd, st):
        """Map the file ``fd`` (all of it, readable and writable: the same mapping serves reading it as a block
        and writing it when it comes back as the put file) and keep the mapping."""
        kept = mmap.mmap(fd, st.st_size, flags=mmap.MAP_SHARED | _POPULATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self._maps[(st.st_dev, st.st_ino)] = kept
        while len(self._maps) > _KEPT_MAPS:
            try:
                self._maps.pop(next(iter(self._maps))).close()
            except BufferError:  # still viewed (a get_view's caller): unmapped when that view goes
                pass
        return kept

    def get(self, block_id, timeout=120.0):
        """The bytes of block ``block_id`` (a memoryview of its own copy), waiting up to ``timeout`` seconds for
        it to appear anywhere; ``BlockCorruptError`` when its size or checksum do not match
        (``verified_payload``)."""
        data = self.get_view(block_id, timeout)
        if isinstance(data.obj, bytes):
            return data
        try:
            return memoryview(bytearray(data))
        finally:
            self._unlock()

    def get_view(self, block_id, timeout=120.0):
        """The verified bytes of block ``block_id``, possibly a view of the block's own file or of this
        connection's get file: valid until the next call on this client (``get`` returns a copy). Until
        then the block stays locked for reading: a removal of it (by any client) waits for that call, so
        do not wait for another client between the two (``get_into`` copies and unlocks at once)."""
        data = self._stored(block_id, timeout)
        try:
            return verified_payload(block_id, data)
        except BlockCorruptError:
            self._unlock()  # nothing of it is used: nobody need wait for this client's next request
            raise

    def _stored(self, block_id, timeout):
        """The stored bytes of block ``block_id`` (payload and trailer, not checked yet), as ``get_view``."""
        op = b"H" if self.shared is not None else b"G"
        self.stream.write(op + self._id(block_id) + struct.pack(">q", int(timeout * 1000)))
        self._send_now()
        self._settle()
        (size,) = struct.unpack(">q", self._read(8))
        if size < 0:
            raise BlockTimeout(f"block {block_id!r} did not appear within {timeout} s")
        if self.shared is None:
            return self._read(size)
        where = self._read(1)
        if where == b"\x02":  # the block's own file, read-locked by the service until our next request
            (length,) = struct.unpack(">i", self._read(4))
            try:
                return self._mapped_block_file(self._read(length).decode(), size)
            except (BlockCorruptError, ConnectionError, OSError):
                self._unlock()
                raise
        if where == b"\x01":
            return self._mapped_get_file(size)
        return self._read(size)

    def get_into(self, block_id, out, timeout=120.0, defer_unlock=False):
        """As ``BlockStore.get_into``; the checksum is taken while copying. NOTE: on a checksum that does not
        match (``BlockCorruptError``), ``out`` holds the damaged bytes: nothing may use them."""
        dest = memoryview(out).cast("B")
        data = self._stored(block_id, timeout)
        try:
            payload, digest = _trailed_payload(block_id, data)
            if dest.nbytes != payload.nbytes:
                raise ValueError(f"block {block_id!r} has {payload.nbytes} bytes; its destination holds {dest.nbytes}")
            _check_digest(block_id, _copy_hashing(dest, [payload], 0, _id_seed(block_id)), digest, payload.nbytes)
        finally:
            self._unlock(defer_unlock)
        return dest

    def _unlock(self, defer=False):
        """Let the service unlock the block of the last get now rather than at the next request (no answer);
        ``defer``: with the next request sent (no wake-up of the service for it alone)."""
        self.stream.write(b"U")
        self._unflushed = True
        if not defer:
            self.flush()

    def _mapped_block_file(self, name, size):
        """The first ``size`` bytes of the block file ``name`` (named by the service, in the application
        folder), read in place through a mapping kept per file (the service reuses the files of removed
        blocks for new ones).

        NOTE: mapping a 50 MB file anew, checking and copying it took 51-61 ms against 22 ms for the copy
        alone (median of 15, contended): the page faults cost more than the copy. A kept mapping of a
        reused file has its pages mapped already."""
        if "/" in name or not name.startswith("shm-") or not name.endswith("-blk"):
            raise ConnectionError(f"ember block service named an unexpected block file {name!r}")
        fd = os.open(os.path.join(self.service.folder, name), os.O_RDWR | os.O_NOFOLLOW)
        try:
            st = os.fstat(fd)
            if st.st_size < size:
                raise BlockCorruptError(f"ember block service announced {size} bytes in block file {name}, which "
                                        "holds fewer (cut short)")
            kept = self._kept_map(st, size) or self._keep_map(fd, st)
            return memoryview(kept)[:size]
        finally:
            os.close(fd)

    def _mapped_get_file(self, size):
        """The first ``size`` bytes of the get file, through a mapping kept from one get to the next."""
        if self._get_map is None or len(self._get_map) < size:
            fd = self.shared["get"][0]
            length = os.fstat(fd).st_size
            if length < size:
                raise BlockCorruptError(f"ember block service announced {size} bytes in the shared-memory file, "
                                        f"which holds {length} (cut short)")
            # a mapping still viewed by an earlier get_view stays alive until that view is gone
            self._get_map = mmap.mmap(fd, length, access=mmap.ACCESS_READ)
        return memoryview(self._get_map)[:size]

    def remove(self, block_id):
        self._send(b"R" + self._id(block_id), True, f"remove {block_id!r}")

    def remove_many(self, block_ids, wait=True, defer=False):
        """Remove several blocks in one request (with ``wait=False``, answered at the next call; ``defer``:
        sent with the next request)."""
        block_ids = list(block_ids)
        if block_ids:
            self._send(b"D" + struct.pack(">i", len(block_ids)) + b"".join(self._id(b) for b in block_ids), wait,
                       f"remove {block_ids!r}", defer and not wait)

    def ping(self):
        self.stream.write(b"E")
        self._send_now()
        self._settle()
        return self._read(1) == b"\x00"

    def close(self):
        try:
            try:
                self._settle()  # the service answers what it was sent before it sees the connection end
            except (ConnectionError, OSError, ValueError):
                pass
            self.stream.close()
        finally:
            self.sock.close()
            for fd, path in (self.shared or {}).values():
                os.close(fd)
                try:
                    os.unlink(path)
                except FileNotFoundError:  # the service removed it when the connection closed
                    pass
            self.shared = None
            for kept in [self._get_map, *self._maps.values()]:
                try:
                    if kept is not None:
                        kept.close()
                except BufferError:  # a view from get_view is still alive: unmapped when it goes
                    pass
            self._get_map, self._maps = None, {}


class DriverBlocks(BlockStore):
    """The driver's access to the same blocks, through py4j and the driver's BlockManager (used for the
    initial weights, checkpoints and the final model, never per iteration)."""

    def __init__(self, sc):
        self.sc = sc
        self._service = sc._jvm.ember.jvm.BlockServicePlugin

    def put(self, block_id, payload):
        view = memoryview(payload).cast("B")
        data = bytearray(view.nbytes + TRAILER.size)
        data[:view.nbytes] = view
        data[view.nbytes:] = block_trailer(block_id, view)
        self._service.driverPut(block_id, data)

    def get(self, block_id, timeout=120.0):
        data = self._service.driverGet(block_id, int(timeout * 1000))
        if data is None:
            raise BlockTimeout(f"block {block_id!r} did not appear within {timeout} s")
        return verified_payload(block_id, data)

    def remove(self, block_id):
        self._service.driverRemove(block_id)
