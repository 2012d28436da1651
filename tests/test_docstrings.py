"""Every example in labkit's docstrings runs and prints what it says (the docs are tested like the code)."""

import doctest
import importlib
import pkgutil

import pytest

import labkit

MODULES = sorted(m.name for m in pkgutil.walk_packages(labkit.__path__, "labkit.") if m.name != "labkit.__main__")


def test_modules_are_found():
    assert {"labkit.estimate", "labkit.compress.report", "labkit.compile.ort"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples failed in {name}"
