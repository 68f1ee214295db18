"""A W&B offline run read back from its folder, with no network and no account.

wandb 0.31 ships no reader for a run's `.wandb` file (its older Python `datastore` is gone; `wandb sync` replays
it to a server). The file is a LevelDB-style log of wandb's own `Record` protobufs: a 7-byte file header, then
32 KiB blocks of chunks, each with a 7-byte header (CRC, little-endian length, type). This walks that framing
and lets wandb's protobuf classes parse every record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILE_HEADER = 7  # ":W&B", a 2-byte magic, a version byte
BLOCK = 32 * 1024  # LevelDB's log block; the file header counts towards the first block
CHUNK_HEADER = 7  # CRC-32C (4 bytes), length (2, little-endian), type (1)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4  # LevelDB's chunk types


def records(path: Path) -> list[Any]:
    """Every record of one `.wandb` file, in order."""
    from wandb.proto.wandb_internal_pb2 import Record

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", path
    out, pending, pos = [], b"", FILE_HEADER
    while pos + CHUNK_HEADER <= len(data):
        room = BLOCK - pos % BLOCK
        if room < CHUNK_HEADER:  # a block's tail too short for a chunk header is padding
            pos += room
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        payload = data[pos + CHUNK_HEADER:pos + CHUNK_HEADER + length]
        pos += CHUNK_HEADER + length
        if kind not in (FULL, FIRST, MIDDLE, LAST):
            break  # zero padding at the end of a file still being written
        pending = payload if kind in (FULL, FIRST) else pending + payload
        if kind in (FULL, LAST):
            record = Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


@dataclass
class OfflineRun:
    folder: Path
    project: str = ""
    group: str = ""
    name: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)  # key -> value as logged (JSON-decoded)
    history: dict[str, dict[int, float]] = field(default_factory=dict)  # metric -> step -> value
    summary: dict[str, Any] = field(default_factory=dict)
    artifacts: list[Any] = field(default_factory=list)  # ArtifactRecord protobufs
    exit_code: int | None = None


def read_run(wandb_file: Path) -> OfflineRun:
    run = OfflineRun(Path(wandb_file).parent)
    for record in records(wandb_file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.project, run.group, run.name, run.tags = r.project, r.run_group, r.display_name, list(r.tags)
            _config(run, r.config.update)
        elif kind == "config":
            _config(run, record.config.update)
        elif kind == "history":
            step = record.history.step.num
            for item in record.history.item:
                key = item.key or "/".join(item.nested_key)
                run.history.setdefault(key, {})[step] = json.loads(item.value_json)
        elif kind == "summary":
            for item in record.summary.update:
                run.summary[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
        elif kind == "artifact":
            run.artifacts.append(record.artifact)
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    return run


def _config(run: OfflineRun, items: Any) -> None:
    for item in items:
        run.config[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)


def read_runs(folder: Path) -> list[OfflineRun]:
    """Every offline run under `folder` (W&B writes each to wandb/offline-run-<time>-<id>/run-<id>.wandb)."""
    return [read_run(p) for p in sorted(Path(folder).rglob("offline-run-*/run-*.wandb"))]


def offline(monkeypatch: Any, folder: Path) -> None:
    """W&B offline, its caches and settings in `folder`: no network call, no API key asked for. (A sweep's runs
    are written by Ray's logging actor, which keeps the environment Ray started with; the tracker passes the
    mode on to it.)"""
    monkeypatch.setenv("WANDB_MODE", "offline")
    for name in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(folder / name.lower()))
