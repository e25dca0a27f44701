"""The block-service jar shipped in the package is the one its Java source compiles to (so Spark on a
JRE needs no javac), in Java 8 class files (Spark 3.5 still runs on Java 8)."""
import os
import shutil
import struct
import subprocess
import zipfile

import pytest

from ember.optim.spark import blocks


def _classes(jar):
    with zipfile.ZipFile(jar) as z:
        return {n: z.read(n) for n in z.namelist() if n.endswith(".class")}


def _manifest(jar):
    with zipfile.ZipFile(jar) as z:
        return z.read("META-INF/MANIFEST.MF").decode()


def test_shipped_jar_records_the_digest_of_its_source():
    assert os.path.exists(blocks.SHIPPED_JAR), "rebuild it: python -m ember.jvm --build"
    assert blocks.jar_source_digest(blocks.SHIPPED_JAR) == blocks.source_digest(), \
        "BlockServicePlugin.java changed since ember-blocks.jar was built: run `python -m ember.jvm --build`"
    classes = _classes(blocks.SHIPPED_JAR)
    assert "ember/jvm/BlockServicePlugin.class" in classes
    majors = {struct.unpack(">H", data[6:8])[0] for data in classes.values()}
    assert majors == {52}  # Java 8


def test_shipped_jar_is_what_the_source_compiles_to(tmp_path):
    if shutil.which("javac") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no JDK (javac) here to compile the source")
    try:
        built = blocks.compile_plugin(str(tmp_path / "ember-blocks.jar"))
    except blocks.SparkSetupError as e:
        pytest.skip(f"cannot compile here: {e}")
    assert blocks.jar_source_digest(built) == blocks.source_digest()
    shipped, fresh = _classes(blocks.SHIPPED_JAR), _classes(built)
    if not blocks._scala_213(blocks.spark_jars_folder()):  # Spark 3.5: FeaturePacking is left out
        shipped = {n: c for n, c in shipped.items() if not n.startswith("ember/jvm/FeaturePacking")}
    assert sorted(shipped) == sorted(fresh)
    javac = subprocess.run([blocks.find_java_tool("javac"), "-version"], capture_output=True, text=True)
    if (javac.stdout or javac.stderr).strip() in _manifest(blocks.SHIPPED_JAR):
        # NOTE: javac 17.0.15 writes identical class files against pyspark 3.5.x's and 4.3.0's jars
        assert shipped == fresh
