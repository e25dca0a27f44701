"""A real Spark standalone cluster on this machine for tests: one Master and N Workers started with the
``spark-class`` launcher of the installed pyspark (the way ``sbin/start-master.sh`` starts them), on
free ports of 127.0.0.1, optionally with Spark's authentication on (one shared secret, handed to the
daemons in a 0600 properties file, never on a command line). ``stop()`` ends every process it started
(each daemon leads its own process group, which its executors join) and is safe to call twice.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pyspark_home():
    import pyspark

    return os.path.dirname(os.path.abspath(pyspark.__file__))


class StandaloneCluster:
    """``StandaloneCluster(folder, workers=2, cores=1, memory="1g", secret=None).start()``; ``.url`` is the
    master's ``spark://`` address, ``.conf`` what an application needs to join (its secret included)."""

    def __init__(self, folder, workers=2, cores=1, memory="1g", secret=None):
        self.folder, self.workers, self.cores, self.memory, self.secret = folder, workers, cores, memory, secret
        self.processes = []
        self.host = "127.0.0.1"
        self.port, self.ui_port = free_port(), free_port()
        self.url = f"spark://{self.host}:{self.port}"

    @property
    def conf(self):
        conf = {"spark.driver.host": self.host, "spark.driver.bindAddress": self.host}
        if self.secret is not None:
            conf.update({"spark.authenticate": "true", "spark.authenticate.secret": self.secret})
        return conf

    def env(self):
        home = pyspark_home()
        env = dict(os.environ, SPARK_HOME=home, SPARK_LOCAL_IP=self.host, SPARK_LOG_DIR=self.folder,
                   SPARK_WORKER_DIR=os.path.join(self.folder, "work"), PYSPARK_PYTHON=sys.executable)
        env.pop("PYSPARK_GATEWAY_PORT", None)
        env.pop("SPARK_CONF_DIR", None)
        return env

    def _properties(self):
        path = os.path.join(self.folder, "daemons.conf")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            for k, v in self.conf.items():
                if not k.startswith("spark.driver."):
                    f.write(f"{k} {v}\n")
            f.write("spark.worker.cleanup.enabled false\n")
        return path

    def _launch(self, name, args):
        log = open(os.path.join(self.folder, f"{name}.log"), "wb")
        spark_class = os.path.join(pyspark_home(), "bin", "spark-class")
        proc = subprocess.Popen([spark_class, *args], stdout=log, stderr=subprocess.STDOUT, env=self.env(),
                                start_new_session=True)
        log.close()
        self.processes.append(proc)
        return proc

    def start(self, timeout=120):
        os.makedirs(os.path.join(self.folder, "work"), exist_ok=True)
        properties = self._properties()
        try:
            self._launch("master", ["org.apache.spark.deploy.master.Master", "--host", self.host, "--port",
                                    str(self.port), "--webui-port", str(self.ui_port), "--properties-file",
                                    properties])
            self._wait(lambda s: s is not None, timeout, "the master to answer")
            for k in range(self.workers):
                self._launch(f"worker{k}", ["org.apache.spark.deploy.worker.Worker", "--host", self.host, "--port",
                                            str(free_port()), "--webui-port", str(free_port()), "--cores",
                                            str(self.cores), "--memory", self.memory, "--work-dir",
                                            os.path.join(self.folder, "work"), "--properties-file", properties,
                                            self.url])
            self._wait(lambda s: s is not None and self.alive_workers(s) == self.workers, timeout,
                       f"{self.workers} workers to register")
        except BaseException:
            self.stop()
            raise
        return self

    def state(self):
        """The master's JSON status (its web UI's /json), or None while it does not answer."""
        try:
            with urllib.request.urlopen(f"http://{self.host}:{self.ui_port}/json", timeout=5) as r:
                return json.loads(r.read().decode())
        except (OSError, ValueError):
            return None

    @staticmethod
    def alive_workers(state):
        return sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")

    def _wait(self, condition, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [p.args[1] for p in self.processes if p.poll() is not None]
            if dead:
                raise RuntimeError(f"standalone cluster: {dead} exited while waiting for {what}; see the logs in "
                                   f"{self.folder}:\n{self.log_tail()}")
            if condition(self.state()):
                return
            time.sleep(0.5)
        raise TimeoutError(f"standalone cluster: waited {timeout} s for {what}; logs in {self.folder}:\n"
                           f"{self.log_tail()}")

    def log_tail(self, chars=3000):
        out = []
        for name in sorted(os.listdir(self.folder)):
            if name.endswith(".log"):
                with open(os.path.join(self.folder, name), "rb") as f:
                    out.append(f"--- {name}\n" + f.read().decode(errors="replace")[-chars:])
        return "\n".join(out)

    def stop(self):
        for proc in self.processes:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.processes:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)  # the group: executors the worker started, too
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.processes = []


def _signal_group(proc, sig):
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
