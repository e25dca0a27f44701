"""Every public class and function of ``ember.losses`` has a docstring with a runnable Example, and the
examples give the values they print (doctest)."""
import doctest
import inspect

import pytest

import ember
from ember import _cache
from ember.zoo import download

LOSSES = ember.losses


def public(module):
    return [(name, obj) for name, obj in vars(module).items()
            if not name.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj))
            and obj.__module__ == module.__name__]


def test_every_public_loss_has_a_docstring_with_an_example():
    names = dict(public(LOSSES))
    assert {"Loss", "get", "SparseCategoricalCrossentropy", "hinge", "huber"} <= set(names)
    missing = [name for name, obj in names.items() if ">>> " not in (inspect.getdoc(obj) or "")]
    assert missing == [], f"no docstring with a runnable Example: {missing}"


@pytest.mark.parametrize("module", [LOSSES, download, _cache], ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    tests = [t for t in doctest.DocTestFinder().find(module) if t.examples]
    assert tests, f"{module.__name__} has no examples"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {module.__name__} failed (above)"
