"""YAML for specs and scenarios: PyYAML's safe loader, refusing duplicate mapping keys.

PyYAML silently keeps the last of two equal keys (a second ``phases:`` replaces the first);
YAML 1.2 says keys must be unique, and a spec with two ``phases`` is a mistake to report, not
to guess at. PyYAML has no switch for it, so the safe loader's mapping constructor is wrapped
here (a second YAML library with different 1.1/1.2 semantics for one check would be worse).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node

# Deepest nesting of collections a document may have. PyYAML composes recursively: about 500
# levels ("[[[[…") raise RecursionError (a traceback, not a YAMLError) and 5,000 levels took a
# minute first. A spec or scenario is a few levels deep.
MAX_DEPTH = 64


class DuplicateKeyError(ConstructorError):
    """A mapping names the same key twice; the message gives both lines."""


class StrictSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that raises ``DuplicateKeyError`` on a repeated mapping key and a
    ``ComposerError`` on collections nested deeper than ``MAX_DEPTH``."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: object) -> Node | None:
        if self._depth >= MAX_DEPTH:
            raise ComposerError(
                None, None, f"nested deeper than {MAX_DEPTH} levels: flatten the document",
                self.peek_event().start_mark,  # type: ignore[no-untyped-call]
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[no-untyped-call,no-any-return]
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: the base constructor reports it
            line = key_node.start_mark.line + 1
            if first is not None:
                raise DuplicateKeyError(
                    None, None,
                    f"duplicate key {key!r} (first on line {first}, again on line {line}); "
                    "YAML keeps only one of them: merge them into one",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """Parse one YAML document; ``yaml.YAMLError`` (incl. ``DuplicateKeyError``) on bad input."""
    return yaml.load(text, Loader=StrictSafeLoader)  # a SafeLoader subclass: safe
