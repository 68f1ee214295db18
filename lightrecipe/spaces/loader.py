"""Spaces from YAML: the built-ins shipped in `builtin/` and user files, read by the same strict YAML reader as
recipe files (trainers/yaml_files.py: duplicate keys are errors, 1e-4 is a number).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from lightrecipe.errors import UserError, nearest
from lightrecipe.spaces.space import Space
from lightrecipe.trainers.fields.yaml_files import parse_yaml

BUILTIN_PACKAGE = "lightrecipe.spaces"
BUILTIN_DIR = "builtin"


def _builtin_root():
    return resources.files(BUILTIN_PACKAGE) / BUILTIN_DIR


def list_spaces() -> list[str]:
    """Names of the spaces shipped with lightrecipe, sorted."""
    return sorted(p.name[: -len(".yaml")] for p in _builtin_root().iterdir() if p.name.endswith(".yaml"))


def space_text(name_or_path: str) -> tuple[str, str]:
    """(YAML text, source label) of a built-in name or a file path; UserError when neither exists."""
    if name_or_path in list_spaces():
        return (_builtin_root() / f"{name_or_path}.yaml").read_text(), f"built-in space '{name_or_path}'"
    path = Path(name_or_path)
    if path.is_file():
        try:
            return path.read_text(), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"{path}: cannot read the file: {exc}") from None
    if path.suffix in (".yaml", ".yml", ".json") or "/" in name_or_path:
        raise UserError(f"space file '{name_or_path}' does not exist")
    names = list_spaces()
    raise UserError(
        f"unknown space '{name_or_path}'{nearest(name_or_path, names)}; valid built-ins: {', '.join(names)}, "
        "or the path of a YAML file"
    )


def load_space(name_or_path: str) -> Space:
    """A validated Space from a built-in name or a YAML file path."""
    text, source = space_text(name_or_path)
    return Space.from_dict(parse_yaml(text, source), source=source)


__all__ = ["list_spaces", "load_space", "space_text"]
