"""Fuzz: real Chatbot Arena rows (the committed data/sample/train.csv), mutated, must be read faithfully
or refused with a DataError that names the file; never a raw exception, never a silent change.

Two families, with fixed seeds (hypothesis, derandomize=True) and a bounded number of examples:
  * lossless mutations (compression, quoting every cell, CRLF, BOM, blank lines between records,
    shuffling column order): the rows read back equal the unmutated file's rows, repairs included;
  * damaging mutations (byte flips, truncation, re-encoding, quotes added or removed, and the same
    applied to a compressed file): a DataError starting with the file's path, or rows that keep every
    record (rows out = csv records in), each id non-empty and unique, turns aligned, valid UTF-8.
Prediction files written by write_probs get the damaging family too, through read_probs.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import random
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arena_pref.data import TEXT_COLUMNS, DataError, read_rows
from arena_pref.labels import LABEL_COLUMNS
from arena_pref.predictions import probs_frame, read_probs, write_probs

ROOT = Path(__file__).resolve().parents[1]
N_ROWS = 12  # real rows per fuzzed file: a few kB to tens of kB each
EXAMPLES = 150  # per property; with 12 rows the whole module runs in seconds
FUZZ = settings(derandomize=True, max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _sample_records(n: int) -> list[list[str]]:
    with open(ROOT / "data" / "sample" / "train.csv", encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        return [next(reader) for _ in range(n + 1)]


RECORDS = _sample_records(N_ROWS)


def _csv_bytes(records: list[list[str]], quoting: int = csv.QUOTE_MINIMAL, eol: str = "\n") -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, quoting=quoting, lineterminator=eol).writerows(records)
    return out.getvalue().encode("utf-8")


BASE = _csv_bytes(RECORDS)


def _zip(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("train.csv", data)
    return out.getvalue()


COMPRESSORS = {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress, "zip": _zip}


def _shuffled_columns(seed: int) -> bytes:
    order = list(range(len(RECORDS[0])))
    random.Random(seed).shuffle(order)
    return _csv_bytes([[record[i] for i in order] for record in RECORDS])


def _blank_lines(seed: int) -> bytes:
    rng = random.Random(seed)
    records = []
    for record in RECORDS:
        records.append(record)
        records += [[]] * rng.randint(0, 2)
    return _csv_bytes(records)


LOSSLESS = {
    **{name: (lambda seed, c=c: c(BASE)) for name, c in COMPRESSORS.items()},
    "quote_all": lambda seed: _csv_bytes(RECORDS, csv.QUOTE_ALL),
    "crlf": lambda seed: _csv_bytes(RECORDS, eol="\r\n"),
    "bom": lambda seed: b"\xef\xbb\xbf" + BASE,
    "blank_lines": _blank_lines,
    "column_order": _shuffled_columns,
    "gzip_of_crlf_with_bom": lambda seed: gzip.compress(b"\xef\xbb\xbf" + _csv_bytes(RECORDS, eol="\r\n")),
}


def _flip_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data))]


def _reencode(data: bytes, rng: random.Random) -> bytes:
    encoding = rng.choice(["latin-1", "cp1252", "utf-16", "utf-8-sig", "ascii"])
    return data.decode("utf-8").encode(encoding, errors="replace")


def _requote(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(out))
        if rng.random() < 0.5 and out[i] == ord('"'):
            del out[i]
        else:
            out.insert(i, ord('"'))
    return bytes(out)


DAMAGING = {
    "flip_bytes": _flip_bytes,
    "truncate": _truncate,
    "reencode": _reencode,
    "requote": _requote,
    "flip_compressed": lambda data, rng: _flip_bytes(rng.choice(list(COMPRESSORS.values()))(data), rng),
    "truncate_compressed": lambda data, rng: _truncate(rng.choice(list(COMPRESSORS.values()))(data), rng),
}


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "fuzzed.csv"
    path.write_bytes(data)
    return path


def _comparable(rows) -> list[dict]:
    return rows.to_dict("records")


def _csv_record_count(data: bytes) -> int | None:
    """Data records of a plain UTF-8 file as the csv module counts them (None if it is not one)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    csv.field_size_limit(2**31 - 1)
    return sum(1 for record in csv.reader(io.StringIO(text, newline="")) if record) - 1


REFERENCE, REFERENCE_COUNTS = read_rows(_write(Path(tempfile.mkdtemp()), BASE), labelled=True)


def test_reference_file_is_read_whole():
    assert len(REFERENCE) == N_ROWS
    assert REFERENCE["id"].tolist() == [record[0] for record in RECORDS[1:]]


@FUZZ
@given(name=st.sampled_from(sorted(LOSSLESS)), seed=st.integers(0, 2**16))
def test_lossless_mutations_read_back_exactly(tmp_path, name, seed):
    rows, counts = read_rows(_write(tmp_path, LOSSLESS[name](seed)), labelled=True)
    assert _comparable(rows) == _comparable(REFERENCE)
    assert counts.as_dict() == REFERENCE_COUNTS.as_dict()


def _assert_clear_error(err: DataError, path: Path) -> None:
    message = str(err)
    assert message.startswith(f"{path}: ") or message.startswith(f"{path}, row "), message


@FUZZ
@given(name=st.sampled_from(sorted(DAMAGING)), seed=st.integers(0, 2**32 - 1))
def test_damaged_rows_are_read_faithfully_or_refused_clearly(tmp_path, name, seed):
    data = DAMAGING[name](BASE, random.Random(seed))
    path = _write(tmp_path, data)
    try:
        rows, _ = read_rows(path, labelled=True)
    except DataError as err:
        _assert_clear_error(err, path)
        if err.row is not None:
            assert err.row >= 1
        return
    expected = _csv_record_count(data)
    if expected is not None:  # a plain file: every record came out, none was invented
        assert len(rows) == expected
    assert rows["id"].map(bool).all() and rows["id"].is_unique
    for _, row in rows.iterrows():
        assert len({len(row[c]) for c in TEXT_COLUMNS}) == 1
        for column in TEXT_COLUMNS:
            for turn in row[column]:
                turn.encode("utf-8")
                assert "\x00" not in turn
        assert row["label"] in (0, 1, 2)


def _probs_file(tmp_path: Path) -> bytes:
    rng = np.random.default_rng(0)
    ids = [record[0] for record in RECORDS[1:]] + ["NA", "null", "#N/A"]
    probs = rng.dirichlet([1.0, 1.0, 1.0], size=len(ids))
    path = tmp_path / "base_probs.csv"
    write_probs(probs_frame(ids, probs, fold=np.arange(len(ids)) % 5, label=np.arange(len(ids)) % 3), path)
    return path.read_bytes()


@FUZZ
@given(name=st.sampled_from(sorted(DAMAGING)), seed=st.integers(0, 2**32 - 1))
def test_damaged_probability_files_are_read_faithfully_or_refused_clearly(tmp_path, name, seed):
    data = DAMAGING[name](_probs_file(tmp_path), random.Random(seed))
    path = _write(tmp_path, data)
    try:
        frame = read_probs(path)
    except DataError as err:
        _assert_clear_error(err, path)
        return
    expected = _csv_record_count(data)
    if expected is not None:
        assert len(frame) == expected
    assert frame["id"].is_unique and frame["id"].map(bool).all()
    values = frame[list(LABEL_COLUMNS)].to_numpy()
    assert values.dtype == np.float64 and ((values >= 0) & (values <= 1)).all()


@pytest.mark.parametrize("name", sorted(COMPRESSORS))
def test_probability_files_compressed_read_back_exactly(tmp_path, name):
    base = _probs_file(tmp_path)
    plain = read_probs(_write(tmp_path, base))
    assert read_probs(_write(tmp_path, COMPRESSORS[name](base))).equals(plain)
    assert plain["id"].tolist()[-3:] == ["NA", "null", "#N/A"]
