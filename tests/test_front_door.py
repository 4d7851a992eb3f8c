"""`import tinyvae` is the front door: its docstring's example runs, the README's Python quick start
runs, and every name of __all__ is there with type hints on its signature."""

from __future__ import annotations

import doctest
import inspect
import re
from pathlib import Path

import tinyvae

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_docstring_example_runs():
    result = doctest.testmod(tinyvae, verbose=False)
    assert result.attempted >= 5 and result.failed == 0


def test_the_readme_python_quick_starts_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    # those with runs/ need a trained run's files
    runnable = [block for block in blocks if "runs/" not in block]
    assert runnable, "the README shows no Python quick start"
    for block in runnable:
        exec(compile(block, "README.md", "exec"), {})


def test_every_public_name_exists_and_its_signature_has_type_hints():
    missing_hints = []
    for name in tinyvae.__all__:
        obj = getattr(tinyvae, name)
        if inspect.isfunction(obj):
            signature = inspect.signature(obj)
            unannotated = [p for p in signature.parameters.values()
                           if p.annotation is inspect.Parameter.empty
                           and p.kind is not p.VAR_KEYWORD]
            if unannotated or signature.return_annotation is inspect.Signature.empty:
                missing_hints.append(name)
    assert not missing_hints, f"public functions without full type hints: {missing_hints}"
