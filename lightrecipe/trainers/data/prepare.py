"""Writing a prepared cache (`lightrecipe prepare SRC --out CACHE --size S`); cache.py reads it.

Each image of an ImageNet-layout folder or an unlabeled tree is decoded once (JPEGs at the largest DCT
reduction that keeps the shorter side >= S) and resized so its shorter side is S. Everything is written into
`CACHE.partial` beside the target and renamed into place at the end, so an interrupted prepare leaves no
half cache (the next run starts the partial folder afresh). A complete cache of the same source (same file
list, sizes and modification times), kind, size and format version is reused as it is; otherwise the reason
is named and the cache written again. Unreadable files are skipped, named and counted as the folder loader
does, and more than 1% of them is an error.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from lightrecipe.errors import UserError
from lightrecipe.trainers.data import cache as fmt
from lightrecipe.trainers.data import tree
from lightrecipe.trainers.data.image_folder import MAX_UNREADABLE_SHARE, scan_classes
from lightrecipe.trainers.fields.valid_values import BOUNDS

DECODE_CHUNK = 16  # images per task sent to a decoding process: amortises the pickling of small results


def detect_kind(src: Path) -> str:
    """imagefolder when SRC has train/ and val/ folders (the ImageNet layout), else an unlabeled tree."""
    return "imagefolder" if (src / "train").is_dir() and (src / "val").is_dir() else "unlabeled"


def list_source(src: Path, kind: str) -> dict:
    """The source's files in the order the loaders use, with labels, parts, sizes and mtimes."""
    if kind == "imagefolder":
        classes, train, train_labels = scan_classes(src / "train", field="SRC")
        _, val, val_labels = scan_classes(src / "val", classes, field="SRC")
        paths, labels = train + val, train_labels + val_labels
        parts = [fmt.TRAIN_PART] * len(train) + [fmt.VAL_PART] * len(val)
    else:
        classes, paths = [], tree.list_tree(src)
        labels, parts = [0] * len(paths), [fmt.TRAIN_PART] * len(paths)
    stats = tree.stats(paths)
    return {"classes": classes, "paths": paths, "labels": labels, "parts": parts, "stats": stats,
            "fingerprint": tree.fingerprint(src, paths, stats)}


def prepare(src: str | Path, out: str | Path, size: int, kind: str | None = None, workers: int | None = None,
            say=print) -> dict:
    """Write (or reuse) the cache of `src` at `out`; returns the manifest (with `reused` and `seconds`)."""
    low, high = BOUNDS["image_size"]
    if not low <= size <= high:
        raise UserError(f"--size {size} is outside what a recipe's image_size takes; valid: {low:.0f}..{high:.0f}")
    src, out = Path(src).expanduser().resolve(), Path(out).expanduser().resolve()
    if not src.is_dir():
        raise UserError(f"source '{src}' {'is not a folder' if src.exists() else 'does not exist'}; expected an "
                        "ImageNet-layout folder (train/<class>/, val/<class>/) or a tree of images")
    if out == src or src in out.parents:
        raise UserError(f"--out '{out}' lies inside the source '{src}'; write the cache elsewhere")
    kind = kind or detect_kind(src)
    started = time.perf_counter()
    listing = list_source(src, kind)
    listed = time.perf_counter() - started
    why = reason_to_write(out, src, kind, size, listing)
    if why is None:
        manifest = fmt.read_manifest(out)
        say(f"reusing the complete cache '{out}' ({manifest['images']} images of '{src}' at {size} px)")
        return {**manifest, "reused": True, "seconds": time.perf_counter() - started}
    if why:
        say(f"cache '{out}': {why}; preparing it again")
    manifest = write_cache(src, out, size, kind, listing, workers or len(os.sched_getaffinity(0)))
    manifest.update(reused=False, seconds=time.perf_counter() - started, list_seconds=listed)
    say(f"prepared {manifest['images']} images ({manifest['bytes'] / 1e6:.1f} MB) in {manifest['seconds']:.1f} s; "
        f"{len(manifest['skipped'])} skipped as unreadable: {out}")
    return manifest


def reason_to_write(out: Path, src: Path, kind: str, size: int, listing: dict) -> str | None:
    """None: a complete cache of exactly this is at `out`; '' when nothing is there; else what differs."""
    if not out.exists():
        return ""
    if not fmt.is_cache(out):
        raise UserError(f"--out '{out}' exists and is not a lightrecipe cache (no {fmt.CACHE_FILE}); move it or "
                        "pick another --out")
    try:
        manifest = fmt.read_manifest(out)
    except UserError:
        return "written by another format version"
    if manifest.get("source") != str(src) or manifest.get("kind") != kind:
        return f"it holds {manifest.get('kind')} source '{manifest.get('source')}', not {kind} '{src}'"
    if int(manifest.get("size", -1)) != size:
        return f"it is at {manifest.get('size')} px, not {size}"
    if manifest.get("fingerprint") != listing["fingerprint"]:
        with np.load(out / fmt.INDEX_FILE, allow_pickle=False) as npz:
            old = {p: (int(s), int(m)) for p, s, m in zip(npz["files"], npz["file_sizes"], npz["file_mtimes"])}
        return f"the source changed since it was written: {tree.describe_change(src, old, listing['paths'], listing['stats'])}"
    return None


def write_cache(src: Path, out: Path, size: int, kind: str, listing: dict, workers: int) -> dict:
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # what an interrupted prepare left
    partial.mkdir(parents=True)
    try:
        stored, skipped = decode_all(listing["paths"], size, partial / fmt.PIXELS_FILE, workers)
        check_unreadable(skipped, len(listing["paths"]))
        manifest = write_index(src, partial, size, kind, listing, stored, skipped)
        replace_folder(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return manifest


def decode_all(paths: list[str], size: int, pixels: Path, workers: int):
    """Decode every path in `workers` processes into `pixels`: ({position: (offset, h, w)}, [(path, error)])."""
    from tqdm import tqdm

    stored, skipped, offset = {}, [], 0
    with open(pixels, "wb") as fh, decoded(paths, size, workers) as results, \
            tqdm(total=len(paths), unit="img", file=sys.stderr, dynamic_ncols=True, desc="prepare") as bar:
        for i, array, error in results:
            bar.update(1)
            if array is None:
                skipped.append((paths[i], error))
                print(f"skipping unreadable image '{paths[i]}' ({error})", file=sys.stderr)
                continue
            fh.write(array.tobytes())
            stored[i] = (offset, array.shape[0], array.shape[1])
            offset += array.size
    return stored, skipped


@contextlib.contextmanager
def decoded(paths: list[str], size: int, workers: int):
    """(position, array or None, error) of each path in order: in this process for one worker, else a pool."""
    jobs = [(i, p, size) for i, p in enumerate(paths)]
    if workers <= 1:
        yield map(decode_short, jobs)
        return
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with context.Pool(workers) as pool:
        yield pool.imap(decode_short, jobs, chunksize=DECODE_CHUNK)


def decode_short(job):
    """(position, uint8 H x W x 3 with shorter side S, '') or (position, None, error text)."""
    from PIL import Image

    from lightrecipe.trainers.data.image_decode import decode_errors

    i, path, size = job
    try:
        with Image.open(path) as img:
            img.draft("RGB", (size, size))  # JPEG: decode at the largest reduction keeping both sides >= size
            img = img.convert("RGB")
            w, h = img.size
            scale = size / min(w, h)
            nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
            if (nw, nh) != (w, h):
                img = img.resize((nw, nh), Image.BILINEAR)  # antialiased when shrinking, as torchvision's Resize
            return i, np.asarray(img, dtype=np.uint8), ""
    except decode_errors() as exc:
        return i, None, str(exc)


def check_unreadable(skipped: list, total: int) -> None:
    if len(skipped) > MAX_UNREADABLE_SHARE * total:
        path, error = skipped[0]
        raise UserError(f"{len(skipped)} of {total} image files cannot be read (more than "
                        f"{MAX_UNREADABLE_SHARE:.0%}), e.g. '{path}' ({error}); no cache was written")


def write_index(src: Path, folder: Path, size: int, kind: str, listing: dict, stored: dict, skipped: list) -> dict:
    keep = sorted(stored)
    rel = tree.relative(src, listing["paths"])
    np.savez(folder / fmt.INDEX_FILE,
             offsets=np.array([stored[i][0] for i in keep], dtype=np.int64),
             heights=np.array([stored[i][1] for i in keep], dtype=np.int32),
             widths=np.array([stored[i][2] for i in keep], dtype=np.int32),
             labels=np.array([listing["labels"][i] for i in keep], dtype=np.int64),
             parts=np.array([listing["parts"][i] for i in keep], dtype=np.int8),
             paths=np.array([rel[i] for i in keep], dtype=str),
             files=np.array(rel, dtype=str),
             file_sizes=np.array([s for s, _ in listing["stats"]], dtype=np.int64),
             file_mtimes=np.array([m for _, m in listing["stats"]], dtype=np.int64))
    manifest = {"version": fmt.CACHE_VERSION, "what": "a lightrecipe prepared cache: give it as data_root",
                "kind": kind, "source": str(src), "size": size, "images": len(keep),
                "bytes": int((folder / fmt.PIXELS_FILE).stat().st_size), "classes": listing["classes"],
                "skipped": [os.path.relpath(p, src) for p, _ in skipped], "fingerprint": listing["fingerprint"]}
    (folder / fmt.CACHE_FILE).write_text(json.dumps(manifest, indent=1))
    return manifest


def replace_folder(partial: Path, out: Path) -> None:
    """`partial` becomes `out`; an old cache there is moved aside first and removed after."""
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        os.replace(out, old)
    os.replace(partial, out)
    shutil.rmtree(old, ignore_errors=True)
