"""The one CSV reader of the data layer: every list file (vggsound.csv, FakeAVCeleb's meta_data.csv, your own
clips.csv) and the cache's per-shard clip tables go through ``read_csv_rows``.

Errors name ``file:line`` and never print the file's contents (a label may be private).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from ..errors import UserError


def read_csv_rows(path: str | Path) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` of every non-blank row of a UTF-8 CSV file (a byte-order mark is allowed);
    a header, if any, is the caller's to recognise. Fields come as written (not stripped)."""
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                        f"save the file as UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = []
    try:
        for fields in reader:
            if fields and "".join(fields).strip():
                rows.append((reader.line_num, fields))
    except csv.Error as exc:
        raise UserError(f"{path}:{reader.line_num}: not readable as CSV ({exc})") from None
    return rows
