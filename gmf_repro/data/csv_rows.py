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
    try:
        data = path.read_bytes()
    except OSError as err:
        fix = "give the user running this read access (e.g. chmod u+r)" if isinstance(err, PermissionError) \
            else "check data.root and the list file's name"
        raise UserError(f"cannot read {path}: {err.strerror or err}; {fix}") from None
    text = _decode(path, data)
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = []
    try:
        for fields in reader:
            if fields and "".join(fields).strip():
                rows.append((reader.line_num, fields))
    except csv.Error as exc:
        raise UserError(f"{path}:{reader.line_num}: not readable as CSV ({exc})") from None
    return rows


def _decode(path: Path, data: bytes) -> str:
    """UTF-8 text (a byte-order mark dropped); else ``file:line`` of the first bad byte, its column, the encoding
    the file most likely has, and how to convert it. The bytes themselves are never printed."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UserError(f"{path}:1: the file is UTF-16 text (as Excel's 'Unicode Text' saves it), not UTF-8; save "
                        f"it as 'CSV UTF-8', or convert it: iconv -f UTF-16 -t UTF-8 {path.name} > utf8.csv")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        encoding = "CP1252" if _decodes(data, "cp1252") else "LATIN1"  # Windows-1252 is Latin-1 and more
        raise UserError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}) at column {column}; the file "
                        f"looks {'Windows-1252 / Latin-1' if encoding == 'CP1252' else 'Latin-1'} encoded: save it "
                        f"as UTF-8, e.g. iconv -f {encoding} -t UTF-8 {path.name} > utf8.csv") from None


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True
