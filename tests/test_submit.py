"""ember-submit's command line: ember's jar and plugin added to what the user set, nothing replaced."""
import subprocess
import sys

from ember.cli import submit_command

JAR = "/x/ember-blocks.jar"
PLUGIN = "spark.plugins=ember.jvm.BlockServicePlugin"


def test_jar_and_plugin_come_before_the_application_and_its_arguments():
    cmd = submit_command(["--master", "yarn", "train.py", "--jars", "mine.jar"], spark_submit="ss", jar=JAR)
    assert cmd == ["ss", "--conf", PLUGIN, "--jars", JAR, "--master", "yarn", "train.py", "--jars", "mine.jar"]


def test_the_users_jars_and_plugins_are_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("SPARK_CONF_DIR", raising=False)
    monkeypatch.delenv("SPARK_HOME", raising=False)
    cmd = submit_command(["-v", "--jars=a.jar,b.jar", "--conf", "spark.plugins=com.x.P", "--master", "local[2]",
                          "app.py"], spark_submit="ss", jar=JAR)
    assert cmd == ["ss", "-v", "--jars", f"a.jar,b.jar,{JAR}", "--conf", "spark.plugins=com.x.P,ember.jvm."
                   "BlockServicePlugin", "--master", "local[2]", "app.py"]
    # spark.jars and spark.plugins from spark-defaults.conf survive the --jars that ember adds
    (tmp_path / "spark-defaults.conf").write_text("# comment\nspark.jars  /d/dep.jar\nspark.plugins com.y.Q\n")
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    cmd = submit_command(["app.py"], spark_submit="ss", jar=JAR)
    assert cmd == ["ss", "--conf", "spark.plugins=com.y.Q,ember.jvm.BlockServicePlugin", "--jars",
                   f"/d/dep.jar,{JAR}", "app.py"]


def test_python_m_ember_jvm_prints_the_arguments():
    out = subprocess.run([sys.executable, "-m", "ember.jvm"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    args = out.stdout.split()
    assert args[0] == "--jars" and args[1].endswith("ember-blocks.jar") and args[2:] == ["--conf", PLUGIN]
