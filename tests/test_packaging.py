"""Every package folder of the repository is listed in pyproject.toml, so `pip install .` ships it."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP = {"tests", "bench", "examples", "build", "dist"}


def test_every_package_is_installed():
    with open(os.path.join(ROOT, "pyproject.toml")) as f:
        listed = set(re.findall(r'"(ember(?:\.[a-z_]+)*)"', f.read()))
    found = set()
    for folder, dirs, files in os.walk(ROOT):
        rel = os.path.relpath(folder, ROOT)
        top = rel.split(os.sep)[0]
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("__pycache__",) and
                   not d.endswith(".egg-info")]
        if top in SKIP or "__init__.py" not in files:
            continue
        found.add("ember" if rel == "." else "ember." + rel.replace(os.sep, "."))
    assert found - listed == set(), f"add these to [tool.setuptools] packages: {sorted(found - listed)}"
