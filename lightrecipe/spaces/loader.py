"""Spaces from YAML: the built-ins shipped in `builtin/` and user files.

The YAML loader is PyYAML's SafeLoader with two changes: a duplicate key anywhere is an error (a second
`temperature:` would otherwise silently replace the first), and `1e-4` reads as a number (YAML 1.1 wants
`1.0e-4`, which nobody writes).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import yaml

from lightrecipe.errors import UserError, nearest
from lightrecipe.spaces.space import Space

BUILTIN_PACKAGE = "lightrecipe.spaces"
BUILTIN_DIR = "builtin"


class DuplicateKeyError(yaml.YAMLError):
    pass


class SpaceLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys and reads 1e-4 as a float."""

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                continue  # SafeLoader reports unhashable keys itself
            if key in seen:
                raise DuplicateKeyError(
                    f"duplicate key '{key}' on line {key_node.start_mark.line + 1} "
                    f"(first on line {seen[key] + 1}); keep one"
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


SpaceLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    lambda loader, node: loader.construct_mapping(node, deep=True),
)
SpaceLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str, source: str) -> object:
    loader = SpaceLoader(text)  # a SafeLoader: plain data only, never Python objects
    try:
        return loader.get_single_data()
    except DuplicateKeyError as exc:
        raise UserError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{source}: not valid YAML: {' '.join(str(exc).split())}") from None
    finally:
        loader.dispose()


def _builtin_root():
    return resources.files(BUILTIN_PACKAGE) / BUILTIN_DIR


def builtin_space_names() -> list[str]:
    """Names of the spaces shipped with lightrecipe, sorted."""
    return sorted(p.name[: -len(".yaml")] for p in _builtin_root().iterdir() if p.name.endswith(".yaml"))


def space_text(name_or_path: str) -> tuple[str, str]:
    """(YAML text, source label) of a built-in name or a file path; UserError when neither exists."""
    if name_or_path in builtin_space_names():
        return (_builtin_root() / f"{name_or_path}.yaml").read_text(), f"built-in space '{name_or_path}'"
    path = Path(name_or_path)
    if path.is_file():
        try:
            return path.read_text(), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"{path}: cannot read the file: {exc}") from None
    if path.suffix in (".yaml", ".yml", ".json") or "/" in name_or_path:
        raise UserError(f"space file '{name_or_path}' does not exist")
    names = builtin_space_names()
    raise UserError(
        f"unknown space '{name_or_path}'{nearest(name_or_path, names)}; valid built-ins: {', '.join(names)}, "
        "or the path of a YAML file"
    )


def load_space(name_or_path: str) -> Space:
    """A validated Space from a built-in name or a YAML file path."""
    text, source = space_text(name_or_path)
    return Space.from_dict(parse_yaml(text, source), source=source)


__all__ = ["SpaceLoader", "builtin_space_names", "load_space", "parse_yaml", "space_text"]
