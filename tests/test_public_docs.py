"""Every public class and function of ember's user-facing modules has a docstring with a runnable
Example, and the examples print what they say (doctest).

Public names are a module's ``__all__``, else the classes and functions it defines whose names do not
start with ``_``. A name re-exported by several modules (``ember.set_seed`` is ``ember.engine.set_seed``)
has its examples run once, under the first module of MODULES that lists it, found in the module that
defines it (whose own docstring's examples run too). ``ember.losses`` is covered by
tests/layers/test_loss_docs.py.
"""
import doctest
import importlib
import inspect
import sys
import tempfile

import pytest

# Order matters only for where a re-exported object's examples run: the first module listing it owns it.
MODULES = [
    "ember.engine", "ember.engine.functional", "ember.layers", "ember.optim", "ember.optimizers",
    "ember.optimizers.schedules", "ember.metrics", "ember.callbacks", "ember.utils", "ember", "ember.zoo.keras",
    "ember.zoo.models",
    "ember.zoo.weights", "ember.zoo.download", "ember.zoo.vision", "ember.zoo.importers.torch",
    "ember.zoo.importers.keras",
]


def public(module):
    """(name, object) for the public classes and functions of ``module``."""
    if hasattr(module, "__all__"):
        items = [(name, getattr(module, name)) for name in module.__all__]
    else:
        items = [(name, obj) for name, obj in vars(module).items()
                 if not name.startswith("_") and getattr(obj, "__module__", None) == module.__name__]
    return [(name, obj) for name, obj in items if inspect.isclass(obj) or inspect.isfunction(obj)]


def _owners():
    """module name -> the objects whose examples run under it (each object once, in MODULES order), and
    the modules whose own docstrings run under it (a listed module's, and each defining module's once)."""
    seen, owned, docs = set(), {name: [] for name in MODULES}, {name: [] for name in MODULES}
    for name in MODULES:
        for module_name in [name] + [obj.__module__ for _, obj in public(importlib.import_module(name))]:
            if module_name not in seen:
                seen.add(module_name)
                docs[name].append(sys.modules[module_name])
        for _, obj in public(importlib.import_module(name)):
            if id(obj) not in seen:
                seen.add(id(obj))
                owned[name].append(obj)
    return owned, docs


@pytest.mark.parametrize("name", MODULES)
def test_every_public_name_has_a_docstring_with_an_example(name):
    names = public(importlib.import_module(name))
    assert names, f"{name} has no public classes or functions"
    missing = [n for n, obj in names if ">>> " not in (obj.__doc__ or "")]
    assert missing == [], f"{name}: no docstring with a runnable Example: {missing}"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the examples' tempfile.mkdtemp() folders go here
    owned, docs = _owners()
    finder = doctest.DocTestFinder()
    # module docstrings, then each owned object (a class with its methods), each in a fresh namespace
    tests = [t for module in docs[name] for t in doctest.DocTestFinder(recurse=False).find(module, globs={})
             if t.examples]
    for obj in owned[name]:
        home = sys.modules[obj.__module__]  # found as part of its defining module; run in an empty namespace
        tests += [t for t in finder.find(obj, f"{obj.__module__}.{obj.__qualname__}", module=home, globs={})
                  if t.examples]
    if not tests:
        assert not owned[name], f"{name} has no examples"
        pytest.skip(f"{name}: its public names are re-exported from a module listed earlier; their examples run there")
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples under {name} failed (above)"
