"""The ``ember`` command (also ``python -m ember``): ``ember info``, ``ember doctor`` and ``ember submit``
(also the command ``ember-submit``).

``ember info`` prints what ember runs on: versions, Java and Spark, the Numba cache, the CPU features
Numba and BLAS use, the BLAS library and the GPU. ``ember doctor`` checks what training on Spark
needs (Python, Java 17+, pyspark 3.5 or 4.x, ember's block-service plugin, a writable kernel cache), says
how to fix each failed check, and exits with status 1 when one failed.

``ember-submit`` is spark-submit (same arguments) with ember's jar and plugin added before the JVM
starts. Neither info nor doctor starts Spark or compiles a kernel; ``doctor`` compiles the block-service
jar (javac, a few seconds, cached) only when the jar shipped in the package does not match its source.
"""
import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass

# CPU features that decide which machine code Numba (LLVM) and OpenBLAS run.
_CPU_FEATURES = ("sse4.2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512vnni",
                 "avx512bf16", "avx512fp16", "amx-tile", "neon", "sve")
MIN_JAVA = 17
MIN_PYTHON = (3, 10)


def _spark_setup():
    """ember's Spark set-up helpers (the one place the CLI reaches into optim/)."""
    from ember.optim.spark import blocks as spark_blocks  # noqa: PLC0415 - only the commands that need it pay

    return spark_blocks


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _java_version(java):
    """(major, the first line of ``java -version``) for a java executable."""
    proc = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    text = (proc.stderr or proc.stdout).strip()
    first = text.splitlines()[0] if text else ""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', first)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"`{java} -version` failed: {text[-500:] or proc.returncode}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_292" is Java 8
        major = int(match.group(2))
    return major, first


def _pyspark_folder():
    spec = importlib.util.find_spec("pyspark")
    return os.path.dirname(spec.origin) if spec is not None and spec.origin else None


def _cpu():
    rows = [("logical CPUs", f"{os.cpu_count()} (this process may use {len(os.sched_getaffinity(0))})"
             if hasattr(os, "sched_getaffinity") else str(os.cpu_count()))]
    try:
        import llvmlite.binding as llvm  # noqa: PLC0415

        features = {f[1:] for f in llvm.get_host_cpu_features().flatten().split(",") if f.startswith("+")}
        rows.append(("CPU (as LLVM names it)", llvm.get_host_cpu_name()))
    except Exception as e:  # noqa: BLE001 - fall back to the kernel's view
        features, rows = set(), rows + [("CPU (as LLVM names it)", f"unknown ({e})")]
        try:
            with open("/proc/cpuinfo") as f:
                flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
            features = {x.replace("_", "").replace("sse42", "sse4.2") for x in flags.split(":")[-1].split()}
        except OSError:
            pass
    rows.append(("CPU features used by Numba/BLAS", " ".join(f for f in _CPU_FEATURES if f in features) or "none"))
    return rows


def _blas():
    import numpy as np  # noqa: PLC0415

    np.ones((2, 2)) @ np.ones((2, 2))  # load NumPy's BLAS
    try:
        from threadpoolctl import threadpool_info  # noqa: PLC0415

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    except ImportError:
        pools = []
    if pools:
        return [(f"BLAS ({p.get('internal_api')})", f"{p.get('version')} {p.get('architecture') or ''} kernels, "
                 f"{p.get('num_threads')} threads, {p.get('threading_layer')}; {p.get('filepath')}") for p in pools]
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return [("BLAS (NumPy build)", f"{blas.get('name')} {blas.get('version')}; "
                 f"{blas.get('openblas configuration', '')}".strip())]
    except Exception as e:  # noqa: BLE001 - older NumPy: no dict mode
        return [("BLAS", f"unknown ({e}); pip install threadpoolctl to see it")]


def _gpu():
    if importlib.util.find_spec("cupy") is None:
        return [("CuPy", "not installed (GPU kernels need pip install 'ember-dl[gpu]')")]
    from ember.kernels import cupy_or_none  # noqa: PLC0415

    cupy = cupy_or_none()
    if cupy is None:
        return [("CuPy", f"{_version('cupy-cuda12x') or 'installed'}, but no CUDA device is usable")]
    rows = [("CuPy", cupy.__version__)]
    for i in range(cupy.cuda.runtime.getDeviceCount()):
        props = cupy.cuda.runtime.getDeviceProperties(i)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        rows.append((f"CUDA device {i}", f"{name}, {props['totalGlobalMem'] / 2**30:.0f} GiB"))
    return rows



def _threading_layer(numba):
    """The layer Numba loaded, or the one it will try first (none is loaded before a parallel kernel runs)."""
    try:
        return numba.threading_layer()
    except ValueError:
        layer = numba.config.THREADING_LAYER
        return f"{numba.config.THREADING_LAYER_PRIORITY[0]} (first choice)" if layer == "default" else layer

def collect_info():
    """``[(section, [(name, value), ...]), ...]``: everything ``ember info`` prints."""
    import ember  # noqa: PLC0415
    from ember._cache import cache_home, folder_size  # noqa: PLC0415
    from ember.kernels.cpu import jit  # noqa: PLC0415

    versions = [("ember", f"{ember.__version__} at {os.path.dirname(os.path.abspath(ember.__file__))}"),
                ("Python", f"{platform.python_version()} ({sys.executable})"),
                ("platform", platform.platform())]
    for dist in ("numpy", "scipy", "numba", "llvmlite", "pyspark", "threadpoolctl", "torch"):
        versions.append((dist, _version(dist) or "not installed"))

    spark = _spark_setup()
    try:
        java = spark.find_java_tool("java")
        java_row = f"{_java_version(java)[1]} ({java})"
    except Exception as e:  # noqa: BLE001 - info reports, doctor explains
        java_row = f"not usable: {e}"
    pyspark = _pyspark_folder()
    jars = os.path.join(pyspark, "jars") if pyspark else None
    java_spark = [("Java", java_row), ("JAVA_HOME", os.environ.get("JAVA_HOME", "(not set)")),
                  ("Spark jars", f"{jars} ({len(os.listdir(jars))} jars)" if jars and os.path.isdir(jars)
                   else "pyspark not installed"),
                  ("block-service jar cache", spark.cache_folder())]

    cache = jit.CACHE_DIR
    kernels = [("Numba cache", f"{cache} ({folder_size(cache) / 1e6:.1f} MB)" if cache else "none (not writable)"),
               ("ember cache", f"{cache_home()} ({folder_size(cache_home()) / 1e6:.1f} MB)"),
               ("Numba threading layer", f"{_threading_layer(jit.numba)}, {jit.THREADS['n']} kernel threads, "
                                         f"parallel mode {jit.THREADS['mode']}")]
    switches = [(k, v) for k, v in sorted(os.environ.items())
                if k.startswith(("EMBER_", "NUMBA_", "OPENBLAS_", "OMP_", "MKL_", "GOMP_"))]
    return [("versions", versions), ("Java and Spark", java_spark), ("kernels", kernels), ("CPU", _cpu()),
            ("BLAS", _blas()), ("GPU", _gpu()), ("environment", switches or [("(no EMBER_/NUMBA_/BLAS variables)",
                                                                            "")])]


def cmd_info(args):
    sections = collect_info()
    if args.json:
        print(json.dumps({section: dict(rows) for section, rows in sections}, indent=2))
        return 0
    width = max(len(name) for _, rows in sections for name, _ in rows)
    for section, rows in sections:
        print(f"{section}:")
        for name, value in rows:
            print(f"  {name:<{width}}  {value}")
    return 0


@dataclass
class Check:
    """One doctor check: its name, whether it passed, what was found and, when it failed, how to fix it."""
    name: str
    ok: bool
    found: str
    fix: str = ""


def check_python():
    ok = sys.version_info[:2] >= MIN_PYTHON
    return Check("Python", ok, f"{platform.python_version()} ({sys.executable})",
                 "" if ok else f"ember needs Python {'.'.join(map(str, MIN_PYTHON))} or newer")


def check_java(tool):
    """``java`` (a runtime, version >= 17) or ``javac`` (to build the block-service plugin)."""
    spark = _spark_setup()
    home = os.environ.get("JAVA_HOME")
    install = ("install a Java 17 JDK (Debian/Ubuntu: `sudo apt install openjdk-17-jdk-headless`; macOS: "
               "`brew install openjdk@17`) and put its bin/ on PATH or set JAVA_HOME to it")
    wrong_home = (f"JAVA_HOME is {home} but {os.path.join(home, 'bin', tool)} does not exist; "
                  if home and not os.path.exists(os.path.join(home, "bin", tool)) else "")
    try:
        path = spark.find_java_tool(tool)
    except spark.SparkSetupError as e:
        return Check(tool, False, f"{wrong_home}{e}", install)
    if tool == "javac":
        return Check(tool, True, f"{path}{' (' + wrong_home.rstrip('; ') + ')' if wrong_home else ''}")
    try:
        major, line = _java_version(path)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        return Check(tool, False, str(e), install)
    if major < MIN_JAVA:
        return Check(tool, False, f"{line} ({path}): Spark 4 needs Java {MIN_JAVA} or newer", install)
    return Check(tool, True, f"{line} ({path})" + (f"; but {wrong_home.rstrip('; ')}" if wrong_home else ""))


def check_pyspark():
    try:
        import pyspark  # noqa: PLC0415
    except Exception as e:  # noqa: BLE001 - any import failure is the finding
        return Check("pyspark", False, f"does not import: {e}", "pip install 'pyspark>=3.5' (a ~450 MB download)")
    version = tuple(int(p) for p in re.findall(r"\d+", pyspark.__version__)[:2])
    if not (3, 5) <= version < (5, 0):
        return Check("pyspark", False, f"{pyspark.__version__} at {os.path.dirname(pyspark.__file__)}: ember's "
                     "block service supports Spark 3.5 and 4.x", "pip install 'pyspark>=3.5,<5'")
    return Check("pyspark", True, f"{pyspark.__version__} at {os.path.dirname(pyspark.__file__)}")


def check_block_service():
    spark = _spark_setup()
    try:
        jar = spark.block_service_jar()
    except Exception as e:  # noqa: BLE001 - SparkSetupError, or a pyspark that does not import
        return Check("block-service plugin", False, str(e),
                     "fix the Java and pyspark checks above; the jar is compiled once (javac) into "
                     f"{spark.cache_folder()} (set EMBER_JVM_CACHE to move it)")
    return Check("block-service plugin", True, f"{jar} ({spark.PLUGIN_CLASS})")


def check_kernel_cache():
    from ember.kernels.cpu import jit  # noqa: PLC0415

    if jit.CACHE_DIR is None or not os.access(jit.CACHE_DIR, os.W_OK):
        return Check("Numba kernel cache", False, f"{jit.CACHE_DIR or 'no folder'} is not writable: every process "
                     "compiles the kernels again (up to a minute)", "set EMBER_CACHE_DIR to a writable folder")
    return Check("Numba kernel cache", True, jit.CACHE_DIR)


def cmd_doctor(args):
    java, javac, pyspark = check_java("java"), check_java("javac"), check_pyspark()
    if java.ok and pyspark.ok:
        plugin = check_block_service()
        if plugin.ok and not javac.ok:  # javac only builds the jar, and it is built
            javac = Check("javac", True, f"not found, not needed: the plugin jar is built ({javac.found})")
    else:
        plugin = Check("block-service plugin", False, "not tried: Java or pyspark failed above",
                       "fix the checks above, then run `ember doctor` again")
    checks = [check_python(), java, javac, pyspark, plugin, check_kernel_cache()]
    width = max(len(c.name) for c in checks)
    for c in checks:
        print(f"[{'ok' if c.ok else 'FAIL':>4}] {c.name:<{width}}  {c.found}")
        if not c.ok:
            print(f"       {'':<{width}}  fix: {c.fix}")
    failed = [c.name for c in checks if not c.ok]
    print(f"{len(failed)} check(s) failed: {', '.join(failed)}" if failed else "all checks passed")
    return 1 if failed else 0


def build_parser():
    parser = argparse.ArgumentParser(prog="ember", description="ember: deep learning on Apache Spark.")
    parser.add_argument("--version", action="version", version=f"ember {_version('ember-dl') or 'unknown'}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    info = commands.add_parser("info", help="versions, Java and Spark, Numba cache, CPU features, BLAS, GPU",
                               description="Print what ember runs on (starts nothing, compiles nothing).")
    info.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    info.set_defaults(run=cmd_info)
    doctor = commands.add_parser("doctor", help="check Java, Spark and the block-service plugin; say how to fix",
                                 description="Check what training on Spark needs; exit status 1 if a check failed.")
    doctor.set_defaults(run=cmd_doctor)
    commands.add_parser("submit", help="spark-submit with ember's block service loaded (same arguments)",
                        description=SUBMIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser


SUBMIT_HELP = """\
usage: ember submit [spark-submit options] APPLICATION [application arguments]

spark-submit with ember's plugin jar (--jars) and block service (spark.plugins) added to
what you set, before the JVM starts; every other option is spark-submit's own and passes
through unchanged (also as the command `ember-submit`).

examples:
  ember submit --master local[2] examples/train_lenet_spark.py
  ember submit --master spark://host:7077 --executor-cores 2 train.py --epochs 5
  ember submit --master yarn --deploy-mode cluster --num-executors 4 train.py
"""


def main(argv=None):
    """Entry point of the ``ember`` command; returns the exit status.

    ``ember submit ...`` hands everything after ``submit`` to spark-submit (see ``submit_main``), so
    spark-submit's options are not parsed here; ``ember submit`` alone or with ``--help`` prints its help.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "submit":
        if argv[1:] in ([], ["--help"], ["-h"]):
            print(SUBMIT_HELP, end="")
            return 0 if argv[1:] else 2
        return submit_main(argv[1:])
    args = build_parser().parse_args(argv)
    return args.run(args)


# ---------------------------------------------------------------- ember-submit
# spark-submit's options that take no value (every other option before the application takes one)
_SUBMIT_FLAGS = {"--verbose", "-v", "--supervise", "--help", "-h", "--version", "--usage-error"}


def _find_spark_submit():
    """$SPARK_HOME/bin/spark-submit, else the pyspark package's, else spark-submit on PATH."""
    candidates = []
    if os.environ.get("SPARK_HOME"):
        candidates.append(os.path.join(os.environ["SPARK_HOME"], "bin", "spark-submit"))
    folder = _pyspark_folder()
    if folder:
        candidates.append(os.path.join(folder, "bin", "spark-submit"))
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    import shutil  # noqa: PLC0415

    found = shutil.which("spark-submit")
    if found is None:
        raise SystemExit("ember-submit: no spark-submit found (looked in $SPARK_HOME/bin, the pyspark package and "
                         "PATH): pip install 'pyspark>=3.5' or set SPARK_HOME")
    return found


def _defaults_file(options):
    """The properties file spark-submit reads: --properties-file, else spark-defaults.conf in SPARK_CONF_DIR or
    SPARK_HOME/conf."""
    if "--properties-file" in options:
        return options["--properties-file"]
    folder = os.environ.get("SPARK_CONF_DIR") or (os.path.join(os.environ["SPARK_HOME"], "conf")
                                                  if os.environ.get("SPARK_HOME") else None)
    return os.path.join(folder, "spark-defaults.conf") if folder else None


def _read_defaults(path):
    found = {}
    if path and os.path.isfile(path):
        with open(path) as f:
            for line in f:
                parts = line.strip().split(None, 1)
                if len(parts) == 2 and not parts[0].startswith("#"):
                    found[parts[0]] = parts[1].strip()
    return found


def _merge(existing, item):
    parts = [p for p in (existing or "").split(",") if p]
    return ",".join(parts + ([item] if item not in parts else []))


def submit_command(argv, spark_submit=None, jar=None):
    """The spark-submit command for ``argv`` (spark-submit's own arguments) with ember's jar and plugin
    added to what the user set (``--jars``, ``--conf spark.jars``/``spark.plugins``, spark-defaults.conf)
    and nothing of theirs replaced; the master and every other setting stay as given."""
    from ember.optim.spark.blocks import PLUGIN_CLASS, block_service_jar  # noqa: PLC0415

    jar = jar or block_service_jar()
    argv = list(argv)
    options, confs, end = {}, {}, len(argv)  # confs: setting -> index of its value in argv
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-"):  # the application (script or jar): its own arguments follow
            end = i
            break
        if arg in _SUBMIT_FLAGS:
            i += 1
            continue
        if "=" in arg and arg.startswith("--"):
            name, value = arg.split("=", 1)
            argv[i:i + 1] = [name, value]
            arg = name
        if i + 1 >= len(argv):
            break
        options[arg] = argv[i + 1]
        if arg in ("--conf", "-c") and "=" in argv[i + 1]:
            confs[argv[i + 1].split("=", 1)[0]] = i + 1
        i += 2
    defaults = _read_defaults(_defaults_file(options))
    head, tail = argv[:end], argv[end:]
    # spark-submit's --jars replaces spark.jars (from --conf or spark-defaults): keep theirs in ours
    jars = options.get("--jars") or (head[confs["spark.jars"]].split("=", 1)[1] if "spark.jars" in confs
                                     else defaults.get("spark.jars", ""))
    if "--jars" in options:
        head[head.index("--jars") + 1] = _merge(jars, jar)
    else:
        head = ["--jars", _merge(jars, jar)] + head
    if "spark.plugins" in confs:
        at = confs["spark.plugins"] + (0 if "--jars" in options else 2)
        head[at] = "spark.plugins=" + _merge(head[at].split("=", 1)[1], PLUGIN_CLASS)
    else:
        head = ["--conf", "spark.plugins=" + _merge(defaults.get("spark.plugins", ""), PLUGIN_CLASS)] + head
    return [spark_submit or _find_spark_submit()] + head + tail


def submit_main(argv=None):
    """Entry point of ``ember-submit``: spark-submit with ember's block service loaded before the JVM starts.

    Example: ``ember-submit --master local[2] examples/train_lenet_spark.py``. The Python that runs this
    command (ember's environment) runs the driver unless PYSPARK_DRIVER_PYTHON/PYSPARK_PYTHON say
    otherwise, and on a local master the workers too.
    """
    argv = sys.argv[1:] if argv is None else argv
    command = submit_command(argv)
    master = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--master"), None)
    if master is None:
        master = next((a.split("=", 1)[1] for a in argv if a.startswith("--master=")), "local[*]")
    if "PYSPARK_PYTHON" not in os.environ and "PYSPARK_DRIVER_PYTHON" not in os.environ:
        os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
        if master.startswith("local"):
            os.environ["PYSPARK_PYTHON"] = sys.executable
    os.execv(command[0], command)
