"""Input files given as a local path or an http(s) URL (downloaded once into a local cache)."""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

CACHE_DIR = Path(os.environ.get("ARENA_PREF_CACHE", Path.home() / ".cache" / "arena-pref"))


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def local_copy(source: str) -> Path:
    """Path of `source` on disk: itself when local, else a cached download (atomic, with progress)."""
    if not is_url(source):
        return Path(source)
    target = CACHE_DIR / hashlib.sha256(source.encode()).hexdigest()[:16] / Path(source.split("?")[0]).name
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(source, timeout=60) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {target.name}") as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
    except OSError as err:
        raise OSError(f"cannot download {source}: {err}. Offline? Point data.train_csv / data.test_csv "
                      "in params.yaml at local files instead.") from err
    os.replace(partial, target)
    return target
