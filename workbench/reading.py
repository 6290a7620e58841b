"""Reading a dataset source into a list of rows: bundled data, local files and folders, hub IDs.

Sources are `bundled:<name>/<split>`, a local .jsonl/.json/.csv/.parquet file or `save_to_disk` folder,
or a hub ID. Every problem is a `DataError` naming the file, the line or row, and the fix. The rows
are checked and converted for training in workbench.data.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from workbench import hub
from workbench.errors import DataError

BUNDLED_DIR = Path(__file__).parent / "bundled_data"
SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


class Records(list):
    """Rows of a JSON Lines file; `lines` holds each row's line number, for messages that name it."""

    lines: list[int] | None = None


def read_records(
    source: str, columns: dict | None = None, max_samples: int | None = None, key: str = "data.train"
) -> tuple[list[dict], str]:
    """Read `source` into a list of dicts, renaming the user's columns to ours; return (rows, name).

    `key` is the recipe key that names `source` (data.train or data.eval), for the messages.
    """
    path = _resolve(source, key)
    rows = _read_hub(source, max_samples, key) if path is None else _read_path(path, source, max_samples)
    if not rows:
        raise DataError(f"{source} has no rows; add at least one example")
    if max_samples is not None:
        del rows[max_samples:]
    for i, row in enumerate(rows):
        here = where(rows, i, source)
        if not isinstance(row, dict):
            raise DataError(f'{here}: a {type(row).__name__}, not an object {{"field": ...}}')
        rows[i] = _rename(row, columns or {}, here)
    return rows, source


def _resolve(source: str, key: str = "data.train") -> Path | None:
    """The local path `source` names, or None for a hub ID."""
    if source.startswith("bundled:"):
        path = BUNDLED_DIR / f"{source.removeprefix('bundled:')}.jsonl"
        if not path.is_file():
            found = sorted(f"bundled:{p.parent.name}/{p.stem}" for p in BUNDLED_DIR.glob("*/*.jsonl"))
            raise DataError(f"unknown bundled dataset '{source}'; available: {', '.join(found) or 'none'}")
        return path
    path = Path(source).expanduser()
    if path.exists():
        return path
    if path.suffix in SUFFIXES or not re.fullmatch(r"[\w-][\w.-]*/[\w.-]+", source):
        raise DataError(f"file not found: {source}; check {key} (relative paths start at {Path.cwd()})")
    return None


def is_hub(source: str) -> bool:
    """Does `source` name a hub dataset (not a bundled or local one)? Never goes online."""
    try:
        return _resolve(source) is None
    except DataError:
        return False


def local_path(source: str) -> Path | None:
    """The file or folder a bundled or local `source` names; None for a hub ID or a missing file."""
    try:
        return _resolve(source)
    except DataError:
        return None


def bundled_sources(split: str = "train") -> list[str]:
    """The bundled datasets of one split, as data.train / data.eval values."""
    return sorted(f"bundled:{p.parent.name}/{p.stem}" for p in BUNDLED_DIR.glob(f"*/*_{split}.jsonl"))


def _read_path(path: Path, name: str, limit: int | None) -> list[dict]:
    if path.is_dir():
        return _read_disk(path, name)
    if path.suffix == ".parquet":
        import pyarrow.parquet

        try:
            return pyarrow.parquet.read_table(path).to_pylist()  # plain lists, unlike pandas
        except pyarrow.ArrowException as error:
            raise DataError(f"{name}: not a readable Parquet file ({error}); write it again") from None
    readers = {".jsonl": _read_jsonl, ".json": _read_json, ".csv": _read_csv}
    if path.suffix not in readers:
        raise DataError(
            f"{name}: unsupported file type '{path.suffix}'; "
            "use .jsonl, .json, .csv, .parquet or a folder saved with Dataset.save_to_disk"
        )
    text = _decode(path.read_bytes(), name)
    if not text.strip():
        raise DataError(f"{name} is empty; write one example per line (JSON Lines) or per row")
    return readers[path.suffix](text, name, limit)


def _decode(raw: bytes, name: str) -> str:
    """The text of a file's bytes; a non-UTF-8 file (Latin-1, cp1252, ...) is an error naming its line."""
    try:
        return raw.decode("utf-8-sig")  # -sig: files saved by Windows tools start with a BOM
    except UnicodeDecodeError as error:
        data, at = error.object, error.start  # the bytes after any BOM, and the first bad one
        line = data.count(b"\n", 0, at) + 1
        start, end = data.rfind(b"\n", 0, at) + 1, data.find(b"\n", at) % (len(data) + 1)
        shown = data[start:end].decode("utf-8", errors="replace").strip()
        excel = " (Excel: Save As > CSV UTF-8)" if name.endswith(".csv") else ""
        raise DataError(
            f"{name} line {line}: not UTF-8 text (byte {data[at]:#04x} in {shown!r:.80}), probably Latin-1 "
            f"or Windows-1252; save the file as UTF-8{excel}"
        ) from None


def _read_jsonl(text: str, name: str, limit: int | None) -> Records:
    # JSON Lines rows are objects, so "[" starts a JSON array, pretty-printed or not.
    if text.lstrip().startswith("["):
        raise DataError(
            f"{name} is a JSON array, not JSON Lines: rename to .json or write one object per line"
        )
    rows = Records()
    rows.lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        if limit is not None and len(rows) >= limit:
            break
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise DataError(
                f"{name} line {number}: not valid JSON ({error.msg}, column {error.colno})"
            ) from None
        rows.lines.append(number)
    return rows


def _read_json(text: str, name: str, limit: int | None) -> list[dict]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        hint = "; it looks like JSON Lines: rename it to .jsonl" if error.msg == "Extra data" else ""
        raise DataError(f"{name}: not valid JSON ({error.msg} at line {error.lineno}){hint}") from None
    if not isinstance(data, list):
        raise DataError(f"{name}: expected a JSON array of objects, got a {type(data).__name__}")
    return data


def _read_csv(text: str, name: str, limit: int | None) -> list[dict]:
    rows = list(csv.DictReader(text.splitlines(keepends=True)))
    # CSV has no types: a column holding only true/false is a boolean column (kto labels).
    for column in rows[0] if rows else ():
        if all(str(row[column]).lower() in ("true", "false") for row in rows):
            for row in rows:
                row[column] = row[column].lower() == "true"
    return rows


def _read_disk(path: Path, name: str) -> list[dict]:
    import datasets

    try:
        data = datasets.load_from_disk(str(path))
    except FileNotFoundError:
        raise DataError(
            f"{name}: a folder not saved by Dataset.save_to_disk; point at a file in it"
        ) from None
    if isinstance(data, datasets.DatasetDict):
        if "train" not in data:
            raise DataError(f"{name} holds the splits {', '.join(data)} but no 'train'; point at one split")
        data = data["train"]
    return data.to_list()


def _read_hub(source: str, limit: int | None, key: str) -> list[dict]:
    if why := hub.unreachable("huggingface", timeout=5):  # fail fast instead of datasets' long retries
        raise DataError(
            f"cannot reach the Hugging Face hub to fetch {source}: {why}; "
            f"download it elsewhere and point {key} at the local file"
        )
    import datasets

    return datasets.load_dataset(source, split="train" if limit is None else f"train[:{limit}]").to_list()


def _rename(row: dict, columns: dict, here: str) -> dict:
    missing = [column for column in columns if column not in row]
    if missing:
        raise DataError(
            f"{here}: data.columns maps '{missing[0]}', but there is no such column; "
            f"columns found: {names(row)}"
        )
    return {columns.get(key, key): value for key, value in row.items()}


def where(rows: list, i: int, name: str) -> str:
    lines = getattr(rows, "lines", None)
    return f"{name} line {lines[i]}" if lines else f"{name} row {i + 1}"


def names(row: dict) -> str:
    """A row's column names, for messages."""
    return ", ".join(map(str, row)) or "(none)"
