"""The domain vocabulary stays a pure home: it imports nothing else from the gateway."""

from __future__ import annotations

import ast
from pathlib import Path

import gateway.vocabulary as vocabulary
from gateway.vocabulary import REASON_OF, UNDO_OF, Operation


def test_the_vocabulary_imports_nothing_from_the_gateway() -> None:
    tree = ast.parse(Path(vocabulary.__file__).read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not {name for name in imported if name and name.startswith("gateway")}


def test_every_undo_reverts_a_set_operation_with_a_reason() -> None:
    for undo, done in UNDO_OF.items():
        assert undo.is_undo and undo.changes_state and not done.is_undo
        assert undo.reason == done.reason == REASON_OF[done]
    assert not Operation.VERIFY.changes_state and Operation.VERIFY.reason is None
