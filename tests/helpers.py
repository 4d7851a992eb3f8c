"""What several test modules share: small builders of test files, and the size notes."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import numpy as np

# Not limits: a module past this many lines, or a function past FUNCTION_NOTE_LINES, is listed in
# the test run's summary as worth a look.
MODULE_NOTE_LINES = 400
FUNCTION_NOTE_LINES = 80


def large_rooms(paths, root: Path) -> list[str]:
    """'path: N lines' for each module past MODULE_NOTE_LINES, 'path: f() N lines' for each long function."""
    notes = []
    for path in paths:
        text = Path(path).read_text(encoding="utf-8")
        name = str(Path(path).relative_to(root))
        if text.count("\n") > MODULE_NOTE_LINES:
            notes.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > FUNCTION_NOTE_LINES:
                    notes.append(f"{name}: {node.name}() {length} lines")
    return notes


def has_mnist() -> bool:
    """The real MNIST files are where the tests look: $TINYVAE_DATA/mnist (conftest.py sets it)."""
    root = os.environ.get("TINYVAE_DATA")
    return bool(root) and Path(root, "mnist").is_dir()


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file's bytes (the MNIST format): magic (0, 0, 0x08 for uint8, ndim), the sizes, the data."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.tobytes()
