"""Listing image files: an unlabeled tree of any depth, and the fingerprint that tells whether a source changed.

An unlabeled tree is every jpg, jpeg, png or webp file under the root at any depth; names starting with '.'
(files and folders: .DS_Store, .git, .thumbnails) and every other file (notes, CSVs, videos) are left out. The
listing walks with `os.scandir`, whose entries carry each name's type, so only the stat of an image (for the
fingerprint) costs a system call of its own (benchmarks/bench_listing.py times 100,000 files).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from lightrecipe.errors import UserError

UNLABELED_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")  # issue 20: the formats photos of a domain come in
UNLABELED_LAYOUT = "expected a folder with jpg, jpeg, png or webp images at any depth"


def list_tree(root: Path) -> list[str]:
    """Sorted absolute paths of the images under `root` (any depth); UserError if there is none."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"data_root '{root}' {'is not a folder' if root.exists() else 'does not exist'}; "
                        f"{UNLABELED_LAYOUT}")
    found: list[str] = []
    todo = [str(root)]
    while todo:
        folder = todo.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise UserError(f"cannot list '{folder}': {exc.strerror or exc}") from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                todo.append(entry.path)
            elif entry.is_file() and entry.name.lower().endswith(UNLABELED_EXTENSIONS):
                found.append(entry.path)
    if not found:
        raise UserError(f"data_root '{root}' holds no images; {UNLABELED_LAYOUT}")
    return sorted(found)


def stats(paths: list[str]) -> list[tuple[int, int]]:
    """(size in bytes, modification time in ns) of each path."""
    out = []
    for path in paths:
        st = os.stat(path)
        out.append((st.st_size, st.st_mtime_ns))
    return out


def relative(root: Path, paths: list[str]) -> list[str]:
    """`paths` (listed under `root`, so they start with it) relative to `root`: a slice, not os.path.relpath,
    which costs ~10 us a path (a second per 100,000)."""
    cut = len(os.path.join(str(root), ""))
    return [p[cut:] for p in paths]


def fingerprint(root: Path, paths: list[str], file_stats: list[tuple[int, int]]) -> str:
    """One hash of the file list (relative to `root`), sizes and modification times."""
    digest = hashlib.sha256()
    for rel, (size, mtime) in zip(relative(root, paths), file_stats):
        digest.update(f"{rel}\0{size}\0{mtime}\n".encode())
    return digest.hexdigest()


def describe_change(root: Path, old: dict[str, tuple[int, int]], paths: list[str],
                    file_stats: list[tuple[int, int]]) -> str:
    """What changed between two listings, e.g. '2 added (e.g. a/b.jpg), 1 modified (e.g. c.png)'."""
    new = {rel: tuple(s) for rel, s in zip(relative(root, paths), file_stats)}
    parts = []
    for word, names in (("added", sorted(set(new) - set(old))), ("removed", sorted(set(old) - set(new))),
                        ("modified", sorted(n for n in set(new) & set(old) if tuple(old[n]) != new[n]))):
        if names:
            parts.append(f"{len(names)} {word} (e.g. {names[0]})")
    return ", ".join(parts) or "nothing"
