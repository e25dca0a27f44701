"""The core rooms never import Spark, and nothing imports 'up' the table in STYLE.md."""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
ALLOWED = {
    "kernels": {"kernels"},
    "engine": {"engine", "kernels"},
    "layers": {"engine", "kernels", "layers"},
    "optim": {"engine", "kernels", "layers", "optim"},
}


def imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_room_imports(room):
    files = list((ROOT / room).rglob("*.py"))
    assert files, f"no files in {room}/"
    for path in files:
        for name in imports(path):
            assert not name.startswith("pyspark") or room == "optim", f"{path} imports {name}"
            if name.startswith("ember."):
                target = name.split(".")[1]
                assert target in ALLOWED[room] | {"_version", "_cache"}, f"{path} imports {name} (up the table)"
