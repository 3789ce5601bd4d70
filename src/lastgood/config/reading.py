"""Reading a runbook file with limits, so that no file can hang lastgood or crash it with a traceback.

A file is read as at most MAX_BYTES of UTF-8, and parsed by a safe YAML loader that refuses nesting deeper than
MAX_DEPTH, anchors and aliases that expand to more than MAX_NODES values (the "billion laughs"), aliases that
refer to themselves, and numbers longer than MAX_DIGITS (Python refuses to convert very long integers, and a
float from a huge integer overflows). Each refusal is a ConfigError naming the line and the limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from lastgood.errors import ConfigError

MAX_BYTES = 2 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 100_000
MAX_DIGITS = 40
_BRACKETS = 512


class LimitExceeded(yaml.YAMLError):
    def __init__(self, problem: str, node_or_mark: Any = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = getattr(node_or_mark, "start_mark", node_or_mark)


def read_text(file: Path) -> str:
    """The file's text: at most MAX_BYTES (a device such as /dev/zero is cut off, not read forever), UTF-8."""
    try:
        with file.open("rb") as stream:
            data = stream.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError([f"no runbook file at {file} (pass --file, or set LASTGOOD_FILE)"]) from None
    except OSError as error:
        raise ConfigError([f"cannot read {file}: {error.strerror or error}"]) from None
    if len(data) > MAX_BYTES:
        raise ConfigError([f"the file is larger than {MAX_BYTES // 1024 // 1024} MiB: not a runbook"], str(file))
    return decode(data, str(file))


def decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        byte = data[error.start : error.start + 1].hex()
        problem = f"line {line}, column {column}: not UTF-8 text (byte 0x{byte}); save the file as UTF-8"
        raise ConfigError([problem], source) from None


def load_yaml(text: str) -> Any:
    """The document, parsed within the limits above; a yaml.YAMLError (with a mark where known) otherwise."""
    if len(text) > MAX_BYTES:
        raise LimitExceeded(f"the text is longer than {MAX_BYTES // 1024 // 1024} MiB: not a runbook")
    _refuse_deep_brackets(text)
    return parse_with(_Loader, text)


def parse_with(loader_class: type[_PythonLoader] | type[_CLoader], text: str) -> Any:
    """The document as one loader class reads it (the limits of the composed nodes and the constructor included)."""
    loader = loader_class(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _refuse_deep_brackets(text: str) -> None:
    """PyYAML's scanner is quadratic in the depth of `[[[...`: 5,000 levels take seconds before the composer's
    depth check is reached. Counting brackets (quotes and all: a rough count, hence a generous bound) is linear."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(depth - 1, 0)
    if deepest > _BRACKETS:
        raise LimitExceeded(f"nested deeper than {MAX_DEPTH} levels ({deepest} brackets open at once)")


class _LimitedConstructor(yaml.constructor.SafeConstructor):
    """The safe constructor, refusing over-long numbers and naming a bad date."""

    def construct_yaml_int(self, node: ScalarNode) -> Any:
        return super().construct_yaml_int(_short_number(node))

    def construct_yaml_float(self, node: ScalarNode) -> Any:
        return super().construct_yaml_float(_short_number(node))

    def construct_yaml_timestamp(self, node: ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as error:
            raise ConstructorError(None, None, f"not a valid date or time: {error}", node.start_mark) from None


_LimitedConstructor.yaml_constructors = {
    **yaml.constructor.SafeConstructor.yaml_constructors,
    "tag:yaml.org,2002:int": _LimitedConstructor.construct_yaml_int,
    "tag:yaml.org,2002:float": _LimitedConstructor.construct_yaml_float,
    "tag:yaml.org,2002:timestamp": _LimitedConstructor.construct_yaml_timestamp,
}


def _checked(node: Node | None) -> Node | None:
    """The composed document, once its depth and its expansion are known to be within the limits."""
    if node is not None:
        _refuse_deep_nodes(node)
        _expanded_size(node, {}, set())
    return node


class _PythonLoader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    _LimitedConstructor,
    yaml.resolver.Resolver,
):
    """PyYAML's pure-Python loader, for an installation without libyaml."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _LimitedConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)

    def get_single_node(self) -> Node | None:
        return _checked(super().get_single_node())


if getattr(yaml, "__with_libyaml__", False):
    from yaml._yaml import CParser

    class _CLoader(CParser, _LimitedConstructor, yaml.resolver.Resolver):
        """libyaml's parser and composer (a runbook parses ~10x faster than in Python), the limited constructor."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _LimitedConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

        def get_single_node(self) -> Node | None:
            return _checked(super().get_single_node())

    _Loader: type[_PythonLoader] | type[_CLoader] = _CLoader
else:
    _Loader = _PythonLoader


def _short_number(node: ScalarNode) -> ScalarNode:
    if len(str(node.value)) > MAX_DIGITS:
        raise LimitExceeded(f"a number longer than {MAX_DIGITS} characters (quote it if it is text)", node)
    return node


def _refuse_deep_nodes(root: Node) -> None:
    """The nesting as written: each node at the depth of its first appearance (where its anchor is), visited in
    document order without recursion, before anything recurses into the document."""
    pending: list[tuple[Node, int]] = [(root, 1)]
    seen: set[int] = set()
    while pending:
        node, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise LimitExceeded(f"nested deeper than {MAX_DEPTH} levels", node)
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            pending.extend((child, depth + 1) for child in reversed(node.value))
        elif isinstance(node, MappingNode):
            pending.extend((part, depth + 1) for pair in reversed(node.value) for part in reversed(pair))


def _expanded_size(node: Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """How many values `node` stands for once every alias is expanded; refuses more than MAX_NODES."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise LimitExceeded("an alias refers to the value that contains it", node)
    open_nodes.add(key)
    children: list[Node] = []
    if isinstance(node, SequenceNode):
        children = list(node.value)
    elif isinstance(node, MappingNode):
        children = [part for pair in node.value for part in pair]
    size = 1 + sum(_expanded_size(child, sizes, open_nodes) for child in children)
    open_nodes.discard(key)
    if size > MAX_NODES:
        raise LimitExceeded(f"anchors and aliases expand to more than {MAX_NODES:,} values", node)
    sizes[key] = size
    return size
