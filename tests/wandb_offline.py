"""Read an offline W&B run from its .wandb file (a LevelDB-style log of protobuf records).

The offline log keeps what a dashboard shows: the run's group and job type, its config, every
history row, the summary and the exit code; media such as tables sit in the run's ``files/`` folder.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

BLOCK, HEADER = 32768, 7  # file header ":W&B" + magic + version, then 7-byte record headers


def records(path: Path):
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    pos, buf = HEADER, b""
    while pos + 7 <= len(data):
        room = BLOCK - pos % BLOCK
        if room < 7:  # block trailer padding
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        buf = chunk if kind in (1, 2) else buf + chunk  # FULL/FIRST start a record, MIDDLE/LAST extend it
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(buf)
            yield record


def _items(path: Path, kind: str, field: str) -> list[list[tuple[str, Any]]]:
    """Per record of ``kind``: its (key, value) items, nested keys joined with '/'."""
    out = []
    for record in records(path):
        if record.WhichOneof("record_type") == kind:
            items = getattr(getattr(record, kind), field)
            out.append([(item.key or "/".join(item.nested_key), json.loads(item.value_json)) for item in items])
    return out


def summary(path: Path) -> dict:
    return {k: v for items in _items(path, "summary", "update") for k, v in items}


def config(path: Path) -> dict:
    return {k: v for items in _items(path, "config", "update") for k, v in items}


def history(path: Path) -> list[dict]:
    """One dict per logged row; a media item's fields appear as ``key/field`` (e.g. ``report/x/path``)."""
    return [dict(items) for items in _items(path, "history", "item")]


def run_info(path: Path) -> dict:
    """Group, job type, name and exit code of the run."""
    info: dict[str, Any] = {}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            info.update(group=record.run.run_group, job_type=record.run.job_type, name=record.run.display_name)
        elif kind == "exit":
            info["exit_code"] = record.exit.exit_code
    return info


def table(path: Path, key: str) -> dict:
    """A ``wandb.Table`` logged under ``key``: ``{"columns": [...], "data": [[...], ...]}`` from the run's files."""
    for row in history(path):
        if f"{key}/path" in row:
            return json.loads((Path(path).parent / "files" / row[f"{key}/path"]).read_text())
    raise KeyError(f"no table '{key}' in {path}")
