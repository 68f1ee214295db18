"""Listing + indexing a big unlabeled tree: what `lightrecipe prepare` does before it decodes anything.

Generates a tree of small files (default 100,000 one-pixel PNGs, 100 per folder, two levels deep, plus a text
file per folder) under the temp folder, then times, median of several runs: listing (os.scandir walk, image
extensions only), a stat per image (size, mtime), the fingerprint, and writing the index (relative paths,
sizes, mtimes as an uncompressed .npz, as prepare stores it beside the cache). The tree is deleted at the end.
Issue 20's target: under 10 s for 100,000 files.

    .venv/bin/python benchmarks/bench_listing.py [--files 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from lightrecipe.trainers.data.prepare import list_source
from lightrecipe.trainers.data.tree import relative

PER_FOLDER = 100  # files per leaf folder


def make_tree(root: Path, files: int) -> None:
    """`files` one-pixel PNGs, PER_FOLDER a folder, 100 folders a group, and a note beside each folder's images."""
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, format="PNG")
    png = buf.getvalue()
    for i in range(files):
        folder = root / f"{i // (PER_FOLDER * 100):03d}" / f"{i // PER_FOLDER:05d}"
        if i % PER_FOLDER == 0:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "notes.txt").write_text("not an image")
        (folder / f"{i:07d}.png").write_bytes(png)


def list_and_index(root: Path, out: Path) -> tuple[float, int]:
    """Seconds to list, stat, fingerprint and write the index of `root`, and how many images it found."""
    started = time.perf_counter()
    listing = list_source(root, "unlabeled")
    rel = relative(root, listing["paths"])
    np.savez(out, files=np.array(rel, dtype=str),
             file_sizes=np.array([s for s, _ in listing["stats"]], dtype=np.int64),
             file_mtimes=np.array([m for _, m in listing["stats"]], dtype=np.int64))
    return time.perf_counter() - started, len(rel)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lightrecipe-bench-listing-"))
    try:
        started = time.perf_counter()
        make_tree(work / "tree", args.files)
        print(f"generated {args.files} files in {time.perf_counter() - started:.1f} s under {work}")
        runs = [list_and_index(work / "tree", work / "index.npz") for _ in range(args.repeats)]
        seconds = [s for s, _ in runs]
        print(f"listed + indexed {runs[0][1]} images: median {statistics.median(seconds):.2f} s "
              f"(min {min(seconds):.2f}, max {max(seconds):.2f}) of {args.repeats} runs; target < 10 s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
