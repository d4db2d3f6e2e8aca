"""Input files given as a local path or an http(s) URL (downloaded once into a local cache).

A download is all-or-nothing: it goes to a temporary file next to the cache entry and enters the cache
only when every byte the server announced (Content-Length) arrived, its first line looks like the
expected CSV header, and its SHA-256 matches the expected one when a param gives it. Anything else
raises a DataError naming the URL that says what went wrong and what to do; nothing is cached then.
The cache lives in $ARENA_PREF_CACHE (default ~/.cache/arena-pref), one folder per URL.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from .csvfile import check_local_file
from .errors import DataError

OFFLINE_COMMAND = "bash scripts/offline.sh"  # the README's offline run, on the committed sample
CHUNK = 1 << 20

HeaderCheck = Callable[[Path], None]  # raises DataError when a file does not start like the expected CSV


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def cache_dir() -> Path:
    return Path(os.environ.get("ARENA_PREF_CACHE") or Path.home() / ".cache" / "arena-pref")


def cache_path(source: str) -> Path:
    """Where the download of `source` is kept: a folder per URL (a hash of it), the URL's file name."""
    name = Path(urllib.parse.urlsplit(source).path).name or "download"
    return cache_dir() / hashlib.sha256(source.encode()).hexdigest()[:16] / name


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def local_copy(source: str, param: str = "the input", check: HeaderCheck | None = None, sha256: str = "") -> Path:
    """Path of `source` on disk: itself when local (checked to be a readable file), else its cached
    download. `param` names the params.yaml key that gave it (for the messages); `check` is run on a
    download before it is cached, and on the cached copy; `sha256` (empty: no check) is the expected
    SHA-256 of the file's bytes, checked on local files, downloads and cached copies alike."""
    if not is_url(source):
        path = check_local_file(source)
        _check_sha256(path, sha256)
        return path
    target = cache_path(source)
    if target.is_file():
        try:
            if check is not None:
                check(target)
            _check_sha256(target, sha256)
        except DataError as err:
            raise DataError(source, f"the cached copy {target} {err.reason}; delete {target.parent} to download it "
                                    "again") from None
        return target
    return _download(source, target, param, check, sha256)


def _sha256_mismatch(actual: str, expected: str) -> str:
    return f"has SHA-256 {actual}, but params.yaml expects {expected} (data.train_sha256)"


def _check_sha256(path: Path, expected: str) -> None:
    if expected and (actual := file_sha256(path)) != expected.lower():
        raise DataError(path, _sha256_mismatch(actual, expected))


def _download(source: str, target: Path, param: str, check: HeaderCheck | None, sha256: str) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    partial = Path(partial_name)
    nothing_cached = "nothing was cached"
    try:
        digest = hashlib.sha256()
        received = 0
        with os.fdopen(handle, "wb") as out:
            try:
                with urllib.request.urlopen(source, timeout=60) as response:
                    announced = response.headers.get("Content-Length")
                    total = int(announced) if announced and announced.isdigit() else None
                    with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {target.name}") as bar:
                        while chunk := response.read(CHUNK):
                            out.write(chunk)
                            digest.update(chunk)
                            received += len(chunk)
                            bar.update(len(chunk))
            except urllib.error.HTTPError as err:
                raise DataError(source, _http_error_message(err, param)) from None
            except urllib.error.URLError as err:
                host = urllib.parse.urlsplit(source).netloc
                raise DataError(source, f"cannot reach {host} ({err.reason}). Offline? Run the pipeline on the "
                                        f"committed sample instead: `{OFFLINE_COMMAND}`, or set {param} in "
                                        "params.yaml to a local file") from None
            except (OSError, http.client.HTTPException) as err:
                raise DataError(source, f"download broke off after {received} bytes ({type(err).__name__}: "
                                        f"{err}); {nothing_cached}, run again") from None
        if total is not None and received != total:
            raise DataError(source, f"download cut short: {received} of the {total} bytes the server announced "
                                    f"arrived; {nothing_cached}, run again")
        if check is not None:
            try:
                check(partial)
            except DataError as err:
                raise DataError(source, f"the downloaded file is not the expected CSV ({err.reason}); "
                                        f"{nothing_cached}: check {param} in params.yaml") from None
        if sha256 and digest.hexdigest() != sha256.lower():
            raise DataError(source, f"the download {_sha256_mismatch(digest.hexdigest(), sha256)}; {nothing_cached}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _http_error_message(err: urllib.error.HTTPError, param: str) -> str:
    if 400 <= err.code < 500:
        # The server answered: being offline is not the problem, the URL (or access to it) is.
        return (f"the server answered HTTP {err.code} {err.reason}: check the URL ({param} in params.yaml) "
                "and that the file is public")
    return (f"the server failed (HTTP {err.code} {err.reason}): try again later, or run the pipeline on the "
            f"committed sample: `{OFFLINE_COMMAND}`")
