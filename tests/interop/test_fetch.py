"""``data fetch``: downloads from a local HTTP server started here (Range support, bounded
lifetime): a complete download, an interrupted one resumed from its .part file, a wrong
checksum (file removed, clear error), a 404, files without a public source, zip unpacking."""

from __future__ import annotations

import hashlib
import io
import re
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from model.common.errors import UserError
from pipeline.interop import catalog, digests, fetch
from pipeline.interop.catalog import Entry
from pipeline.interop.download import DownloadError, download, part_path

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes
SMALL = b"hello v-coco\n"


class _Handler(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    drops: set[str] = set()  # paths whose next GET sends half the body, then closes
    seen_ranges: list[str | None] = []
    ignore_range = False  # behave like a server without Range support

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        body = self.files.get(self.path)
        self.seen_ranges.append(self.headers.get("Range"))
        if body is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        match = re.match(r"bytes=(\d+)-$", self.headers.get("Range") or "")
        if match and not self.ignore_range:
            start = int(match.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        rest = body[start:]
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        if self.path in self.drops:
            self.drops.discard(self.path)
            self.wfile.write(rest[: len(rest) // 2])
            self.close_connection = True
            return
        self.wfile.write(rest)

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    """A threaded HTTP server on 127.0.0.1 (random port), shut down after the test and, as a
    safety net, after 60 seconds whatever happens."""
    _Handler.files = {"/data/payload.bin": PAYLOAD, "/data/small.txt": SMALL}
    _Handler.drops = set()
    _Handler.seen_ranges = []
    _Handler.ignore_range = False
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    watchdog = threading.Timer(60.0, httpd.shutdown)
    watchdog.daemon = True
    watchdog.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        watchdog.cancel()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def entry(url: str, path: str = "files/payload.bin", **known: object) -> Entry:
    base = Entry(name=Path(path).name, dataset="v-coco", base="dataset", path=path, url=url, sha256=None,
                 git_blob_sha1=None, sha256_prefix=None, bytes=None, required=False, extract=(),
                 extract_to=None, source="test")
    return replace(base, **known)


def test_complete_download_with_checksum(server: str, tmp_path: Path) -> None:
    e = entry(f"{server}/data/payload.bin", sha256=hashlib.sha256(PAYLOAD).hexdigest(), bytes=len(PAYLOAD))
    out = fetch.fetch_one(e, tmp_path)
    assert out.status == "downloaded" and "SHA-256, size match" in out.message
    assert (tmp_path / "files/payload.bin").read_bytes() == PAYLOAD
    assert not part_path(tmp_path / "files/payload.bin").exists()
    again = fetch.fetch_one(e, tmp_path)  # present: checked, not downloaded again
    assert again.status == "present"
    assert len(_Handler.seen_ranges) == 1


def test_truncated_part_file_is_resumed_with_range(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "payload.bin"
    part_path(dest).write_bytes(PAYLOAD[:30_000])
    download(f"{server}/data/payload.bin", dest)
    assert dest.read_bytes() == PAYLOAD
    assert _Handler.seen_ranges == ["bytes=30000-"]


def test_dropped_connection_keeps_part_then_resumes(server: str, tmp_path: Path) -> None:
    _Handler.drops = {"/data/payload.bin"}
    dest = tmp_path / "payload.bin"
    with pytest.raises(DownloadError, match="run again to resume"):
        download(f"{server}/data/payload.bin", dest)
    kept = part_path(dest).stat().st_size
    assert 0 < kept < len(PAYLOAD) and not dest.exists()
    download(f"{server}/data/payload.bin", dest)
    assert dest.read_bytes() == PAYLOAD
    assert _Handler.seen_ranges[-1] == f"bytes={kept}-"


def test_server_without_range_support_restarts_from_zero(server: str, tmp_path: Path) -> None:
    _Handler.ignore_range = True
    dest = tmp_path / "payload.bin"
    part_path(dest).write_bytes(b"garbage that must not stay in front")
    download(f"{server}/data/payload.bin", dest)
    assert dest.read_bytes() == PAYLOAD


def test_complete_part_file_answered_416_is_accepted(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "small.txt"
    part_path(dest).write_bytes(SMALL)
    download(f"{server}/data/small.txt", dest)
    assert dest.read_bytes() == SMALL


def test_wrong_checksum_removes_file_with_clear_error(server: str, tmp_path: Path) -> None:
    e = entry(f"{server}/data/small.txt", "files/small.txt", sha256="0" * 64)
    out = fetch.fetch_one(e, tmp_path)
    assert out.status == "failed"
    assert "SHA-256" in out.message and "expected 0000" in out.message and "removed" in out.message
    assert not (tmp_path / "files/small.txt").exists()
    assert not part_path(tmp_path / "files/small.txt").exists()


def test_git_blob_id_is_checked(server: str, tmp_path: Path) -> None:
    blob = hashlib.sha1(b"blob %d\0" % len(SMALL) + SMALL).hexdigest()
    ok = fetch.fetch_one(entry(f"{server}/data/small.txt", "a/small.txt", git_blob_sha1=blob), tmp_path)
    assert ok.status == "downloaded" and "Git blob id match" in ok.message
    bad = fetch.fetch_one(entry(f"{server}/data/small.txt", "b/small.txt", git_blob_sha1="1" * 40), tmp_path)
    assert bad.status == "failed" and "Git blob id" in bad.message


def test_unknown_checksum_is_reported_not_checked(server: str, tmp_path: Path) -> None:
    out = fetch.fetch_one(entry(f"{server}/data/small.txt", "small.txt"), tmp_path)
    assert out.status == "downloaded"
    assert "sha256 unknown, not checked" in out.message and hashlib.sha256(SMALL).hexdigest() in out.message


def test_404_is_a_clear_error(server: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{server}/data/gone.json", tmp_path / "gone.json")
    assert not (tmp_path / "gone.json").exists()


def test_present_file_with_wrong_content_needs_force(server: str, tmp_path: Path) -> None:
    e = entry(f"{server}/data/small.txt", "small.txt", sha256=hashlib.sha256(SMALL).hexdigest())
    (tmp_path / "small.txt").write_bytes(b"stale")
    assert fetch.fetch_one(e, tmp_path).status == "failed"
    assert fetch.fetch_one(e, tmp_path, force=True).status == "downloaded"
    assert (tmp_path / "small.txt").read_bytes() == SMALL


def test_zip_members_are_unpacked_once(server: str, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("annotations/instances_train2014.json", "{}")
        zf.writestr("annotations/other.json", "{}")
    _Handler.files["/ann.zip"] = buf.getvalue()
    e = entry(f"{server}/ann.zip", "coco/ann.zip", extract=("annotations/instances_train2014.json",),
              extract_to="coco")
    out = fetch.fetch_one(e, tmp_path)
    assert out.status == "downloaded" and "unpacked 1 file" in out.message
    assert (tmp_path / "coco/annotations/instances_train2014.json").exists()
    assert not (tmp_path / "coco/annotations/other.json").exists()
    assert "already unpacked" in fetch.fetch_one(e, tmp_path).message


def test_zip_slip_member_is_refused(server: str, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../evil.txt", "x")
    _Handler.files["/evil.zip"] = buf.getvalue()
    with pytest.raises(UserError, match="outside"):
        fetch.fetch_one(entry(f"{server}/evil.zip", "z/evil.zip", extract=("*",), extract_to="z"), tmp_path)
    assert not (tmp_path / "evil.txt").exists()


def test_entries_without_source_say_so_and_run_fails_on_errors(tmp_path: Path, capsys) -> None:
    outcomes = fetch.run(["trainval_hico.json"], None, tmp_path)
    assert outcomes[0].status == "manual"
    text = capsys.readouterr().out
    assert "no stable public source" in text and "data convert-hico" in text and "data verify" in text
    with pytest.raises(UserError, match="unknown file"):
        fetch.run(["nope.json"], None, tmp_path)


def test_catalog_values_are_well_formed() -> None:
    for e in catalog.entries():
        assert e.dataset in {"hico-det", "v-coco", "models"}
        assert e.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", e.sha256), e.name
        assert e.git_blob_sha1 is None or re.fullmatch(r"[0-9a-f]{40}", e.git_blob_sha1), e.name
        assert e.url is None or e.url.startswith(("https://", "http://")), e.name
    detr = catalog.find("detr-r50-e632da11.pth")
    assert detr.sha256_prefix == "e632da11" and detr.base == "project"


def test_digest_matches_hashlib(tmp_path: Path) -> None:
    f = tmp_path / "x.bin"
    f.write_bytes(PAYLOAD)
    d = digests.digest(f)
    assert d.sha256 == hashlib.sha256(PAYLOAD).hexdigest() and d.size == len(PAYLOAD)
    assert d.git_blob_sha1 == hashlib.sha1(b"blob %d\0" % len(PAYLOAD) + PAYLOAD).hexdigest()
