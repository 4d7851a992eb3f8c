"""Downloads against a server started here on 127.0.0.1: every fault leaves nothing behind.

"mnist" is replaced by a tiny synthetic dataset (6 + 4 images) whose sums are computed here,
so nothing touches the internet. After every case the target folder holds either the
verified file or nothing: never a partial, unverified or temporary file.
"""

import gzip
import hashlib
import http.server
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import idx_bytes

from tinyvae.lab.datasets import data, download
from tinyvae.lab.datasets.data import DataFile, DatasetNotFound

TIMEOUT = 0.5  # seconds; the stalling server waits longer than this
ROLES = ["train_images", "train_labels", "test_images", "test_labels"]


class Server:
    """Serves ``routes[path] = (behaviour, body)``; ``requests`` logs the paths asked for."""

    def __init__(self):
        self.routes: dict[str, tuple[str, bytes]] = {}
        self.requests: list[str] = []
        self.release = threading.Event()  # set at teardown to end any stalled handler
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                behaviour, body = server.routes.get(self.path, ("404", b""))
                if behaviour in ("404", "500"):
                    self.send_error(int(behaviour))
                    return
                if behaviour == "stall-before-headers":
                    server.release.wait(10)
                    return
                self.send_response(200)
                if behaviour != "drop-no-length":
                    # "drop" promises the whole body, sends half, then closes the connection.
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if behaviour in ("drop", "drop-no-length"):
                    self.wfile.write(body[:len(body) // 2])
                elif behaviour == "stall-mid-body":
                    self.wfile.write(body[:len(body) // 2])
                    self.wfile.flush()
                    server.release.wait(10)
                else:
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def mirror(self, name: str) -> str:
        return f"{self.base}/{name}/"

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    """Make "mnist" tiny; return {role: (DataFile, gzip-compressed content as served)}."""
    monkeypatch.delenv("TINYVAE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "root").mkdir()  # a data_dir that is given must exist (it is never created silently)
    monkeypatch.setattr(data, "MIRRORS", {name: () for name in data.FILES})
    rng = np.random.default_rng(0)
    raw = {"train_images": idx_bytes(rng.integers(0, 256, (6, 28, 28))),
           "train_labels": idx_bytes(rng.integers(0, 10, 6)),
           "test_images": idx_bytes(rng.integers(0, 256, (4, 28, 28))),
           "test_labels": idx_bytes(rng.integers(0, 10, 4))}
    table = {role: DataFile(f.name, hashlib.sha256(raw[role]).hexdigest(), f.remote)
             for role, f in data.FILES["mnist"].items()}
    monkeypatch.setitem(data.FILES, "mnist", table)
    return {role: (table[role], gzip.compress(raw[role], mtime=0)) for role in ROLES}


def serve(server, mirror, tiny, behaviour="ok", roles=ROLES, body=None):
    for role in roles:
        file, content = tiny[role]
        server.routes[f"/{mirror}/{file.remote}"] = (behaviour, content if body is None else body)


def place(folder: Path, tiny, roles):
    """Put verified copies of ``roles`` into ``folder``, as an earlier download would have."""
    folder.mkdir(parents=True, exist_ok=True)
    for role in roles:
        file, content = tiny[role]
        (folder / file.remote).write_bytes(content)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_files_are_downloaded_verified_and_loaded(server, tiny, tmp_path):
    serve(server, "m1", tiny)
    loaded = data.load_dataset("mnist", tmp_path / "root", mirrors=(server.mirror("m1"),), timeout=TIMEOUT)
    assert loaded.x_train.shape == (6, 784) and loaded.y_test.shape == (4,)
    assert listing(tmp_path / "root" / "mnist") == sorted(tiny[r][0].remote for r in ROLES)
    for role in ROLES:
        file, content = tiny[role]
        assert (tmp_path / "root" / "mnist" / file.remote).read_bytes() == content


def test_without_data_dir_files_go_to_the_user_cache(server, tiny, tmp_path, monkeypatch):
    serve(server, "m1", tiny)
    monkeypatch.setitem(data.MIRRORS, "mnist", (server.mirror("m1"),))  # the module-level table
    data.load_dataset("mnist", timeout=TIMEOUT)
    assert len(listing(tmp_path / "cache" / "tinyvae" / "mnist")) == 4


def test_files_already_present_are_not_downloaded_again(server, tiny, tmp_path):
    place(tmp_path / "root" / "mnist", tiny, ROLES)
    data.load_dataset("mnist", tmp_path / "root", mirrors=(server.mirror("m1"),), timeout=TIMEOUT)
    assert server.requests == []


FAULTS = ["404", "500", "wrong-checksum", "drop", "drop-no-length",
          "stall-before-headers", "stall-mid-body", "refused"]


def fault_mirror(server, tiny, fault):
    """A mirror that fails with ``fault`` for the training images."""
    if fault == "refused":
        with socket.socket() as s:  # a port that was free a moment ago refuses connections
            s.bind(("127.0.0.1", 0))
            return f"http://127.0.0.1:{s.getsockname()[1]}/"
    if fault == "wrong-checksum":
        serve(server, "bad", tiny, roles=["train_images"], body=tiny["test_images"][1])
    elif fault != "404":  # 404: simply not served
        serve(server, "bad", tiny, fault, roles=["train_images"])
    return server.mirror("bad")


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failing_first_mirror_falls_through_to_the_second(server, tiny, tmp_path, fault):
    folder = tmp_path / "root" / "mnist"
    place(folder, tiny, ROLES[1:])  # only the training images are missing
    serve(server, "good", tiny, roles=["train_images"])
    mirrors = (fault_mirror(server, tiny, fault), server.mirror("good"))
    loaded = data.load_dataset("mnist", tmp_path / "root", mirrors=mirrors, timeout=TIMEOUT)
    assert loaded.x_train.shape == (6, 784)
    assert listing(folder) == sorted(tiny[r][0].remote for r in ROLES)
    if fault != "refused":
        assert server.requests[0] == "/bad/train-images-idx3-ubyte.gz"  # tried, and failed, first
    assert server.requests[-1] == "/good/train-images-idx3-ubyte.gz"


@pytest.mark.parametrize("fault", FAULTS)
def test_when_every_mirror_fails_nothing_is_left_and_the_error_says_why(server, tiny, tmp_path, fault):
    folder = tmp_path / "root" / "mnist"
    place(folder, tiny, ROLES[1:])
    before = listing(folder)
    with pytest.raises(DatasetNotFound) as info:
        data.load_dataset("mnist", tmp_path / "root", mirrors=(fault_mirror(server, tiny, fault),),
                          timeout=TIMEOUT)
    assert listing(folder) == before  # no partial, unverified or temporary file
    message = str(info.value)
    assert "train-images-idx3-ubyte" in message and str(folder) in message
    expected_reason = {"404": "404", "500": "500", "wrong-checksum": "checksum mismatch",
                       "drop": "connection closed after", "drop-no-length": "gzip",
                       "stall-before-headers": "timed out", "stall-mid-body": "timed out",
                       "refused": "refused"}[fault]
    assert expected_reason in message


def test_a_mirror_serving_the_wrong_file_everywhere_leaves_an_empty_folder(server, tiny, tmp_path):
    serve(server, "m1", tiny, body=b"<html>not the file</html>")
    with pytest.raises(DatasetNotFound):
        data.load_dataset("mnist", tmp_path / "root", mirrors=(server.mirror("m1"),), timeout=TIMEOUT)
    assert listing(tmp_path / "root" / "mnist") == []


def test_the_temporary_file_lives_beside_the_target_and_vanishes_on_ctrl_c(server, tiny, tmp_path):
    serve(server, "m1", tiny, roles=["train_labels"])
    dest = tmp_path / "target" / "labels.gz"
    seen = []

    def interrupted(path):
        seen.append(path)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download.fetch([server.mirror("m1") + "train-labels-idx1-ubyte.gz"], dest,
                       verify=interrupted, timeout=TIMEOUT, log=False)
    assert seen[0].parent == dest.parent and seen[0].name.startswith(".labels.gz.")
    assert listing(dest.parent) == []


def test_fetch_reports_every_mirror_that_failed(server, tiny, tmp_path):
    urls = [server.mirror("a") + "x", server.mirror("b") + "x"]
    with pytest.raises(download.DownloadError) as info:
        download.fetch(urls, tmp_path / "x", verify=lambda path: None, timeout=TIMEOUT, log=False)
    assert [url for url, _ in info.value.failures] == urls
    assert all("404" in reason for _, reason in info.value.failures)
