"""CLI subcommands of lightrecipe.spaces (filled in by its issue)."""

from __future__ import annotations


def register(subparsers) -> None:
    """Add this part's subcommands to the `lightrecipe` parser."""
