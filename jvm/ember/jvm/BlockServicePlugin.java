package ember.jvm;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.File;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

import org.apache.spark.SparkEnv;
import org.apache.spark.api.plugin.DriverPlugin;
import org.apache.spark.api.plugin.ExecutorPlugin;
import org.apache.spark.api.plugin.PluginContext;
import org.apache.spark.api.plugin.SparkPlugin;
import org.apache.spark.storage.BlockData;
import org.apache.spark.storage.BlockId;
import org.apache.spark.storage.BlockManager;
import org.apache.spark.storage.StorageLevel;
import org.apache.spark.storage.TestBlockId;
import org.apache.spark.util.io.ChunkedByteBuffer;

import scala.Option;

/**
 * ember's block service: lets the Python tasks of an executor put, get and remove byte blocks in
 * that executor's BlockManager, so that tensors move between executors the way Spark moves its own
 * blocks (the BlockManager's transfer service), never through the driver.
 *
 * Each executor (and, in local mode, the driver's embedded executor) listens on 127.0.0.1 at a free
 * port and writes the port to a file named {jvm pid}.port (see portFile); a Python worker finds it
 * by walking up its own process ancestors to the JVM that started it.
 *
 * Protocol (big-endian), one request after another on a connection:
 *   'P' id-length:int id:utf8 size:long bytes  -> status:byte (0 stored)
 *   'G' id-length:int id:utf8 timeout-ms:long  -> size:long bytes (size -1: not there in time)
 *   'R' id-length:int id:utf8                  -> status:byte (0)
 *   'E' (echo, for health checks)              -> 0:byte
 *   'F' id-length:int id:utf8 name-length:int name:utf8 size:long -> status:byte (0 stored)
 *       put the first size bytes of shared-memory file SHM/name (written by the client)
 *   'H' id-length:int id:utf8 timeout-ms:long name-length:int name:utf8
 *       -> size:long (-1: not there in time), then where:byte (1: in SHM/name, 0: bytes follow)
 * Block ids are Spark TestBlockIds named "test_" + id. 'F' and 'H' spare the socket copies of big
 * blocks (the Python worker and its JVM share the host): the client creates its two files in /dev/shm,
 * named ember-blocks-*, and the service opens only such files there, never through a link; it
 * deletes a connection's files when the connection ends (a killed worker leaves nothing behind).
 */
public class BlockServicePlugin implements SparkPlugin {

  @Override
  public DriverPlugin driverPlugin() {
    return null;
  }

  @Override
  public ExecutorPlugin executorPlugin() {
    return new Service();
  }

  /** Put a block into this JVM's BlockManager (used by the driver through py4j). */
  public static void driverPut(String id, byte[] bytes) throws IOException {
    Service.put(SparkEnv.get().blockManager(), TestBlockId.apply(id), bytes);
  }

  /** Get a block from wherever it is (used by the driver through py4j); null when absent in time. */
  public static byte[] driverGet(String id, long timeoutMs) throws IOException {
    return Service.get(SparkEnv.get().blockManager(), TestBlockId.apply(id), timeoutMs);
  }

  /** Remove a block everywhere (used by the driver through py4j). */
  public static void driverRemove(String id) {
    Service.remove(SparkEnv.get().blockManager(), TestBlockId.apply(id));
  }

  /**
   * True in local mode, where every task runs in this one JVM: blocks need not be reported to the
   * BlockManagerMaster (a synchronous RPC, about 1 ms per put or remove) since nobody fetches them
   * from elsewhere.
   */
  static boolean singleJvm() {
    String master = SparkEnv.get().conf().get("spark.master", "");
    return master.startsWith("local") && !master.startsWith("local-cluster");
  }

  /** {EMBER_BLOCKS_DIR} if set, else {java.io.tmpdir}/ember-blocks. */
  public static File portFile(long pid) {
    String dir = System.getenv("EMBER_BLOCKS_DIR");
    File folder = dir != null && !dir.isEmpty() ? new File(dir)
        : new File(System.getProperty("java.io.tmpdir"), "ember-blocks");
    return new File(folder, pid + ".port");
  }

  /** The executor side: a socket server in front of the BlockManager. */
  public static class Service implements ExecutorPlugin {
    private ServerSocket server;
    private File portFile;
    private volatile boolean running;

    @Override
    public void init(PluginContext ctx, Map<String, String> extraConf) {
      try {
        server = new ServerSocket(0, 128, InetAddress.getLoopbackAddress());
        running = true;
        Thread acceptor = new Thread(this::acceptLoop, "ember-block-service");
        acceptor.setDaemon(true);
        acceptor.start();
        long pid = ProcessHandle.current().pid();
        portFile = portFile(pid);
        portFile.getParentFile().mkdirs();
        File tmp = new File(portFile.getParentFile(), pid + ".port.tmp");
        Files.write(tmp.toPath(), Integer.toString(server.getLocalPort()).getBytes(StandardCharsets.UTF_8));
        Files.move(tmp.toPath(), portFile.toPath(), StandardCopyOption.ATOMIC_MOVE,
            StandardCopyOption.REPLACE_EXISTING);
      } catch (IOException e) {
        throw new RuntimeException("ember block service could not start: " + e, e);
      }
    }

    @Override
    public void shutdown() {
      running = false;
      try {
        if (server != null) {
          server.close();
        }
      } catch (IOException ignored) {
        // closing anyway
      }
      if (portFile != null) {
        portFile.delete();
      }
    }

    private void acceptLoop() {
      while (running) {
        try {
          Socket socket = server.accept();
          socket.setTcpNoDelay(true);
          Thread handler = new Thread(() -> serve(socket), "ember-block-connection");
          handler.setDaemon(true);
          handler.start();
        } catch (IOException e) {
          if (running) {
            System.err.println("ember block service: accept failed: " + e);
          }
        }
      }
    }

    private void serve(Socket socket) {
      Set<Path> files = new HashSet<>();
      try (Socket s = socket;
           DataInputStream in = new DataInputStream(new BufferedInputStream(s.getInputStream(), 1 << 16));
           DataOutputStream out = new DataOutputStream(new BufferedOutputStream(s.getOutputStream(), 1 << 16))) {
        while (true) {
          int op;
          try {
            op = in.readUnsignedByte();
          } catch (EOFException eof) {
            return;
          }
          if (op == 'E') {
            out.writeByte(0);
            out.flush();
            continue;
          }
          BlockId id = TestBlockId.apply(readString(in));
          BlockManager bm = SparkEnv.get().blockManager();
          if (op == 'P') {
            long size = in.readLong();
            byte[] bytes = new byte[Math.toIntExact(size)];
            in.readFully(bytes);
            put(bm, id, bytes);
            out.writeByte(0);
          } else if (op == 'G') {
            long timeoutMs = in.readLong();
            byte[] bytes = get(bm, id, timeoutMs);
            if (bytes == null) {
              out.writeLong(-1L);
            } else {
              out.writeLong(bytes.length);
              out.write(bytes);
            }
          } else if (op == 'R') {
            remove(bm, id);
            out.writeByte(0);
          } else if (op == 'F') {
            Path file = sharedFile(readString(in), files);
            long size = in.readLong();
            put(bm, id, readFile(file, Math.toIntExact(size)));
            out.writeByte(0);
          } else if (op == 'H') {
            long timeoutMs = in.readLong();
            Path file = sharedFile(readString(in), files);
            byte[] bytes = get(bm, id, timeoutMs);
            if (bytes == null) {
              out.writeLong(-1L);
            } else {
              out.writeLong(bytes.length);
              if (bytes.length >= SHARED_MIN && writeFile(file, bytes)) {
                out.writeByte(1);
              } else {  // small, or the shared memory is full: through the socket
                out.writeByte(0);
                out.write(bytes);
              }
            }
          } else {
            throw new IOException("unknown request " + op);
          }
          out.flush();
        }
      } catch (IOException e) {
        if (running) {
          System.err.println("ember block service: connection failed: " + e);
        }
      } finally {
        for (Path file : files) {
          try {
            Files.deleteIfExists(file);
          } catch (IOException ignored) {
            // best effort: the client normally removes its own files
          }
        }
      }
    }

    static final int SHARED_MIN = 1 << 16;
    private static final Path SHARED_DIR = Paths.get("/dev/shm");
    private static final Pattern SHARED_NAME = Pattern.compile("ember-blocks-[A-Za-z0-9_-]{1,100}");

    /** The client's file in /dev/shm, checked: a bare ember-blocks-* name, a regular file, not a link. */
    private static Path sharedFile(String name, Set<Path> files) throws IOException {
      if (!SHARED_NAME.matcher(name).matches()) {
        throw new IOException("refusing shared-memory file name " + name);
      }
      Path file = SHARED_DIR.resolve(name);
      if (!Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
        throw new IOException("no shared-memory file " + file);
      }
      files.add(file);
      return file;
    }

    private static byte[] readFile(Path file, int size) throws IOException {
      byte[] bytes = new byte[size];
      ByteBuffer buffer = ByteBuffer.wrap(bytes);
      try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
        while (buffer.hasRemaining()) {
          if (channel.read(buffer, buffer.position()) < 0) {
            throw new IOException("shared-memory file " + file + " is shorter than " + size + " bytes");
          }
        }
      }
      return bytes;
    }

    private static boolean writeFile(Path file, byte[] bytes) {
      ByteBuffer buffer = ByteBuffer.wrap(bytes);
      try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS)) {
        while (buffer.hasRemaining()) {
          channel.write(buffer, buffer.position());
        }
        return true;
      } catch (IOException e) {  // e.g. /dev/shm full
        return false;
      }
    }

    static void remove(BlockManager bm, BlockId id) {
      boolean single = singleJvm();
      if (bm.getStatus(id).isDefined()) {
        bm.removeBlock(id, !single);
      } else if (!single) {
        bm.master().removeBlock(id);  // it lives in another executor: ask the master to remove it there
      }
    }

    private static String readString(DataInputStream in) throws IOException {
      byte[] raw = new byte[in.readInt()];
      in.readFully(raw);
      return new String(raw, StandardCharsets.UTF_8);
    }

    private static void put(BlockManager bm, BlockId id, byte[] bytes) throws IOException {
      ChunkedByteBuffer buffer = new ChunkedByteBuffer(ByteBuffer.wrap(bytes));
      boolean stored = bm.putBytes(id, buffer, StorageLevel.MEMORY_ONLY_SER(), !singleJvm(), bm.putBytes$default$5(),
          bm.putBytes$default$6(), scala.reflect.ClassTag$.MODULE$.Any());
      if (!stored) {
        throw new IOException("BlockManager refused block " + id);
      }
      synchronized (PUT_SIGNAL) {
        PUT_SIGNAL.notifyAll();
      }
    }

    /** Local puts wake up local waiters at once; remote blocks are looked up with a growing pause. */
    private static final Object PUT_SIGNAL = new Object();

    private static byte[] get(BlockManager bm, BlockId id, long timeoutMs) throws IOException {
      long deadline = System.currentTimeMillis() + timeoutMs;
      // one JVM (local mode): every block is local, and asking the driver for locations would only
      // delay the wake-up of a waiter whose block is being put right now
      long nextRemote = singleJvm() ? Long.MAX_VALUE : 0;
      long remotePause = 1;
      while (true) {
        Option<BlockData> local = bm.getLocalBytes(id);
        if (local.isDefined()) {
          BlockData data = local.get();
          try {
            return toArray(data.toByteBuffer());
          } finally {
            bm.releaseLock(id, Option.empty());
          }
        }
        long now = System.currentTimeMillis();
        if (now >= nextRemote) {  // a remote lookup asks the driver for the block's locations: not too often
          Option<ChunkedByteBuffer> remote = bm.getRemoteBytes(id);
          if (remote.isDefined()) {
            ChunkedByteBuffer chunks = remote.get();
            byte[] bytes = new byte[Math.toIntExact(chunks.size())];
            int offset = 0;
            for (ByteBuffer chunk : chunks.chunks()) {
              ByteBuffer view = chunk.duplicate();
              int n = view.remaining();
              view.get(bytes, offset, n);
              offset += n;
            }
            chunks.dispose();
            return bytes;
          }
          nextRemote = System.currentTimeMillis() + remotePause;
          remotePause = Math.min(remotePause * 2, 8);
        }
        if (System.currentTimeMillis() >= deadline) {
          return null;
        }
        synchronized (PUT_SIGNAL) {
          try {
            PUT_SIGNAL.wait(1);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
          }
        }
      }
    }

    private static byte[] toArray(ByteBuffer buffer) {
      ByteBuffer view = buffer.duplicate();
      byte[] bytes = new byte[view.remaining()];
      view.get(bytes);
      return bytes;
    }
  }
}
