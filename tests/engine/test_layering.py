"""The core rooms never import Spark, nothing imports 'up' the table in STYLE.md, no two modules import
each other (directly or round a cycle), and no function in optim/ is longer than 60 lines."""
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


def _module_graph():
    """ember module -> the ember modules it imports (anywhere in the file); package __init__ files,
    which only re-export, are left out."""
    modules = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in ("tests", "bench", "examples", "build") or path.name == "__init__.py":
            continue
        modules["ember." + ".".join(rel.with_suffix("").parts)] = path
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                           for a in node.names]
            else:
                continue
            found |= {t for t in targets if t in modules and t != name}
        graph[name] = found
    return graph


def test_no_import_cycles():
    graph = _module_graph()
    assert "ember.optim.loop" in graph and graph["ember.optim.spark.engine"]
    cycles = []
    for start in graph:  # a path from a module's imports back to itself is a cycle
        stack, seen = list(graph[start]), set()
        while stack:
            node = stack.pop()
            if node == start:
                cycles.append(start)
                break
            if node not in seen:
                seen.add(node)
                stack.extend(graph[node])
    assert cycles == [], f"modules on an import cycle: {sorted(cycles)}"


def _code_lines(node):
    """Lines of a function without its docstring (a long runnable Example is documentation, not logic)."""
    lines = node.end_lineno - node.lineno + 1
    first = node.body[0] if node.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        lines -= first.end_lineno - first.lineno + 1
    return lines


def test_functions_in_optim_stay_short():
    long = []
    for path in (ROOT / "optim").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _code_lines(node) > 60:
                long.append(f"{path.relative_to(ROOT)}:{node.name} ({_code_lines(node)} lines of code)")
    assert long == []
