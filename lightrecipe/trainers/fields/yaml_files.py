"""The one YAML reader for recipe and space files: PyYAML's SafeLoader with two changes. A duplicate key anywhere
is an error naming both lines (a second `temperature:` would otherwise silently replace the first), and `1e-4`
reads as a number (YAML 1.1 wants `1.0e-4`, which nobody writes).
"""

from __future__ import annotations

import re

import yaml

from lightrecipe.errors import UserError


class DuplicateKeyError(yaml.YAMLError):
    pass


class StrictLoader(yaml.SafeLoader):
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


StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    lambda loader, node: loader.construct_mapping(node, deep=True),
)
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str, source: str) -> object:
    """The YAML (or JSON) `text` as plain data; a mistake in it is a UserError that starts with `source`."""
    loader = StrictLoader(text)  # a SafeLoader: plain data only, never Python objects
    try:
        return loader.get_single_data()
    except DuplicateKeyError as exc:
        raise UserError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{source}: not valid YAML: {' '.join(str(exc).split())}") from None
    finally:
        loader.dispose()
