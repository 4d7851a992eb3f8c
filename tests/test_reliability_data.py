"""Issue 12, data files and downloads: memory and time are bounded before anything is verified.

An IDX header's claim is checked against the largest size the file can have before a byte is
allocated (a sparse file or a small gzip can back any claim); a download stops at the file's
size cap and at its deadline, whatever the server does. Servers run on 127.0.0.1 only.
"""

from __future__ import annotations

import gzip
import http.server
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyvae.lab.datasets import download
from tinyvae.lab.datasets.readers import (
    IDX_BYTES,
    MAX_IDX_BYTES,
    DataError,
    read_idx,
    read_verified,
)

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def idx_header(shape) -> bytes:
    return bytes([0, 0, 0x08, len(shape)]) + b"".join(n.to_bytes(4, "big") for n in shape)


# ---- IDX: the claim is checked before allocating ----

@SETTINGS
@given(shape=st.lists(st.integers(1, 2**32 - 1), min_size=1, max_size=4).map(tuple)
       .filter(lambda s: 4 + 4 * len(s) + int(np.prod(s, dtype=object)) > MAX_IDX_BYTES),
       compressed=st.booleans(), tail=st.integers(0, 4096))
def test_a_header_claiming_more_than_any_dataset_file_is_refused_unread(tmp_path, shape, compressed,
                                                                        tail):
    body = idx_header(shape) + bytes(tail)
    path = tmp_path / ("f.gz" if compressed else "f")
    path.write_bytes(gzip.compress(body) if compressed else body)
    start = time.perf_counter()
    with pytest.raises(DataError, match="declares") as info:
        read_idx(path)
    assert str(path) in str(info.value) and time.perf_counter() - start < 1


@pytest.mark.parametrize("name", sorted(IDX_BYTES))
@pytest.mark.parametrize("extra_images", [1, 7, 10**6])
def test_a_known_file_may_not_declare_more_than_its_own_size(tmp_path, name, extra_images):
    n = (IDX_BYTES[name] - 16) // 784 if "images" in name else IDX_BYTES[name] - 8
    shape = (n + extra_images, 28, 28) if "images" in name else (n + extra_images,)
    path = tmp_path / name
    path.write_bytes(idx_header(shape))
    with pytest.raises(DataError, match=f"{name} has {IDX_BYTES[name]}"):
        read_verified(path, name, "0" * 64)


def peak_growth_mb(script: str) -> float:
    """Run `script` (which defines `work()`) in a fresh process; the peak RSS it added, in MB."""
    code = textwrap.dedent("""
        import resource
        from tinyvae.lab.datasets.readers import DataError, read_idx
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    """) + textwrap.dedent(script) + textwrap.dedent("""
        work()
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return float(result.stdout)


def test_a_sparse_idx_file_declaring_3_gb_takes_no_memory(tmp_path):
    path = tmp_path / "sparse-idx"
    shape = (4_000_000, 28, 28)  # 3.1 GB
    with open(path, "wb") as f:
        f.write(idx_header(shape))
        f.truncate(len(idx_header(shape)) + 4_000_000 * 784)  # the right length, 4 KB on disk
    grown = peak_growth_mb(f"""
        def work():
            try:
                read_idx({str(path)!r})
            except DataError as exc:
                assert "declares" in str(exc)
            else:
                raise SystemExit("accepted")
    """)
    assert grown < 20


def test_a_gzip_inflating_past_its_header_stops_at_the_header_size(tmp_path):
    """A legal header for MNIST's training images, then far more data than it declares: reading
    stops one byte past the declared size, so memory stays near the real file's 47 MB."""
    path = tmp_path / "train-images-idx3-ubyte.gz"
    zeros = gzip.compress(bytes(2**24), compresslevel=1)  # a gzip member of 16 MiB of zeros
    # gzip members concatenate: the header, then 400 MB of zeros, in a file of under 2 MB
    path.write_bytes(gzip.compress(idx_header((60_000, 28, 28)), compresslevel=1) + zeros * 24)
    assert path.stat().st_size < 2 * 2**20  # the was 1.5 MB
    grown = peak_growth_mb(f"""
        def work():
            try:
                read_idx({str(path)!r})
            except DataError as exc:
                assert "more data than" in str(exc)
            else:
                raise SystemExit("accepted")
    """)
    assert grown < 3 * 47


# ---- downloads: a size cap and a deadline ----

class Server:
    """Serves one body per path:
    ("honest" | "no-length" | "lying-length" | "endless" | "trickle", body)."""

    def __init__(self):
        self.routes: dict[str, tuple[str, bytes]] = {}
        self.stop = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                kind, body = server.routes[self.path]
                self.send_response(200)
                if kind == "honest":
                    self.send_header("Content-Length", str(len(body)))
                elif kind == "lying-length":
                    self.send_header("Content-Length", str(10**13))
                self.end_headers()
                try:
                    if kind == "endless":
                        while not server.stop.is_set():
                            self.wfile.write(bytes(65536))
                    elif kind == "trickle":
                        for byte in body:
                            if server.stop.wait(0.05):
                                return
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                    else:
                        self.wfile.write(body)
                except OSError:
                    pass  # the client hung up: that is the point

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.close()


def accept(path):
    pass


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(0, 300_000), cap=st.integers(1, 300_000),
       kind=st.sampled_from(["honest", "no-length", "lying-length"]))
def test_a_body_larger_than_the_cap_is_refused_and_nothing_is_left(server, tmp_path_factory, size,
                                                                    cap, kind):
    folder = tmp_path_factory.mktemp("dl")
    server.routes[f"/f{size}-{kind}"] = (kind, bytes(size))
    url = f"{server.base}/f{size}-{kind}"
    if size <= cap and kind != "lying-length":
        download.fetch([url], folder / "f", verify=accept, max_bytes=cap, log=False)
        assert (folder / "f").stat().st_size == size
    else:
        with pytest.raises(download.DownloadError, match="at most"):
            download.fetch([url], folder / "f", verify=accept, max_bytes=cap, log=False)
    assert [p.name for p in folder.iterdir()] == (["f"] if size <= cap and kind != "lying-length"
                                                  else [])


def test_an_endless_body_stops_at_the_cap(server, tmp_path):
    server.routes["/endless"] = ("endless", b"")
    start = time.perf_counter()
    with pytest.raises(download.DownloadError, match="more than 5000000 bytes"):
        download.fetch([f"{server.base}/endless"], tmp_path / "f", verify=accept,
                       max_bytes=5_000_000, log=False)
    assert time.perf_counter() - start < 10 and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("deadline", [0.3, 0.6])
def test_a_trickle_that_never_trips_the_read_timeout_hits_the_deadline(server, tmp_path, deadline):
    server.routes["/trickle"] = ("trickle", bytes(200))  # 10 s at one byte per 0.05 s
    start = time.perf_counter()
    with pytest.raises(download.DownloadError, match="gave up after"):
        download.fetch([f"{server.base}/trickle"], tmp_path / "f", verify=accept, timeout=1.0,
                       deadline=deadline, log=False)
    # the deadline, give or take one read timeout
    assert time.perf_counter() - start < deadline + 1.0 + 0.5
    assert list(tmp_path.iterdir()) == []


def test_every_download_has_a_cap_and_a_deadline_by_default():
    assert (download.MAX_DOWNLOAD_BYTES >= 78_400_000
            and 0 < download.DEFAULT_DEADLINE < float("inf"))


def test_a_killed_downloads_partial_file_is_removed_by_the_next_download(server, tmp_path):
    orphans = [tmp_path / ".f.gz.abcd_123.part", tmp_path / ".f.gz.zzzzzzzz.part"]
    keep = [tmp_path / ".other.gz.abcd_123.part", tmp_path / "f.gz.notes"]
    for path in orphans + keep:
        path.write_bytes(b"half")
    server.routes["/f.gz"] = ("honest", b"the file")
    download.fetch([f"{server.base}/f.gz"], tmp_path / "f.gz", verify=accept, log=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["f.gz"] + [p.name for p in keep])


@pytest.mark.slow
def test_two_processes_fetching_one_file_take_turns(server, tmp_path):
    """The second waits for the first, then finds the verified file instead of fetching it again."""
    server.routes["/slow.gz"] = ("trickle", b"0123456789")  # half a second
    script = textwrap.dedent(f"""
        from tinyvae.lab.datasets import download
        download.fetch([{server.base + '/slow.gz'!r}], {str(tmp_path / 'slow.gz')!r},
                       verify=lambda p: None, log=False)
    """)
    runs = [subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
            for _ in range(3)]
    assert all(run.wait(timeout=60) == 0 for run in runs), [run.stderr.read() for run in runs]
    assert [p.name for p in tmp_path.iterdir()] == ["slow.gz"]
    assert (tmp_path / "slow.gz").read_bytes() == b"0123456789"
