package ember.jvm;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;
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
 * Security. The driver side creates, per application, a random secret (32 bytes from SecureRandom) and
 * a random folder name, and hands both to the executors through Spark itself (a DriverPlugin's extra
 * conf, spark.plugins.internal.conf.ember.jvm.BlockServicePlugin.*, which Spark sends to executors
 * over its RPC, never on a command line, and redacts in the UI and logs because its name contains
 * "secret"). With spark.authenticate on, Spark's own secret is used instead. Each executor listens on
 * the loopback address only and writes "port\nsecret\n" to {pid}.port in the application's folder
 * {base}/ember-{uid}/{app} (base: $EMBER_BLOCKS_DIR, else /dev/shm, else java.io.tmpdir); both folders
 * are created with mode 0700 and checked (owner, mode, not a link) before use, and every file is
 * created with CREATE_NEW and NOFOLLOW_LINKS, mode 0600. A Python worker finds the file by walking
 * up its own process ancestors to the JVM that started it; only the application's user can read it.
 *
 * Protocol (big-endian). The first message of every connection must be
 *   'A' length:int secret:bytes              -> 0:byte
 * compared in constant time; anything else, or a wrong secret, closes the connection unanswered.
 * Then, one request after another:
 *   'P' id-length:int id:utf8 size:long bytes  -> status:byte (0 stored)
 *   'G' id-length:int id:utf8 timeout-ms:long  -> size:long bytes (size -1: not there in time)
 *   'R' id-length:int id:utf8                  -> status:byte (0)
 *   'D' count:int, count x (id-length:int id:utf8) -> status:byte (0): remove several blocks at once
 *   'E' (echo, for health checks)              -> 0:byte
 *   'S' (shared memory)                        -> length:int name:utf8 (0: none); the service creates
 *       name-put and name-get in the application folder for this connection and deletes them when
 *       the connection ends (a killed worker leaves nothing behind)
 *   'F' id-length:int id:utf8 size:long        -> status:byte (0 stored)
 *       store the first size bytes of this connection's put file: the service renames that file to a
 *       block file of its own naming (shm-{pid}-{random}-blk) and maps it into the BlockManager as the
 *       block (no copy); the put file's name then goes to the file of a removed block (its pages already
 *       there) or to a new file, which the client opens anew after every 'F'. A block's file is given
 *       back when the block is removed (Spark unmaps a removed block's buffer after its readers are
 *       done), or found gone at a later 'F'; at most 16 are kept for reuse, the others deleted
 *   'H' id-length:int id:utf8 timeout-ms:long  -> size:long (-1: not there in time), then where:byte
 *       (2: name-length:int name:utf8 follow, the block's own file in the application folder, which the
 *       client reads in place: the block stays locked for reading until this connection's next request;
 *       1: in this connection's get file, written straight from the stored buffer; 0: bytes follow)
 *   'U' (no answer): nothing, but like every request it ends the read lock of the last 'H'
 * Block ids are Spark TestBlockIds named "test_" + id. The service opens no file a client names.
 *
 * One source for Spark 3.5 and 4.x: BlockManager.putBytes differs between them (4 Scala parameters
 * with defaults in 3.5, 6 in 4.x), so it is resolved by reflection once per JVM. The code is Java 8
 * (Spark 3.5 still runs on Java 8).
 */
public class BlockServicePlugin implements SparkPlugin {

  static final String SECRET_KEY = "secret";
  static final String APP_KEY = "app";

  @Override
  public DriverPlugin driverPlugin() {
    return new Driver();
  }

  @Override
  public ExecutorPlugin executorPlugin() {
    return new Service();
  }

  /** The driver side: creates the application's secret and folder name, handed to every executor. */
  public static class Driver implements DriverPlugin {
    @Override
    public Map<String, String> init(SparkContext sc, PluginContext ctx) {
      Map<String, String> extra = new HashMap<>();
      extra.put(APP_KEY, "app-" + randomHex(8));
      if (!authenticate(ctx.conf())) {
        extra.put(SECRET_KEY, randomHex(32));
      }
      return extra;
    }
  }

  static boolean authenticate(SparkConf conf) {
    return conf.getBoolean("spark.authenticate", false);
  }

  private static final SecureRandom RANDOM = new SecureRandom();

  static String randomHex(int bytes) {
    byte[] raw = new byte[bytes];
    RANDOM.nextBytes(raw);
    StringBuilder text = new StringBuilder();
    for (byte b : raw) {
      text.append(String.format("%02x", b & 0xff));
    }
    return text.toString();
  }

  /** The secret executors check: Spark's own with spark.authenticate on, else the driver plugin's. */
  static byte[] resolveSecret(SparkConf conf, Map<String, String> extra) {
    String secret = null;
    if (authenticate(conf)) {
      // NOTE: a direct call, not SparkEnv.class.getMethod(...): reflection resolves the types of every
      // SparkEnv method, and on a standalone cluster with spark.authenticate on (Spark 4.3) one of them
      // needs protobuf classes absent from the executor's class path: NoClassDefFoundError, and every
      // executor exited with code 50 before this was changed (securityManager and getSecretKey are
      // private[spark] in Scala, public in the class files of Spark 3.5 and 4.x).
      secret = SparkEnv.get().securityManager().getSecretKey();
    } else if (extra != null) {
      secret = extra.get(SECRET_KEY);
    }
    if (secret == null || secret.isEmpty()) {
      throw new IllegalStateException("ember block service: no application secret (the driver did not load "
          + "ember.jvm.BlockServicePlugin; start the application with --conf spark.plugins=ember.jvm.BlockServicePlugin)");
    }
    return secret.getBytes(StandardCharsets.UTF_8);
  }

  /** Put a block into this JVM's BlockManager (used by the driver through py4j). */
  public static void driverPut(String id, byte[] bytes) throws IOException {
    Service.forgetFile(TestBlockId.apply(id));
    Service.put(SparkEnv.get().blockManager(), TestBlockId.apply(id), new ChunkedByteBuffer(ByteBuffer.wrap(bytes)));
  }

  /** Get a block from wherever it is (used by the driver through py4j); null when absent in time. */
  public static byte[] driverGet(String id, long timeoutMs) throws IOException {
    Held held = Service.hold(SparkEnv.get().blockManager(), TestBlockId.apply(id), timeoutMs);
    if (held == null) {
      return null;
    }
    try {
      byte[] bytes = new byte[Math.toIntExact(held.size)];
      int offset = 0;
      for (ByteBuffer chunk : held.chunks) {
        ByteBuffer view = chunk.duplicate();
        int n = view.remaining();
        view.get(bytes, offset, n);
        offset += n;
      }
      return bytes;
    } finally {
      held.release();
    }
  }

  /** Remove a block everywhere (used by the driver through py4j). */
  public static void driverRemove(String id) throws IOException {
    Service.remove(SparkEnv.get().blockManager(), TestBlockId.apply(id));
  }

  /**
   * Cancel Spark 3.5's timer for barrier() calls, a non-daemon java.util.Timer that keeps the JVM that ran
   * barrier tasks alive after its main thread ended (4.x uses a daemon thread pool: nothing to do there).
   * NOTE: measured with pyspark 3.5.9, spark-submit --master local[2] of the LeNet example: the script
   * finished, the driver JVM was still waiting on that timer's thread after 2 minutes. Called from Python
   * when a spark-submit driver exits; true when a timer was cancelled.
   */
  public static boolean releaseBarrierTimer() {
    try {
      Class<?> module = Class.forName("org.apache.spark.BarrierTaskContext$");
      Object instance = module.getField("MODULE$").get(null);
      Object timer = module.getMethod("org$apache$spark$BarrierTaskContext$$timer").invoke(instance);
      if (timer instanceof java.util.Timer) {
        ((java.util.Timer) timer).cancel();
        return true;
      }
    } catch (ReflectiveOperationException | RuntimeException e) {
      // another Spark: no such timer
    }
    return false;
  }

  /**
   * True in local mode, where every task runs in this one JVM: blocks need not be reported to the
   * BlockManagerMaster (a synchronous RPC, about 1 ms per put or remove) since nobody fetches them
   * from elsewhere.
   */
  static boolean singleJvm() {
    SparkEnv env = SparkEnv.get();
    Object[] known = singleJvmOf;
    if (known != null && known[0] == env) {  // asked at every put, get and removal: read once per SparkEnv
      return (Boolean) known[1];
    }
    String master = env.conf().get("spark.master", "");
    boolean single = master.startsWith("local") && !master.startsWith("local-cluster");
    singleJvmOf = new Object[] {env, single};
    return single;
  }

  private static volatile Object[] singleJvmOf;

  // ------------------------------------------------------------ private files and folders
  private static final Set<PosixFilePermission> OWNER_DIR = PosixFilePermissions.fromString("rwx------");
  private static final Set<PosixFilePermission> OWNER_FILE = PosixFilePermissions.fromString("rw-------");

  private static volatile long pid = -1;

  /** This process's pid (Java 8: no ProcessHandle), looked up once. */
  public static long pid() {
    if (pid < 0) {
      String name = ManagementFactory.getRuntimeMXBean().getName();
      pid = Long.parseLong(name.substring(0, name.indexOf('@')));
    }
    return pid;
  }

  /** The user id this JVM runs as. */
  public static int uid() throws IOException {
    Path self = Paths.get("/proc/self");
    if (Files.exists(self)) {
      return (Integer) Files.getAttribute(self, "unix:uid");
    }
    Path probe = Files.createTempFile("ember-uid-", ".tmp");
    try {
      return (Integer) Files.getAttribute(probe, "unix:uid", LinkOption.NOFOLLOW_LINKS);
    } finally {
      Files.deleteIfExists(probe);
    }
  }

  /** {base}/ember-{uid}: base is $EMBER_BLOCKS_DIR, else /dev/shm (memory), else java.io.tmpdir. */
  public static Path rootFolder() throws IOException {
    String env = System.getenv("EMBER_BLOCKS_DIR");
    Path base;
    if (env != null && !env.isEmpty()) {
      base = Paths.get(env);
    } else if (Files.isDirectory(Paths.get("/dev/shm")) && Files.isWritable(Paths.get("/dev/shm"))) {
      base = Paths.get("/dev/shm");
    } else {
      base = Paths.get(System.getProperty("java.io.tmpdir"));
    }
    return base.resolve("ember-" + uid());
  }

  /**
   * Create {@code folder} with mode 0700 unless it exists, then check that it is a real folder (not a
   * link), owned by this user, with mode 0700; an IOException naming the problem and the fix otherwise.
   */
  public static Path privateFolder(String folder) throws IOException {
    Path dir = Paths.get(folder);
    try {
      Files.createDirectory(dir, PosixFilePermissions.asFileAttribute(OWNER_DIR));
    } catch (FileAlreadyExistsException e) {
      // checked below
    }
    PosixFileAttributes attrs = Files.readAttributes(dir, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    if (attrs.isSymbolicLink() || !attrs.isDirectory()) {
      throw new IOException("ember block service: " + dir + " is " + (attrs.isSymbolicLink() ? "a symbolic link"
          : "not a folder") + "; it must be a private folder of this user: remove it (or set EMBER_BLOCKS_DIR)");
    }
    int owner = (Integer) Files.getAttribute(dir, "unix:uid", LinkOption.NOFOLLOW_LINKS);
    if (owner != uid()) {
      throw new IOException("ember block service: " + dir + " belongs to user id " + owner + ", not to this user ("
          + uid() + "); remove it or set EMBER_BLOCKS_DIR to a folder of your own");
    }
    if (!attrs.permissions().equals(OWNER_DIR)) {
      throw new IOException("ember block service: " + dir + " has mode "
          + PosixFilePermissions.toString(attrs.permissions()) + ", expected rwx------ (0700): other users could "
          + "read or plant files there; remove it (or chmod 700 it) and start again");
    }
    return dir;
  }

  /** A new file {@code dir/name} (CREATE_NEW, NOFOLLOW_LINKS, mode 0600): never an existing file or link. */
  static FileChannel createPrivateFile(Path dir, String name) throws IOException {
    Set<OpenOption> all = new HashSet<OpenOption>(Arrays.asList(StandardOpenOption.CREATE_NEW,
        StandardOpenOption.READ, StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS));
    FileAttribute<Set<PosixFilePermission>> mode = PosixFilePermissions.asFileAttribute(OWNER_FILE);
    return FileChannel.open(dir.resolve(name), all, mode);
  }

  /**
   * Write {@code text} to {@code folder/name} atomically: a new private temporary file (random name,
   * CREATE_NEW, NOFOLLOW_LINKS, 0600) renamed over the target; a link planted at the target is replaced,
   * never written through.
   */
  public static void writePrivateFile(String folder, String name, String text) throws IOException {
    Path dir = privateFolder(folder);
    String tmpName = "." + name + "." + randomHex(6) + ".tmp";
    try (SeekableByteChannel channel = createPrivateFile(dir, tmpName)) {
      ByteBuffer buffer = ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8));
      while (buffer.hasRemaining()) {
        channel.write(buffer);
      }
    }
    Files.move(dir.resolve(tmpName), dir.resolve(name), StandardCopyOption.ATOMIC_MOVE);
  }

  /** {pid}.port, .{pid}.port.*.tmp, shm-{pid}-*: the process that made a file. */
  private static final Pattern OWNER_PID = Pattern.compile("^\\.?(?:shm-)?(\\d+)[.-].*");

  /**
   * Remove the files of dead processes (a killed executor cannot remove its own) from every application
   * folder under {@code root}, and the folders left empty for a minute; returns how many were removed.
   */
  public static int removeStale(String root) throws IOException {
    Path dir = privateFolder(root);
    int removed = 0;
    long now = System.currentTimeMillis();
    try (DirectoryStream<Path> apps = Files.newDirectoryStream(dir)) {
      for (Path app : apps) {
        if (!Files.isDirectory(app, LinkOption.NOFOLLOW_LINKS)) {
          continue;
        }
        boolean empty = true;
        try (DirectoryStream<Path> files = Files.newDirectoryStream(app)) {
          for (Path file : files) {
            Matcher m = OWNER_PID.matcher(file.getFileName().toString());
            if (m.matches() && !alive(Long.parseLong(m.group(1))) && Files.deleteIfExists(file)) {
              removed++;
            } else {
              empty = false;
            }
          }
        } catch (IOException e) {
          continue;  // not ours to clean
        }
        if (empty && now - Files.getLastModifiedTime(app, LinkOption.NOFOLLOW_LINKS).toMillis() > 60_000) {
          try {
            Files.deleteIfExists(app);
          } catch (IOException e) {
            // a file appeared meanwhile: in use again
          }
        }
      }
    }
    return removed;
  }

  private static boolean alive(long pid) {
    if (!Files.isDirectory(Paths.get("/proc/self"))) {
      return true;  // no way to tell here: keep the file
    }
    return Files.exists(Paths.get("/proc/" + pid));
  }

  // ------------------------------------------------------------ the executor side
  /** A socket server in front of the BlockManager, for the Python workers of this executor. */
  public static class Service implements ExecutorPlugin {
    private ServerSocket server;
    private Path folder;
    private Path portFile;
    private byte[] secret;
    private volatile boolean running;
    private final List<Path> liveFiles = Collections.synchronizedList(new ArrayList<Path>());
    /** The blocks stored from a put file, each with its file (service-named, in the application folder). */
    private static final Map<BlockId, BlockFile> BLOCK_FILES = new HashMap<>();
    /** Puts since the last look for files of blocks gone unannounced (evicted, removed elsewhere). */
    private static int putsSinceSweep;
    static final int SWEEP_EVERY = 64;
    /** Block files are named shm-{pid}-{this JVM's random tag}{counter}-blk (unique on this host). */
    private static final String FILE_TAG = randomHex(4);
    private static final java.util.concurrent.atomic.AtomicLong FILE_COUNTER = new java.util.concurrent.atomic.AtomicLong();

    /** A block's file and its size (the size of the mapped block: the file is cut to it). */
    static final class BlockFile {
      final Path path;
      final long size;
      boolean stored;  // the block is in the BlockManager (until then no sweep takes the file); under BLOCK_FILES

      BlockFile(Path path, long size) {
        this.path = path;
        this.size = size;
      }
    }
    /**
     * Block files whose blocks are gone, kept for the next puts (at most FREE_MAX, most recent first).
     * NOTE: a new file costs a page allocation for each 4 KB written and the readers' mappings fault
     * again; a reused one is written at copy speed, and clients keep their mappings of it.
     */
    private static final java.util.ArrayDeque<Path> FREE_FILES = new java.util.ArrayDeque<>();
    static final int FREE_MAX = 16;

    @Override
    public void init(PluginContext ctx, Map<String, String> extraConf) {
      try {
        secret = resolveSecret(ctx.conf(), extraConf);
        String app = extraConf == null ? null : extraConf.get(APP_KEY);
        if (app == null || !app.matches("app-[0-9a-f]{16}")) {
          throw new IllegalStateException("ember block service: the driver did not name the application folder "
              + "(start the application with --conf spark.plugins=ember.jvm.BlockServicePlugin)");
        }
        Path root = rootFolder();
        privateFolder(root.toString());
        removeStale(root.toString());
        folder = privateFolder(root.resolve(app).toString());
        server = new ServerSocket(0, 128, InetAddress.getLoopbackAddress());
        running = true;
        Thread acceptor = new Thread(this::acceptLoop, "ember-block-service");
        acceptor.setDaemon(true);
        acceptor.start();
        long pid = pid();
        writePrivateFile(folder.toString(), pid + ".port", server.getLocalPort() + "\n"
            + new String(secret, StandardCharsets.UTF_8) + "\n");
        portFile = folder.resolve(pid + ".port");
      } catch (IOException e) {
        throw new RuntimeException("ember block service could not start: " + e.getMessage(), e);
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
      try {
        if (portFile != null) {
          Files.deleteIfExists(portFile);
        }
        synchronized (liveFiles) {
          for (Path file : liveFiles) {
            Files.deleteIfExists(file);
          }
        }
        synchronized (BLOCK_FILES) {
          for (BlockFile file : BLOCK_FILES.values()) {
            Files.deleteIfExists(file.path);
          }
          BLOCK_FILES.clear();
          for (Path file : FREE_FILES) {
            Files.deleteIfExists(file);
          }
          FREE_FILES.clear();
        }
        if (folder != null) {
          Files.deleteIfExists(folder);  // the last executor of the application on this host removes it
        }
      } catch (IOException ignored) {
        // another executor of this application still has files there
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

    static final int AUTH_TIMEOUT_MS = 10_000;
    static final int MAX_SECRET = 1024;

    /** True when the connection's first message is 'A' with the application's secret (constant-time). */
    private boolean authenticated(Socket socket, DataInputStream in, DataOutputStream out) throws IOException {
      socket.setSoTimeout(AUTH_TIMEOUT_MS);
      try {
        if (in.readUnsignedByte() != 'A') {
          return false;
        }
        int length = in.readInt();
        if (length < 0 || length > MAX_SECRET) {
          return false;
        }
        byte[] offered = new byte[length];
        in.readFully(offered);
        if (!MessageDigest.isEqual(offered, secret)) {
          return false;
        }
      } catch (IOException e) {  // closed, or silent past the timeout
        return false;
      }
      socket.setSoTimeout(0);
      out.writeByte(0);
      out.flush();
      return true;
    }

    /** This connection's shared-memory files: the put file (replaced after every 'F') and the get file. */
    private final class Shared {
      final Path put;
      final Path get;
      FileChannel putChannel;
      final FileChannel getChannel;

      Shared(Path put, Path get, FileChannel putChannel, FileChannel getChannel) {
        this.put = put;
        this.get = get;
        this.putChannel = putChannel;
        this.getChannel = getChannel;
      }

      /**
       * The first {@code size} bytes of the put file, mapped (read-only) as a new block's buffer; the file
       * is renamed to {@code blockFile} and a new, empty put file of the put file's name is created for the
       * next transfer.
       */
      ByteBuffer takePut(long size, Path blockFile) throws IOException {
        FileChannel channel = putChannel;
        putChannel = null;
        ByteBuffer mapped;
        boolean moved = false;
        try {
          long length = channel.size();
          if (length < size) {
            throw new IOException("shared-memory file " + put + " holds " + length + " bytes, fewer than the "
                + size + " announced");
          }
          long rounded = (size + FILE_ROUND - 1) / FILE_ROUND * FILE_ROUND;
          if (length > rounded) {
            // a longer file (a reused file of a larger block) would pin its tail; the length rounded up as the
            // client rounds stays, so that the file fits the next block of about this size (blocks.py FILE_ROUND)
            channel.truncate(rounded);
          }
          mapped = size == 0 ? ByteBuffer.allocate(0) : channel.map(FileChannel.MapMode.READ_ONLY, 0, size);
          Files.move(put, blockFile, StandardCopyOption.ATOMIC_MOVE);
          moved = true;
        } finally {
          channel.close();
          if (!moved) {
            // NOTE: only when the move failed: deleteIfExists of a missing file builds an exception in the
            // JDK (perf, W1 on local[2]: 13% of the service's CPU when it ran after every put)
            Files.deleteIfExists(put);
          }
          putChannel = reusedOrNewFile(put);
        }
        return mapped;
      }

      void close() {
        for (FileChannel channel : new FileChannel[] {putChannel, getChannel}) {
          try {
            if (channel != null) {
              channel.close();
            }
          } catch (IOException ignored) {
            // closing anyway
          }
        }
        for (Path file : new Path[] {put, get}) {
          liveFiles.remove(file);
          try {
            Files.deleteIfExists(file);
          } catch (IOException ignored) {
            // best effort: the client normally removes them itself
          }
        }
      }
    }

    private void serve(Socket socket) {
      Shared shared = null;
      Held lease = null;  // a block read in place by the client ('H' answered 2): locked until the next request
      Input input = null;
      try (Socket s = socket;
           DataInputStream in = new DataInputStream(input = new Input(s.getInputStream(), 1 << 16));
           DataOutputStream out = new DataOutputStream(new BufferedOutputStream(s.getOutputStream(), 1 << 16))) {
        if (!authenticated(s, in, out)) {
          System.err.println("ember block service: refused a connection from " + s.getRemoteSocketAddress()
              + " that did not present the application's secret");
          return;
        }
        while (true) {
          int op;
          try {
            op = in.readUnsignedByte();
          } catch (EOFException eof) {
            return;
          }
          if (lease != null) {
            lease.release();
            lease = null;
          }
          if (op == 'U') {
            continue;
          }
          if (op == 'E') {
            out.writeByte(0);
            out.flush();
            continue;
          }
          if (op == 'S') {
            if (shared == null) {
              shared = createShared();
            }
            byte[] name = shared == null ? new byte[0] : sharedName(shared.put).getBytes(StandardCharsets.UTF_8);
            out.writeInt(name.length);
            out.write(name);
            out.flush();
            continue;
          }
          BlockManager bm = SparkEnv.get().blockManager();
          if (op == 'D') {
            int count = in.readInt();
            if (count < 0 || count > 65536) {
              throw new IOException("a removal of " + count + " blocks");
            }
            for (int k = 0; k < count; k++) {
              remove(bm, TestBlockId.apply(readString(in)));
            }
            out.writeByte(0);
            if (input.buffered() == 0) {
              out.flush();
            }
            continue;
          }
          BlockId id = TestBlockId.apply(readString(in));
          if (op == 'P') {
            long size = in.readLong();
            byte[] bytes = new byte[Math.toIntExact(size)];
            in.readFully(bytes);
            forgetFile(id);
            put(bm, id, new ChunkedByteBuffer(ByteBuffer.wrap(bytes)));
            out.writeByte(0);
          } else if (op == 'G') {
            long timeoutMs = in.readLong();
            Held held = hold(bm, id, timeoutMs);
            if (held == null) {
              out.writeLong(-1L);
            } else {
              try {
                out.writeLong(held.size);
                held.writeTo(out);
              } finally {
                held.release();
              }
            }
          } else if (op == 'R') {
            remove(bm, id);
            out.writeByte(0);
          } else if (op == 'F') {
            long size = in.readLong();
            if (shared == null) {
              throw new IOException("'F' before 'S': this connection has no shared-memory files");
            }
            if (size < 0 || size > Integer.MAX_VALUE) {
              throw new IOException("a block of " + size + " bytes");
            }
            Path file = folder.resolve("shm-" + pid() + "-" + FILE_TAG + Long.toHexString(FILE_COUNTER.incrementAndGet())
                + "-blk");
            ChunkedByteBuffer block = new ChunkedByteBuffer(shared.takePut(size, file));
            forgetFile(id);
            // NOTE: the file is recorded before the block is stored: a reader waiting for the block wakes up
            // at the put and must find it (recorded after the put, the reader often looked first and the
            // service copied the block into its get file: measured, 1 MB pwrite per get in the JVM)
            BlockFile kept = new BlockFile(file, size);
            keepFile(bm, id, kept);
            try {
              put(bm, id, block);
            } catch (IOException | RuntimeException e) {
              dropFile(id, file);
              block.dispose();  // unmap it now: nobody else holds it
              Files.deleteIfExists(file);
              throw e;
            }
            synchronized (BLOCK_FILES) {
              kept.stored = true;
            }
            out.writeByte(0);
          } else if (op == 'H') {
            long timeoutMs = in.readLong();
            if (shared == null) {
              throw new IOException("'H' before 'S': this connection has no shared-memory files");
            }
            Held held = hold(bm, id, timeoutMs);
            if (held == null) {
              out.writeLong(-1L);
            } else {
              try {
                out.writeLong(held.size);
                Path file = held.local && held.size >= SHARED_MIN ? fileOf(id, held.size) : null;
                if (file != null) {  // read in place: no copy here; locked until the next request
                  byte[] name = file.getFileName().toString().getBytes(StandardCharsets.UTF_8);
                  out.writeByte(2);
                  out.writeInt(name.length);
                  out.write(name);
                  lease = held;
                  held = null;
                } else if (held.size >= SHARED_MIN && held.writeTo(shared.getChannel)) {
                  out.writeByte(1);
                } else {  // small, or the shared memory is full: through the socket
                  out.writeByte(0);
                  held.writeTo(out);
                }
              } finally {
                if (held != null) {
                  held.release();
                }
              }
            }
          } else {
            throw new IOException("unknown request " + op);
          }
          // NOTE: requests sent together (a client defers the ones it needs no answer to until one it waits
          // for) are answered together: one write, one wake-up of the client
          if (input.buffered() == 0) {
            out.flush();
          }
        }
      } catch (IOException e) {
        if (running) {
          System.err.println("ember block service: connection failed: " + e);
        }
      } finally {
        if (lease != null) {
          lease.release();
        }
        if (shared != null) {
          shared.close();
        }
      }
    }

    /**
     * Record {@code file} as the file of block {@code id}, and delete the files of blocks that are gone
     * (removed through the master, or evicted: the service is not told).
     */
    private static void keepFile(BlockManager bm, BlockId id, BlockFile file) throws IOException {
      synchronized (BLOCK_FILES) {
        BlockFile old = BLOCK_FILES.put(id, file);
        if (old != null && !old.path.equals(file.path)) {
          free(old.path);
        }
        // NOTE: a look at every kept block's status costs a stat of its would-be disk file in Spark (DiskStore):
        // done every SWEEP_EVERY puts, not at every put (blocks removed through this service give their files
        // back at once)
        if (++putsSinceSweep < SWEEP_EVERY) {
          return;
        }
        putsSinceSweep = 0;
        java.util.Iterator<Map.Entry<BlockId, BlockFile>> entries = BLOCK_FILES.entrySet().iterator();
        while (entries.hasNext()) {
          Map.Entry<BlockId, BlockFile> entry = entries.next();
          if (entry.getValue().stored && !bm.getStatus(entry.getKey()).isDefined()) {
            free(entry.getValue().path);
            entries.remove();
          }
        }
      }
    }

    /** Forget that {@code file} is block {@code id}'s (its put failed); the caller deletes it. */
    private static void dropFile(BlockId id, Path file) {
      synchronized (BLOCK_FILES) {
        BlockFile kept = BLOCK_FILES.get(id);
        if (kept != null && kept.path.equals(file)) {
          BLOCK_FILES.remove(id);
        }
      }
    }

    /**
     * Give back the file of a block that is gone: kept for a later put, or deleted past FREE_MAX. Its
     * mapping in the BlockManager is gone with the block (Spark unmaps a removed block's buffer), and no
     * reader holds it (a removal waits for the readers' locks).
     */
    private static void free(Path file) throws IOException {
      synchronized (BLOCK_FILES) {
        if (FREE_FILES.size() < FREE_MAX) {
          FREE_FILES.push(file);
          return;
        }
      }
      Files.deleteIfExists(file);
    }

    /** A free block file renamed to {@code target} (its pages already there), else a new file. */
    static FileChannel reusedOrNewFile(Path target) throws IOException {
      Path reused;
      synchronized (BLOCK_FILES) {
        reused = FREE_FILES.poll();
      }
      if (reused != null) {
        try {
          Files.move(reused, target, StandardCopyOption.ATOMIC_MOVE);
          return FileChannel.open(target, StandardOpenOption.READ, StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS);
        } catch (IOException e) {
          Files.deleteIfExists(reused);
          Files.deleteIfExists(target);
        }
      }
      return createPrivateFile(target.getParent(), target.getFileName().toString());
    }

    /** Give back the file of block {@code id}, if it has one (the block was removed, or is stored anew). */
    static void forgetFile(BlockId id) throws IOException {
      BlockFile file;
      synchronized (BLOCK_FILES) {
        file = BLOCK_FILES.remove(id);
      }
      if (file != null) {
        free(file.path);
      }
    }

    /** The file of block {@code id} when it has one of {@code size} bytes, else null. */
    private static Path fileOf(BlockId id, long size) {
      BlockFile file;
      synchronized (BLOCK_FILES) {
        file = BLOCK_FILES.get(id);
      }
      return file != null && file.size == size ? file.path : null;
    }

    static final int SHARED_MIN = 1 << 16;
    static final long FILE_ROUND = 1 << 16;

    /** This connection's two new files, shm-{pid}-{random}-put and -get; null when they cannot be made. */
    private Shared createShared() {
      String name = "shm-" + pid() + "-" + randomHex(8);
      Path put = folder.resolve(name + "-put");
      Path get = folder.resolve(name + "-get");
      FileChannel putChannel = null;
      try {
        liveFiles.add(put);
        putChannel = createPrivateFile(folder, put.getFileName().toString());
        liveFiles.add(get);
        return new Shared(put, get, putChannel, createPrivateFile(folder, get.getFileName().toString()));
      } catch (IOException e) {
        new Shared(put, get, putChannel, null).close();
        return null;
      }
    }

    private static String sharedName(Path put) {
      String name = put.getFileName().toString();
      return name.substring(0, name.length() - "-put".length());
    }

    static void remove(BlockManager bm, BlockId id) throws IOException {
      boolean single = singleJvm();
      if (bm.getStatus(id).isDefined()) {
        bm.removeBlock(id, !single);
      } else if (!single) {
        bm.master().removeBlock(id);  // it lives in another executor: ask the master to remove it there
      }
      forgetFile(id);
    }

    private static String readString(DataInputStream in) throws IOException {
      int length = in.readInt();
      if (length < 0 || length > 4096) {
        throw new IOException("block id of " + length + " bytes");
      }
      byte[] raw = new byte[length];
      in.readFully(raw);
      return new String(raw, StandardCharsets.UTF_8);
    }

    /** Store {@code bytes} (kept as they are: a heap array or a mapped file) as block {@code id}. */
    static void put(BlockManager bm, BlockId id, ChunkedByteBuffer bytes) throws IOException {
      if (!PutBytes.call(bm, id, bytes, StorageLevel.MEMORY_ONLY_SER(), !singleJvm())) {
        throw new IOException("BlockManager refused block " + id);
      }
      synchronized (PUT_SIGNAL) {
        PUT_SIGNAL.notifyAll();
      }
    }

    /** Local puts wake up local waiters at once; remote blocks are looked up with a growing pause. */
    private static final Object PUT_SIGNAL = new Object();

    /**
     * The bytes of block {@code id}, held (a local block stays read-locked, a fetched one allocated) until
     * {@link Held#release}; waits up to {@code timeoutMs} for it to appear anywhere, null when it did not.
     */
    static Held hold(BlockManager bm, BlockId id, long timeoutMs) throws IOException {
      long deadline = System.currentTimeMillis() + timeoutMs;
      // one JVM (local mode): every block is local, and asking the driver for locations would only
      // delay the wake-up of a waiter whose block is being put right now
      long nextRemote = singleJvm() ? Long.MAX_VALUE : 0;
      long remotePause = 1;
      while (true) {
        Option<BlockData> local = bm.getLocalBytes(id);
        if (local.isDefined()) {
          try {
            return new Held(new ByteBuffer[] {local.get().toByteBuffer()}, () -> bm.releaseLock(id, Option.empty()),
                true);
          } catch (RuntimeException e) {
            bm.releaseLock(id, Option.empty());
            throw e;
          }
        }
        long now = System.currentTimeMillis();
        if (now >= nextRemote) {  // a remote lookup asks the driver for the block's locations: not too often
          Option<ChunkedByteBuffer> remote = bm.getRemoteBytes(id);
          if (remote.isDefined()) {
            ChunkedByteBuffer chunks = remote.get();
            return new Held(chunks.chunks(), chunks::dispose, false);
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
  }

  /** A buffered stream that tells how many bytes it holds already read from the socket. */
  static final class Input extends BufferedInputStream {
    Input(java.io.InputStream in, int size) {
      super(in, size);
    }

    synchronized int buffered() {
      return count - pos;
    }
  }

  /** A block's bytes (one or more buffers, never copied) and what gives them back. */
  static final class Held {
    final ByteBuffer[] chunks;
    final long size;
    final boolean local;  // a block of this executor, read-locked until release
    private final Runnable release;

    Held(ByteBuffer[] chunks, Runnable release, boolean local) {
      this.chunks = chunks;
      this.release = release;
      this.local = local;
      long total = 0;
      for (ByteBuffer chunk : chunks) {
        total += chunk.remaining();
      }
      this.size = total;
    }

    void release() {
      release.run();
    }

    /** Through a socket: heap buffers directly, others through a small array. */
    void writeTo(DataOutputStream out) throws IOException {
      byte[] copy = null;
      for (ByteBuffer chunk : chunks) {
        ByteBuffer view = chunk.duplicate();
        if (view.hasArray()) {
          out.write(view.array(), view.arrayOffset() + view.position(), view.remaining());
          continue;
        }
        if (copy == null) {
          copy = new byte[1 << 16];
        }
        while (view.hasRemaining()) {
          int n = Math.min(copy.length, view.remaining());
          view.get(copy, 0, n);
          out.write(copy, 0, n);
        }
      }
    }

    /**
     * Into a file from its start, false when that fails (the shared memory is full). A mapped or direct
     * buffer goes to the kernel as it is; a heap buffer in slices of 1 MB (the JDK copies a heap buffer
     * into a temporary direct buffer of its size, and keeps that buffer cached per thread).
     */
    boolean writeTo(FileChannel file) {
      long position = 0;
      try {
        for (ByteBuffer chunk : chunks) {
          ByteBuffer view = chunk.duplicate();
          int step = view.isDirect() ? Integer.MAX_VALUE : 1 << 20;
          while (view.hasRemaining()) {
            ByteBuffer slice = view.duplicate();
            slice.limit(view.position() + Math.min(step, view.remaining()));
            int n = file.write(slice, position);
            position += n;
            view.position(view.position() + n);
          }
        }
        return true;
      } catch (IOException e) {  // e.g. /dev/shm full
        return false;
      }
    }
  }

  /**
   * BlockManager.putBytes, found at run time: (blockId, bytes, level, tellMaster, [defaults...], classTag).
   * Spark 3.5 has 4 Scala parameters, 4.x 6; the ones past tellMaster take their Scala defaults
   * (putBytes$default$N).
   */
  static final class PutBytes {
    private static Method method;
    private static Object[] defaults;

    static synchronized void resolve(BlockManager bm) throws IOException {
      if (method != null) {
        return;
      }
      Method found = null;
      for (Method m : BlockManager.class.getMethods()) {
        Class<?>[] t = m.getParameterTypes();
        if (m.getName().equals("putBytes") && t.length >= 5 && t[0] == BlockId.class
            && t[1] == ChunkedByteBuffer.class && t[2] == StorageLevel.class && t[3] == boolean.class
            && t[t.length - 1] == scala.reflect.ClassTag.class && (found == null || t.length > found.getParameterCount())) {
          found = m;
        }
      }
      if (found == null) {
        throw new IOException("this Spark's BlockManager has no putBytes(BlockId, ChunkedByteBuffer, StorageLevel, "
            + "boolean, ..., ClassTag): ember supports Spark 3.5 and 4.x");
      }
      Object[] values = new Object[found.getParameterCount()];
      for (int i = 4; i < values.length - 1; i++) {
        try {
          values[i] = BlockManager.class.getMethod("putBytes$default$" + (i + 1)).invoke(bm);
        } catch (ReflectiveOperationException e) {
          throw new IOException("BlockManager.putBytes has a parameter " + (i + 1) + " without a default: ember "
              + "supports Spark 3.5 and 4.x (" + found + ")", e);
        }
      }
      defaults = values;
      method = found;
    }

    static boolean call(BlockManager bm, BlockId id, ChunkedByteBuffer bytes, StorageLevel level, boolean tell)
        throws IOException {
      resolve(bm);
      Object[] args = defaults.clone();
      args[0] = id;
      args[1] = bytes;
      args[2] = level;
      args[3] = tell;
      args[args.length - 1] = scala.reflect.ClassTag$.MODULE$.Any();
      try {
        return (Boolean) method.invoke(bm, args);
      } catch (IllegalAccessException e) {
        throw new IOException(e);
      } catch (InvocationTargetException e) {
        Throwable cause = e.getCause();
        throw cause instanceof IOException ? (IOException) cause : new IOException(cause);
      }
    }
  }
}
