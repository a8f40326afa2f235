"""The Examples sections of the public docstrings run and show what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "daskgrad.gradient",
    "daskgrad.spacing",
    "daskgrad.kernels",
    "daskgrad.halo",
    "daskgrad._compat",
    "daskgrad.store",
    "daskgrad.demo",
    "daskgrad.config",
    "daskgrad.paths",
    "daskgrad.provenance",
    "daskgrad.lease",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0


def test_readme_examples():
    from pathlib import Path

    readme = Path(__file__).resolve().parent.parent / "README.md"
    result = doctest.testfile(str(readme), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 8
    assert result.failed == 0
