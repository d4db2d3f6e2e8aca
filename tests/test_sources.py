"""Downloads (arena_pref.sources) against a local HTTP server, and how a stage reports a bad input:
one line, exit code 2, no traceback (ARENA_PREF_DEBUG=1 shows it); and `dvc repro` with an unreachable
URL in data.train_csv ends with the stage's own message, not DVC's "dependency ... does not exist"."""

from __future__ import annotations

import csv
import gzip
import hashlib
import http.server
import io
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from conftest import tiny_row

from arena_pref.data import check_header
from arena_pref.errors import EXIT_INPUT_ERROR, DataError
from arena_pref.sources import OFFLINE_COMMAND, cache_path, local_copy

ROOT = Path(__file__).resolve().parents[1]


def two_train_rows(**cells_of_row_2: str) -> bytes:
    rows = [tiny_row("1", ["Q1"], ["A1"], ["B1"], 0), tiny_row("2", ["Q2"], ["A2"], ["B2"], 1) | cells_of_row_2]
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


GOOD = two_train_rows()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Routes: /good.csv, /good.csv.gz, /short.csv (announces more bytes than it sends), /html.csv
    (an HTML page with status 200), anything else 404."""

    routes: dict[str, tuple[int, bytes, int | None]] = {
        "/good.csv": (200, GOOD, None),
        "/good.csv.gz": (200, gzip.compress(GOOD), None),
        "/short.csv": (200, GOOD[: len(GOOD) // 2], len(GOOD)),
        "/html.csv": (200, b"<!DOCTYPE html><html><body>Rate limited</body></html>", None),
        "/down.csv": (503, b"", None),
    }
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.hits.append(self.path)
        status, body, announced = self.routes.get(self.path, (404, b"not found", None))
        self.send_response(status)
        self.send_header("Content-Length", str(announced if announced is not None else len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ARENA_PREF_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/train.csv"  # nothing listens there any more


def _check(path):
    check_header(path, labelled=True)


def _cached_files(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*") if p.is_file()) if cache.exists() else []


@pytest.mark.parametrize("name", ["good.csv", "good.csv.gz"])
def test_download_is_cached_once_and_reused(server, cache, name):
    url = f"{server}/{name}"
    _Handler.hits.clear()
    path = local_copy(url, "data.train_csv", _check, hashlib.sha256(
        _Handler.routes[f"/{name}"][1]).hexdigest())
    assert path == cache_path(url) and path.read_bytes() == _Handler.routes[f"/{name}"][1]
    assert local_copy(url, "data.train_csv", _check) == path
    assert _Handler.hits == [f"/{name}"]  # the second call read the cache
    assert _cached_files(cache) == [path]  # no partial file left behind


@pytest.mark.parametrize("name, message", [
    ("short.csv", f"download cut short: {len(GOOD) // 2} of the {len(GOOD)} bytes the server announced arrived; "
                  "nothing was cached, run again"),
    ("html.csv", "the downloaded file is not the expected CSV (an HTML or XML page, not a CSV (a server's error or "
                 "login page?)); nothing was cached: check data.train_csv in params.yaml"),
    ("missing.csv", "the server answered HTTP 404 Not Found: check the URL (data.train_csv in params.yaml) and that "
                    "the file is public"),
    ("down.csv", f"the server failed (HTTP 503 Service Unavailable): try again later, or run the pipeline on the "
                 f"committed sample: `{OFFLINE_COMMAND}`"),
], ids=["cut_short", "html_page_with_status_200", "404", "503"])
def test_failed_download_is_never_cached(server, cache, name, message):
    url = f"{server}/{name}"
    with pytest.raises(DataError) as err:
        local_copy(url, "data.train_csv", _check)
    assert str(err.value) == f"{url}: {message}"
    assert "Offline?" not in str(err.value)
    assert _cached_files(cache) == []


def test_sha256_mismatch_is_not_cached_and_a_bad_cached_copy_says_how_to_clear_it(server, cache):
    url = f"{server}/good.csv"
    wrong = "0" * 64
    with pytest.raises(DataError, match=f"the download has SHA-256 {hashlib.sha256(GOOD).hexdigest()}, but "
                                        f"params.yaml expects {wrong}"):
        local_copy(url, "data.train_csv", _check, wrong)
    assert _cached_files(cache) == []
    path = local_copy(url, "data.train_csv", _check)
    path.write_bytes(b"<html>stale page from an older version</html>\n")  # a bad file already in the cache
    with pytest.raises(DataError) as err:
        local_copy(url, "data.train_csv", _check)
    assert str(err.value) == (f"{url}: the cached copy {path} an HTML or XML page, not a CSV (a server's error or "
                              f"login page?); delete {path.parent} to download it again")


def test_unreachable_host_names_the_offline_command(cache):
    url = _closed_port_url()
    with pytest.raises(DataError) as err:
        local_copy(url, "data.train_csv", _check)
    message = str(err.value)
    assert message.startswith(f"{url}: cannot reach 127.0.0.1:")
    assert f"Offline? Run the pipeline on the committed sample instead: `{OFFLINE_COMMAND}`" in message
    assert _cached_files(cache) == []


def test_local_file_sha256_checked(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(GOOD)
    assert local_copy(str(path), "data.train_csv", _check, hashlib.sha256(GOOD).hexdigest()) == path
    with pytest.raises(DataError, match=f"{path}: has SHA-256 .* but params.yaml expects {'a' * 64}"):
        local_copy(str(path), "data.train_csv", _check, "a" * 64)


# ------------------------------------------------------------------------- a stage's one-line error

def _stage_dir(tmp_path: Path, train_csv: str) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update({"train_csv": train_csv, "test_csv": str(ROOT / "data" / "sample" / "test.csv")})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path


def _prepare(cwd: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "src" / "prepare.py"), "--out-dir", "out", "--report", "r.json"],
                          cwd=cwd, capture_output=True, text=True, timeout=120, env=os.environ | env)


def test_stage_reports_a_bad_input_in_one_line_without_traceback(tmp_path, cache):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(two_train_rows(response_a='["unclosed"'))
    done = _prepare(_stage_dir(tmp_path, str(bad)), ARENA_PREF_CACHE=str(cache))
    assert done.returncode == EXIT_INPUT_ERROR
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith(f"error: {bad}, row 2, column 'response_a': not valid JSON")
    assert "Traceback" not in done.stderr

    debug = _prepare(tmp_path, ARENA_PREF_CACHE=str(cache), ARENA_PREF_DEBUG="1")
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "DataError" in debug.stderr


def test_stage_with_an_unreachable_url(tmp_path, cache):
    url = _closed_port_url()
    done = _prepare(_stage_dir(tmp_path, url), ARENA_PREF_CACHE=str(cache))
    assert done.returncode == EXIT_INPUT_ERROR, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {url}: cannot reach 127.0.0.1:") and OFFLINE_COMMAND in last


@pytest.mark.slow
def test_dvc_repro_with_an_unreachable_url_gives_the_stage_message(tmp_path, cache):
    """DVC checks a URL dep before it runs the stage and stops with "dependency ... does not exist";
    prepare has no data deps (always_changed), so the stage runs and says what to do."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        (repo / name).write_bytes((ROOT / name).read_bytes())
    (repo / "src").symlink_to(ROOT / "src")
    (repo / "data").mkdir()
    (repo / "data" / "sample").symlink_to(ROOT / "data" / "sample")
    url = _closed_port_url()
    _stage_dir(repo, url)
    env = os.environ | {"ARENA_PREF_CACHE": str(cache), "DVC_NO_ANALYTICS": "true",
                        "DVC_SITE_CACHE_DIR": str(tmp_path / "dvc-site-cache"),
                        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "PYTHONPATH": str(ROOT / "src")}
    for cmd in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True, timeout=120)
    done = subprocess.run([sys.executable, "-m", "dvc", "repro", "prepare"], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "does not exist" not in output
    assert f"error: {url}: cannot reach 127.0.0.1:" in output and OFFLINE_COMMAND in output


@pytest.mark.parametrize("value, ok", [("", True), ("ab" * 32, True), ("AB" * 32, True), ("ab" * 31, False),
                                       ("g" * 64, False), (None, False)])
def test_train_sha256_param_is_empty_or_64_hex_digits(value, ok):
    from arena_pref.params import ParamsError, parse_params
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["data"]["train_sha256"] = value
    if ok:
        assert parse_params(raw).data.train_sha256 == value
    else:
        with pytest.raises(ParamsError, match="data.train_sha256"):
            parse_params(raw)
