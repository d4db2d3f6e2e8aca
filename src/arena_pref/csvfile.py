"""Read one local CSV input file into its header and records, or stop with a DataError naming the
file, row and column.

Shared by every CSV the pipeline reads (train, test and extra CSVs, downloads, prediction files):
  * the path must be a regular local file (a directory, a pipe, an unexpanded `~` or an `s3://` URL
    gets a message saying so, not "file not found");
  * gzip, bzip2, xz and single-file zip archives are recognised by their first bytes (the name does not
    matter) and decompressed; a cut-short or corrupt archive is an error, never a partial read;
  * the text must be UTF-8 (a BOM is dropped); an invalid byte is reported with its offset in the
    (decompressed) file and the row and column whose cell holds it;
  * records are parsed with the csv module, every cell kept verbatim as a string: no NA parsing, no
    type guessing, no index column. Blank lines are skipped, a short record is padded with "" (the cell
    that is then missing is reported by whoever reads it), a long record is an error.
Row numbers count data records from 1 (the header is row 0); a quoted cell spanning lines is one row.
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import gzip
import io
import lzma
import re
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError

# A scheme such as s3:// or gs://; two characters at least, so that C:/ (Windows) stays a path. The
# second slash is optional: pathlib turns "s3://bucket" into "s3:/bucket".
_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/")
_BOM = b"\xef\xbb\xbf"
_COMPRESSIONS = (  # (first bytes, name); zstd is recognised to say it is not supported
    (b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"), (b"\x28\xb5\x2f\xfd", "zstd"))
# What the decompressors raise on a cut-short or damaged stream (bz2 raises ValueError when it is cut
# short; zipfile raises RuntimeError for an encrypted member, NotImplementedError for an unknown method).
_DECOMPRESSION_ERRORS = (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError, zipfile.BadZipFile,
                         NotImplementedError, RuntimeError)
_EXCEL_SEP_LINE = re.compile(r"^\s*sep=(.)\s*$")


@dataclass(frozen=True)
class CsvTable:
    header: list[str]  # empty header cells are named "Unnamed: <index>", as pandas names them
    rows: list[list[str]]  # each exactly len(header) cells


def check_local_file(path: str | Path) -> Path:
    """`path` as a Path when it names a readable regular file; a DataError that says what it is otherwise."""
    text = str(path)
    scheme = _URL_SCHEME.match(text)
    if scheme:
        if scheme.group(1).lower() in ("http", "https"):
            raise DataError(text, "a URL, not a local file: http(s) URLs are downloaded only when they are given "
                                  "as data.train_csv, data.test_csv or data.extra_train_csvs in params.yaml")
        raise DataError(text, f"{scheme.group(1)}:// is not supported: only local paths and http(s) URLs are read; "
                              "copy the file to a local path first (e.g. `aws s3 cp`, `gsutil cp` or "
                              "`dvc import-url`) and give that path")
    p = Path(path)
    if not p.exists():
        if text.startswith("~"):
            raise DataError(text, f"file not found: '~' is not expanded here; write the full path "
                                  f"({p.expanduser()})")
        raise DataError(p, "file not found")
    if p.is_dir():
        raise DataError(p, "is a directory; expected a CSV file")
    if not p.is_file():
        raise DataError(p, "not a regular file (a named pipe, socket or device); save the data to a file first")
    return p


def _compression(head: bytes) -> str | None:
    return next((name for magic, name in _COMPRESSIONS if head.startswith(magic)), None)


def _only_member(path: Path, archive: zipfile.ZipFile) -> str:
    """The name of the one file in a zip input (pandas, too, reads only single-file archives)."""
    names = [n for n in archive.namelist() if not n.endswith("/")]
    if len(names) != 1:
        raise DataError(path, f"a zip input must hold exactly one file, this one holds {len(names)}"
                              f"{': ' + ', '.join(names[:5]) if names else ''}")
    return names[0]


def _decompressed(path: Path, data: bytes, kind: str) -> bytes:
    if kind == "zstd":
        raise DataError(path, "zstd-compressed, which is not supported: decompress it (`zstd -d`) or use gzip, "
                              "bzip2, xz or zip")
    try:
        if kind == "zip":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                return archive.read(_only_member(path, archive))
        return {"gzip": gzip.decompress, "bzip2": bz2.decompress, "xz": lzma.decompress}[kind](data)
    except DataError:
        raise
    except _DECOMPRESSION_ERRORS as err:
        raise DataError(path, f"{kind}-compressed but cannot be decompressed ({err}): the file is cut short or "
                              "damaged; download or compress it again") from None


def read_bytes(path: str | Path) -> bytes:
    """The (decompressed) bytes of a local input file."""
    p = check_local_file(path)
    try:
        data = p.read_bytes()
    except OSError as err:
        raise DataError(p, f"cannot read the file: {err.strerror or err}") from None
    kind = _compression(data[:8])
    return _decompressed(p, data, kind) if kind else data


@contextlib.contextmanager
def _large_fields():
    # Answers of a megabyte exceed the csv module's default 128 KiB per field.
    limit = csv.field_size_limit()
    csv.field_size_limit(2**31 - 1)
    try:
        yield
    finally:
        csv.field_size_limit(limit)


def _records(text: str) -> list[list[str]]:
    # newline="": the csv module sees \r, \n and \r\n line ends (old Mac, Unix, Windows) and keeps the
    # ones quoted inside a cell as they are.
    with _large_fields():
        return [record for record in csv.reader(io.StringIO(text, newline="")) if record]


def _delimiter_hint(header: list[str]) -> str | None:
    """A hint when the header is one column holding another separator, else None."""
    if len(header) == 1 and any(sep in header[0] for sep in (";", "\t", "|")):
        return "the header is one column: is the file comma-separated?"
    return None


def _first_invalid_utf8(path: Path, records: list[list[str]], message: str) -> DataError:
    """The error for bytes that are not UTF-8, at the row and column whose cell holds the first one
    (the text was decoded with surrogateescape, which maps each invalid byte to U+DC80..U+DCFF)."""
    escaped = re.compile("[\udc80-\udcff]")
    for number, record in enumerate(records):
        for index, cell in enumerate(record):
            if escaped.search(cell):
                if number == 0:
                    return DataError(path, f"{message} (in the header)")
                column = records[0][index] if index < len(records[0]) else f"field {index + 1}"
                return DataError(path, message, number, column)
    return DataError(path, message)


def decode_utf8(path: Path, data: bytes) -> tuple[str, str | None]:
    """The text of `data`, and when it is not UTF-8 the message to raise once the records are known."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(path, "UTF-16 text (it starts with a UTF-16 byte order mark); re-save the file as UTF-8")
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as err:
        # err.start counts from after the BOM that utf-8-sig dropped: report the offset in the file.
        offset = err.start + (len(_BOM) if data.startswith(_BOM) else 0)
        message = (f"not UTF-8 (byte {offset} of the file, 0x{data[offset]:02x}: {err.reason}); "
                   "re-save the file as UTF-8")
        return data.decode("utf-8-sig", errors="surrogateescape"), message


def read_table(path: str | Path) -> CsvTable:
    """Header and records of a local CSV file (see the module docstring for what is refused)."""
    p = check_local_file(path)
    data = read_bytes(p)
    if not data.strip():
        raise DataError(p, "file is empty")
    text, not_utf8 = decode_utf8(p, data)
    if not text.strip():
        raise DataError(p, "file is empty")
    records = _records(text)
    if not_utf8 is not None:
        raise _first_invalid_utf8(p, records, not_utf8)
    first_line = text.lstrip("\r\n").splitlines()[0]
    sep = _EXCEL_SEP_LINE.match(first_line)
    if sep:
        raise DataError(p, f"the first line '{first_line.strip()}' is Excel's separator hint, not the header: "
                           "delete that line (or export as 'CSV UTF-8 (comma delimited)')")
    header = [name if name else f"Unnamed: {i}" for i, name in enumerate(records[0])]
    duplicated = [c for c, n in Counter(records[0]).items() if n > 1 and c]
    if duplicated:
        raise DataError(p, f"duplicated column(s) {', '.join(duplicated)}: which one holds the data?")
    rows = []
    for number, record in enumerate(records[1:], start=1):
        if len(record) > len(header):
            # A semicolon- or tab-separated file lands here when its cells hold commas.
            reason = _delimiter_hint(header) or "an unquoted comma or an unclosed quote?"
            raise DataError(p, f"more fields than the header ({reason}): {len(record)} fields, the header has "
                               f"{len(header)}", number)
        rows.append(record + [""] * (len(header) - len(record)))
    return CsvTable(header, rows)


HEAD_BYTES = 1 << 20  # a header line is far shorter; an answer of a megabyte may follow it


def _head(path: Path) -> bytes:
    """The first HEAD_BYTES (decompressed) bytes of a file, without reading the rest."""
    with open(path, "rb") as f:
        magic = f.read(8)
    kind = _compression(magic)
    try:
        if kind is None:
            with open(path, "rb") as f:
                return f.read(HEAD_BYTES)
        if kind == "zip":
            with zipfile.ZipFile(path) as archive, archive.open(_only_member(path, archive)) as f:
                return f.read(HEAD_BYTES)
        if kind == "zstd":
            return _decompressed(path, magic, kind)  # raises: not supported
        opener = {"gzip": gzip.open, "bzip2": bz2.open, "xz": lzma.open}[kind]
        with opener(path, "rb") as f:
            return f.read(HEAD_BYTES)
    except DataError:
        raise
    except _DECOMPRESSION_ERRORS as err:
        raise DataError(path, f"{kind}-compressed but cannot be decompressed ({err})") from None


def read_header(path: str | Path) -> list[str]:
    """The header of a CSV file, read from its first bytes only (to check a download before caching it).
    An HTML page (a server's error or login page sent with status 200) gets its own message."""
    p = check_local_file(path)
    head = _head(p)
    text = head.decode("utf-8-sig", errors="replace").lstrip()
    if text[:100].lower().startswith(("<!doctype html", "<html", "<?xml", "<head", "<body")):
        raise DataError(p, "an HTML or XML page, not a CSV (a server's error or login page?)")
    if "\n" not in text and "\r" not in text and len(head) == HEAD_BYTES:
        raise DataError(p, f"no line break in the first {HEAD_BYTES} bytes: not a CSV file")
    records = _records(text.splitlines()[0] if text else "")
    return records[0] if records else []


def require_columns(path: str | Path, header: list[str], required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in header]
    if missing:
        hint = _delimiter_hint(header)
        raise DataError(path, f"missing column(s) {', '.join(missing)}; found {header}" + (f" ({hint})" if hint else ""))
