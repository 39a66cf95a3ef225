"""Transfer benchmark: throughput and server memory for one large upload and download.

What it measures
    The design promises flat memory: uploads and downloads stream, so a 1 GiB file should
    need no more server memory than a 1 KiB one. This script checks that claim end to end
    on the embedded default (SQLite, files on local disk), served by gunicorn with one
    sync worker (``--workers``/``--threads`` change that; threads > 1 is gthread):

    1. In a fresh temporary directory it creates the database (``manage.py migrate``), the
       media and upload-spool folders, and a file of ``--size`` bytes (a random 1 MiB block
       repeated, each copy stamped with its index so that no two blocks are equal).
    2. It starts gunicorn on a free port of 127.0.0.1 and does a tiny warm-up round trip,
       so that lazy imports and first-request caches are not counted as growth.
    3. It uploads the file with ``PUT /api/v1/shares/<name>`` (``--mode put``, default), the
       body streamed from the open file, or with ``POST /api/v1/shares`` (``--mode
       multipart``), the multipart body produced on the fly by a small file-like encoder
       in this module (no requests-toolbelt needed), or with ``--mode put-chunked``, the
       body a generator of 1 MiB blocks sent with ``Transfer-Encoding: chunked`` (as
       ``curl -T -`` from a pipe). The client never holds the file in memory.
    4. It downloads it with ``POST /api/v1/shares/<token>/download`` (streamed), hashing
       what arrives, and compares the SHA-256 with the one the upload response reported
       and with the one computed while the file was written.

    Meanwhile a background thread reads ``/proc/<pid>/status`` of the gunicorn worker(s)
    (found as children of the master in ``/proc/<master>/task/*/children``) every 50 ms.
    Before each phase the kernel's peak-RSS counter is reset (``echo 5 >
    /proc/<pid>/clear_refs``), so ``VmHWM`` at the end of a phase is that phase's true
    peak, which catches spikes shorter than the sampling interval. The reported peak is
    the larger of the sampled ``VmRSS`` maximum and that ``VmHWM``. Growth is the peak
    minus the baseline taken after the warm-up; the target is under 64 MiB. With several
    workers the RSS figures are sums over the workers (idle ones add a constant).

    MB/s is 10^6 bytes per second; memory is in MiB (2^20 bytes).

    With ``--via nginx`` the client talks to nginx instead, started on a free loopback
    port with the repository's template (deploy/nginx/onetimeshare.conf.template, see
    nginx_front.py) in front of gunicorn, and the app offloads downloads to it
    (``DOWNLOAD_OFFLOAD=nginx``: the app answers ``X-Accel-Redirect`` and nginx sends the
    file from MEDIA_ROOT). nginx's workers are sampled too. With offload the bytes are
    deleted by a Celery task, and no worker runs here: the file stays until the end.

Download paths (``--compare-downloads``)
    One file of ``--size`` is uploaded once to each of three gunicorns, which share one
    database and MEDIA_ROOT: one with ``--no-sendfile`` (the app's pure-Python read loop),
    one with sendfile (``wsgi.file_wrapper``), both reached directly, and one with
    ``DOWNLOAD_OFFLOAD=nginx`` behind nginx. Each share allows 100 downloads. nginx also
    serves deploy/nginx/bench.conf.template with MEDIA_ROOT as its root: the ceiling is
    the very file the offload variant sends, fetched as a plain static file, with no app
    in the way. Each path serves one hashed download first (not timed: it checks the
    bytes and warms the path up), then ``--repeats`` (5) timed downloads, interleaved
    (each round starts one path later). Every download is made by the same client code
    (requests, ``stream=True``, 4 MiB ``iter_content`` chunks, bytes counted, not hashed).
    The table has the median MB/s of each path and its ratio to the ceiling's median,
    every run, the median CPU seconds per download of the client (this process), of the
    path's gunicorn worker(s) and of nginx's workers, and how long a download holds a
    gunicorn worker: the whole response when gunicorn sends the bytes, nginx's
    ``upstream_time`` (from its access log) with offload. The offload variant's access-log
    entries are checked on every run: nginx sent the bytes, gunicorn none.

How to run
    .venv/bin/python bench/transfer.py --size 1G
    .venv/bin/python bench/transfer.py --size 64M --mode multipart
    .venv/bin/python bench/transfer.py --size 1G --no-sendfile   # downloads through Python
    .venv/bin/python bench/transfer.py --size 1G --via nginx     # nginx in front, offload
    .venv/bin/python bench/transfer.py --compare-downloads --size 256M   # download paths
    .venv/bin/python bench/transfer.py --ref HEAD   # the last commit, not the working tree
    .venv/bin/python bench/transfer.py --workers 2 --threads 8   # as `make run` serves

It prints the command lines used and a Markdown table, and exits non-zero when the
downloaded bytes do not match, a request fails, or the deadline (``--deadline``) passes.
gunicorn and nginx are stopped and the temporary directory removed in every case (also on
SIGTERM). Every request has a timeout.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests
from nginx_front import Nginx, start_nginx, stop_nginx

REPO_DIR = Path(__file__).resolve().parent.parent
DJANGO_DIR = REPO_DIR / "django_backend"
TEMPLATES_DIR = REPO_DIR / "deploy" / "nginx"
MAIN_TEMPLATE = "onetimeshare.conf.template"
BENCH_TEMPLATE = "bench.conf.template"
PYTHON = sys.executable

MIB = 1024 * 1024
BLOCK = MIB
SAMPLE_INTERVAL = 0.05
GROWTH_TARGET_MIB = 64
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 300
START_TIMEOUT = 30
STOP_TIMEOUT = 30
CLIENT_CHUNK = 4 * MIB  # iter_content chunk of the --compare-downloads client
MAX_DOWNLOADS = 100  # the app's MAX_DOWNLOADS_LIMIT: one share serves all repeats

_SUFFIXES = {"": 1, "K": 1024, "M": MIB, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int:
    """Bytes from '1073741824', '64M', '1G', '512KiB' (binary units)."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 64M or 1G)")
    value = int(match.group(1)) * _SUFFIXES[match.group(2)]
    if value < 1:
        raise argparse.ArgumentTypeError("size must be at least 1 byte")
    return value


def human_size(size: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", MIB), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


def make_file(path: Path, size: int) -> str:
    """Write `size` bytes of cheap random-ish data; return their SHA-256."""
    block = bytearray(secrets.token_bytes(BLOCK))
    hasher = hashlib.sha256()
    written = 0
    index = 0
    with path.open("wb") as out:
        while written < size:
            block[:8] = index.to_bytes(8, "big")
            chunk = memoryview(block)[: min(BLOCK, size - written)]
            out.write(chunk)
            hasher.update(chunk)
            written += len(chunk)
            index += 1
    return hasher.hexdigest()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- server memory -------------------------------------------------------------------------


def child_pids(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            children.extend(int(p) for p in (task / "children").read_text().split())
    return sorted(children)


def status_kib(pid: int, key: str) -> int:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM); 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (/proc/<pid>/stat); 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak(pid: int) -> bool:
    """Reset the process's VmHWM to its current RSS (Linux 4.0+); False if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class Phase:
    """Peak memory of the workers during one phase, in KiB (summed over workers), and the
    CPU time they used, in seconds."""

    peak_sampled: int = 0
    hwm: int = 0
    samples: int = 0
    cpu_seconds: float = 0.0

    @property
    def peak(self) -> int:
        return max(self.peak_sampled, self.hwm)


@dataclass
class RssMonitor:
    """Samples VmRSS of the worker processes in a background thread."""

    pids: list[int]
    phase: Phase = field(default_factory=Phase)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _hwm_reset: bool = False

    def rss(self) -> int:
        return sum(status_kib(pid, "VmRSS") for pid in self.pids)

    def baseline(self, samples: int = 5) -> int:
        """The workers' resting RSS: the lowest of a few samples."""
        values = []
        for _ in range(samples):
            values.append(self.rss())
            time.sleep(SAMPLE_INTERVAL)
        return min(values)

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def start(self) -> None:
        self.phase = Phase(cpu_seconds=-self.cpu())
        self._hwm_reset = all(reset_peak(pid) for pid in self.pids)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="rss-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> Phase:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sample()
        self.phase.cpu_seconds += self.cpu()
        if self._hwm_reset:
            self.phase.hwm = sum(status_kib(pid, "VmHWM") for pid in self.pids)
        return self.phase

    def _sample(self) -> None:
        self.phase.peak_sampled = max(self.phase.peak_sampled, self.rss())
        self.phase.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL):
            self._sample()


# --- gunicorn ------------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen
    command: list[str]
    base_url: str
    log_path: Path

    def workers(self) -> list[int]:
        return child_pids(self.process.pid)

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def server_env(tmp: Path, size: int, *, offload: bool = False) -> dict[str, str]:
    """The app's environment: everything in `tmp`, plain HTTP, no throttling.

    With `offload`, the app sits behind nginx: it answers downloads with X-Accel-Redirect
    (DOWNLOAD_OFFLOAD=nginx) and takes the client's address from nginx's X-Real-IP.
    """
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        MEDIA_ROOT=str(tmp / "media"),
        FILE_UPLOAD_TEMP_DIR=str(tmp / "spool"),
        MAX_UPLOAD_SIZE=str(max(size, MIB) + MIB),
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        # Plain HTTP on loopback: with debug off the app would otherwise redirect to https.
        DJANGO_SECURE_SSL_REDIRECT="0",
        DJANGO_SECURE_COOKIES="0",
        SITE_URL="",
        STORAGE_BACKEND="local",
        # Repeated runs from one address must not be throttled.
        RATE_LIMIT_UPLOADS="100000/h",
        RATE_LIMIT_DOWNLOADS="100000/h",
        # No Celery worker runs in the benchmark. The purge task that a last download
        # enqueues goes to an in-process broker and is dropped with the process, instead of
        # being queued under the repository's var/celery/ for a later worker.
        CELERY_BROKER_URL="memory://",
        LOG_LEVEL="WARNING",
    )
    if offload:
        env.update(
            DOWNLOAD_OFFLOAD="nginx",
            DOWNLOAD_OFFLOAD_LOCATION="/_protected/",
            CLIENT_IP_HEADER="HTTP_X_REAL_IP",
        )
    else:
        env.update(DOWNLOAD_OFFLOAD="off", CLIENT_IP_HEADER="REMOTE_ADDR")
    return env


def prepare_site(tmp: Path, django_dir: Path, env: dict[str, str]) -> None:
    """The media and spool folders and the database, migrated."""
    (tmp / "media").mkdir(exist_ok=True)
    (tmp / "spool").mkdir(exist_ok=True)
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=django_dir,
        env=env,
        check=True,
        timeout=120,
    )


def start_server(
    tmp: Path,
    django_dir: Path,
    env: dict[str, str],
    args: argparse.Namespace,
    *,
    sendfile: bool | None = None,
    name: str = "gunicorn",
) -> Server:
    """gunicorn on a free port of 127.0.0.1, answering /health/ with all its workers up.

    `sendfile` None follows --no-sendfile; `name` names its log in `tmp`.
    """
    if sendfile is None:
        sendfile = not args.no_sendfile
    port = free_port()
    command = [
        str(Path(PYTHON).parent / "gunicorn"),
        "core.wsgi",
        "--chdir",
        str(django_dir),
        "--worker-class",
        "sync" if args.threads == 1 else "gthread",
        "--workers",
        str(args.workers),
        "--threads",
        str(args.threads),
        "--timeout",
        str(args.worker_timeout),
        "--bind",
        f"127.0.0.1:{port}",
    ]
    if not sendfile:
        command.append("--no-sendfile")
    log_path = tmp / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Server(process, command, f"http://127.0.0.1:{port}", log_path)
    try:
        wait_ready(server, args.workers)
    except BaseException:
        stop_server(process)
        raise
    return server


def wait_ready(server: Server, workers: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"gunicorn exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        with contextlib.suppress(requests.RequestException):
            response = requests.get(f"{server.base_url}/health/", timeout=2)
            if response.status_code == 200 and len(server.workers()) == workers:
                return
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer within {START_TIMEOUT} s:\n{server.log_tail()}")


def stop_server(process: subprocess.Popen) -> None:
    """SIGTERM the master (it stops its workers), wait, SIGKILL as a last resort."""
    if process.poll() is not None:
        return
    workers = child_pids(process.pid)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO_DIR), *args], check=True, capture_output=True, timeout=60
    ).stdout.decode()


def checkout(tmp: Path, ref: str | None) -> tuple[Path, Path, str]:
    """The django_backend to serve, the nginx templates, and a description of them.

    Without `ref`, the working tree as it is. With `ref`, that commit's django_backend and
    deploy/nginx, exported with `git archive` into the temporary directory, so that edits
    in progress in the working tree cannot change or break the measurement.
    """
    if ref is None:
        try:
            head = git("rev-parse", "--short", "HEAD").strip()
            dirty = git("status", "--porcelain", "--", "django_backend", "deploy").strip()
        except (OSError, subprocess.SubprocessError):
            return DJANGO_DIR, TEMPLATES_DIR, f"working tree {REPO_DIR}"
        state = " with uncommitted changes" if dirty else ""
        return DJANGO_DIR, TEMPLATES_DIR, f"working tree at {head}{state}"
    sha = git("rev-parse", "--verify", f"{ref}^{{commit}}").strip()
    paths = ["django_backend"]
    if git("ls-tree", "--name-only", sha, "deploy/nginx").strip():
        paths.append("deploy/nginx")
    archive = subprocess.run(
        ["git", "-C", str(REPO_DIR), "archive", "--format=tar", sha, *paths],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    src = tmp / "src"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(src, filter="data")
    description = f"{ref} = {sha[:12]} (exported with git archive)"
    return src / "django_backend", src / "deploy" / "nginx", description


# --- client --------------------------------------------------------------------------------


class MultipartBody:
    """A multipart/form-data body read from disk as it is sent.

    requests sees `__len__` and sends a Content-Length; urllib3 then calls `read()` in
    blocks, so the file is never loaded whole. `fields` (small form fields such as
    max_downloads) go before the `file` field; the others keep their defaults.
    """

    def __init__(self, path: Path, filename: str, fields: dict[str, str] | None = None) -> None:
        self.boundary = f"bench-{uuid.uuid4().hex}"
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        parts = [
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in (fields or {}).items()
        ]
        parts.append(
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        head = "".join(parts).encode()
        tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._size = len(head) + path.stat().st_size + len(tail)
        self._parts: Iterator[bytes] = self._generate(head, path, tail)
        self._current = b""
        self._offset = 0

    @staticmethod
    def _generate(head: bytes, path: Path, tail: bytes) -> Iterator[bytes]:
        yield head
        with path.open("rb") as source:
            while chunk := source.read(BLOCK):
                yield chunk
        yield tail

    def __len__(self) -> int:
        return self._size

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._size
        pieces = []
        while size > 0:
            if self._offset >= len(self._current):
                part = next(self._parts, None)
                if part is None:
                    break
                self._current, self._offset = part, 0
            piece = self._current[self._offset : self._offset + size]
            self._offset += len(piece)
            size -= len(piece)
            pieces.append(piece)
        return b"".join(pieces)


def read_blocks(path: Path) -> Iterator[bytes]:
    """The file in 1 MiB blocks: a body of unknown length, sent chunked."""
    with path.open("rb") as source:
        while chunk := source.read(BLOCK):
            yield chunk


@dataclass
class Endpoint:
    """Where the client sends its requests (gunicorn, or nginx in front of it), and the
    logs to show when a request fails."""

    base_url: str
    logs: Callable[[], str]


def upload(
    endpoint: Endpoint,
    path: Path,
    mode: str,
    timeout: tuple[int, int],
    *,
    max_downloads: int = 1,
) -> dict:
    options = {"max_downloads": str(max_downloads)}
    if mode == "multipart":
        body = MultipartBody(path, path.name, options)
        response = requests.post(
            f"{endpoint.base_url}/api/v1/shares",
            data=body,
            headers={"Content-Type": body.content_type},
            timeout=timeout,
        )
    elif mode == "put-chunked":
        response = requests.put(
            f"{endpoint.base_url}/api/v1/shares/{path.name}",
            params=options,
            data=read_blocks(path),
            headers={"Content-Type": "application/octet-stream"},
            timeout=timeout,
        )
    else:
        with path.open("rb") as source:
            response = requests.put(
                f"{endpoint.base_url}/api/v1/shares/{path.name}",
                params=options,
                data=source,
                headers={"Content-Type": "application/octet-stream"},
                timeout=timeout,
            )
    if response.status_code != 201:
        raise RuntimeError(
            f"upload answered {response.status_code}: {response.text[:500]}\n"
            f"server log:\n{endpoint.logs()}"
        )
    return response.json()


def download(endpoint: Endpoint, token: str, timeout: tuple[int, int]) -> tuple[int, str]:
    """Stream the share; return (bytes received, their SHA-256)."""
    hasher = hashlib.sha256()
    received = 0
    with requests.post(
        f"{endpoint.base_url}/api/v1/shares/{token}/download", stream=True, timeout=timeout
    ) as response:
        if response.status_code != 200:
            raise RuntimeError(
                f"download answered {response.status_code}: {response.text[:500]}\n"
                f"server log:\n{endpoint.logs()}"
            )
        for chunk in response.iter_content(chunk_size=BLOCK):
            hasher.update(chunk)
            received += len(chunk)
    return received, hasher.hexdigest()


def both_logs(server: Server, nginx: Nginx) -> str:
    return f"--- gunicorn ---\n{server.log_tail()}\n{nginx.log_tail()}"


# --- nginx ---------------------------------------------------------------------------------


def start_front(
    tmp: Path,
    templates: Path,
    *,
    upstream: Server | None,
    max_body: int,
    bench_root: Path | None = None,
) -> tuple[Nginx, str | None, str | None]:
    """nginx on loopback: the app's template in front of `upstream` and, with `bench_root`,
    the bench template serving that folder as plain static files under /_bench/.

    Returns nginx and the base URLs of the two servers (None for one not asked for).
    """
    needed = [MAIN_TEMPLATE] * (upstream is not None) + [BENCH_TEMPLATE] * (bench_root is not None)
    for name in needed:
        if not (templates / name).is_file():
            raise RuntimeError(f"no {templates / name} (a --ref from before deploy/nginx?)")
    sites: list[tuple[Path, dict[str, str]]] = []
    ports = []
    app_url = bench_url = None
    if upstream is not None:
        port = free_port()
        sites.append(
            (
                templates / MAIN_TEMPLATE,
                {
                    "NGINX_LISTEN": f"127.0.0.1:{port}",
                    "UPSTREAM": upstream.base_url.removeprefix("http://"),
                    # Django's STATIC_ROOT (var/static, fixed in settings); the benchmark
                    # fetches no static file, so it need not exist.
                    "STATIC_ROOT": str(REPO_DIR / "var" / "static"),
                    "MEDIA_ROOT": str(tmp / "media"),
                    # MAX_UPLOAD_SIZE plus 1 MiB, as the template asks; nginx takes bytes.
                    "CLIENT_MAX_BODY_SIZE": str(max_body + MIB),
                    "REAL_IP_FROM": "127.0.0.1",
                },
            )
        )
        ports.append(port)
        app_url = f"http://127.0.0.1:{port}"
    if bench_root is not None:
        port = free_port()
        sites.append(
            (
                templates / BENCH_TEMPLATE,
                {"BENCH_LISTEN": f"127.0.0.1:{port}", "BENCH_ROOT": str(bench_root)},
            )
        )
        ports.append(port)
        bench_url = f"http://127.0.0.1:{port}/_bench"
    nginx = start_nginx(tmp / "nginx", sites, ports)
    return nginx, app_url, bench_url


# --- the run -------------------------------------------------------------------------------


@dataclass
class Result:
    size: int
    mode: str
    upload_seconds: float
    download_seconds: float
    baseline_kib: int
    upload_peak_kib: int
    download_peak_kib: int
    hwm_reset: bool
    purged: bool | None  # None: not checked (offload; no Celery worker deletes the bytes)
    upload_cpu: float
    download_cpu: float
    nginx: NginxUsage | None = None

    @property
    def growth_kib(self) -> int:
        return max(self.upload_peak_kib, self.download_peak_kib) - self.baseline_kib

    def table(self) -> str:
        def mbps(seconds: float) -> str:
            return f"{self.size / seconds / 1e6:.1f}" if seconds > 0 else "n/a"

        ok = self.growth_kib < GROWTH_TARGET_MIB * 1024
        rows = [
            "| size | mode | upload MB/s | download MB/s | baseline RSS (MiB) "
            "| peak RSS upload (MiB) | peak RSS download (MiB) | growth (MiB) "
            f"| growth < {GROWTH_TARGET_MIB} MiB |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {human_size(self.size)} | {self.mode} | {mbps(self.upload_seconds)} "
            f"| {mbps(self.download_seconds)} | {mib(self.baseline_kib)} "
            f"| {mib(self.upload_peak_kib)} | {mib(self.download_peak_kib)} "
            f"| {mib(self.growth_kib)} | {'yes' if ok else 'NO'} |",
        ]
        return "\n".join(rows)


@dataclass
class NginxUsage:
    """RSS (KiB, summed over nginx's workers) and CPU seconds of nginx, per phase."""

    workers: int
    baseline_kib: int
    upload_peak_kib: int
    download_peak_kib: int
    upload_cpu: float
    download_cpu: float

    def line(self) -> str:
        return (
            f"nginx ({self.workers} workers, summed): baseline RSS {mib(self.baseline_kib)} MiB, "
            f"peak upload {mib(self.upload_peak_kib)} MiB, "
            f"peak download {mib(self.download_peak_kib)} MiB; "
            f"CPU upload {self.upload_cpu:.2f} s, download {self.download_cpu:.2f} s"
        )


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def describe_mode(args: argparse.Namespace) -> str:
    parts = [args.mode]
    if args.threads > 1:
        parts.append(f"gthread {args.workers}x{args.threads}")
    elif args.workers > 1:
        parts.append(f"sync x{args.workers}")
    if args.no_sendfile and args.via != "nginx":
        parts.append("no-sendfile")
    if args.via == "nginx":
        parts.append("via nginx (offload)")
    return ", ".join(parts)


def wait_purged(media: Path, seconds: float = 5.0) -> bool:
    """Whether the share's bytes left MEDIA_ROOT after its last download."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(p.is_file() for p in (media / "shares").glob("*")):
            return True
        time.sleep(0.1)
    return False


DOWNLOAD_LOG_PATH = "/api/v1/shares/<token>/download"  # as the template's log redacts it


def download_entries(nginx: Nginx) -> list[dict[str, str]]:
    """nginx's access-log entries for downloads, as dicts of their key=value fields."""
    entries = []
    with contextlib.suppress(OSError):
        for line in nginx.access_log.read_text(errors="replace").splitlines():
            fields = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
            if fields.get("path") == DOWNLOAD_LOG_PATH:
                entries.append(fields)
    return entries


def check_offloaded(nginx: Nginx, size: int, seen_before: int) -> dict[str, str]:
    """That nginx, not gunicorn, sent the last download's bytes (upstream_bytes=0); its
    access-log entry. nginx logs a request once the response is sent, which may be a
    moment after the client has the last byte."""
    deadline = time.monotonic() + 3.0
    entries = download_entries(nginx)
    while len(entries) <= seen_before and time.monotonic() < deadline:
        time.sleep(0.05)
        entries = download_entries(nginx)
    entry = entries[-1] if len(entries) > seen_before else {}
    if entry.get("bytes") != str(size) or entry.get("upstream_bytes") != "0":
        raise RuntimeError(
            f"the download was not offloaded to nginx (access log: {entry or 'no entry'}):\n"
            f"{nginx.log_tail()}"
        )
    return entry


def run(tmp: Path, args: argparse.Namespace) -> Result:
    timeout = (CONNECT_TIMEOUT, READ_TIMEOUT)
    data = tmp / f"bench-{args.size}.bin"
    print(f"Writing {human_size(args.size)} to {data} ...", flush=True)
    expected = make_file(data, args.size)

    via_nginx = args.via == "nginx"
    env = server_env(tmp, args.size, offload=via_nginx)
    django_dir, templates, source = checkout(tmp, args.ref)
    print("code:", source, flush=True)
    prepare_site(tmp, django_dir, env)
    server: Server | None = None
    nginx: Nginx | None = None
    try:
        server = start_server(tmp, django_dir, env, args)
        print("gunicorn:", shlex.join(server.command), flush=True)
        workers = server.workers()
        print(f"gunicorn master {server.process.pid}, worker(s) {workers}", flush=True)
        endpoint = Endpoint(server.base_url, server.log_tail)
        nginx_monitor: RssMonitor | None = None
        if via_nginx:
            nginx, app_url, _ = start_front(
                tmp, templates, upstream=server, max_body=int(env["MAX_UPLOAD_SIZE"])
            )
            print("nginx:", shlex.join(nginx.command), flush=True)
            print(f"nginx master {nginx.process.pid}, worker(s) {nginx.workers()}", flush=True)
            front, app = nginx, server
            endpoint = Endpoint(str(app_url), lambda: both_logs(app, front))
            nginx_monitor = RssMonitor(nginx.workers())
        monitors = [RssMonitor(workers), *([nginx_monitor] if nginx_monitor else [])]

        # Warm-up: first request, lazy imports, one tiny share through the whole path.
        warm = tmp / "warmup.txt"
        warm.write_bytes(b"warm-up\n")
        share = upload(endpoint, warm, args.mode, timeout)
        download(endpoint, share["token"], timeout)
        time.sleep(0.5)

        baselines = [monitor.baseline() for monitor in monitors]

        print(f"Uploading ({args.mode}{', via nginx' if via_nginx else ''}) ...", flush=True)
        for monitor in monitors:
            monitor.start()
        started = time.perf_counter()
        share = upload(endpoint, data, args.mode, timeout)
        upload_seconds = time.perf_counter() - started
        up = [monitor.stop() for monitor in monitors]

        if server.workers() != workers:
            raise RuntimeError(f"worker(s) restarted during the upload:\n{endpoint.logs()}")
        if share.get("size") != args.size:
            raise RuntimeError(f"server recorded {share.get('size')} bytes, sent {args.size}")

        print("Downloading ...", flush=True)
        logged = len(download_entries(nginx)) if nginx else 0
        for monitor in monitors:
            monitor.start()
        started = time.perf_counter()
        received, digest = download(endpoint, share["token"], timeout)
        download_seconds = time.perf_counter() - started
        down = [monitor.stop() for monitor in monitors]

        if server.workers() != workers:
            raise RuntimeError(f"worker(s) restarted during the download:\n{endpoint.logs()}")
        problems = []
        if received != args.size:
            problems.append(f"received {received} bytes, expected {args.size}")
        if share["sha256"] != expected:
            problems.append(f"server sha256 {share['sha256']} != local {expected}")
        if digest != share["sha256"]:
            problems.append(f"downloaded sha256 {digest} != server's {share['sha256']}")
        if problems:
            raise MismatchError("; ".join(problems))
        print(f"sha256 {digest}: local, server and download agree", flush=True)
        usage = None
        if nginx is not None:
            check_offloaded(nginx, args.size, logged)
            print("nginx sent the download's bytes itself (upstream_bytes=0)", flush=True)
            usage = NginxUsage(
                workers=len(monitors[1].pids),
                baseline_kib=baselines[1],
                upload_peak_kib=up[1].peak,
                download_peak_kib=down[1].peak,
                upload_cpu=up[1].cpu_seconds,
                download_cpu=down[1].cpu_seconds,
            )

        return Result(
            size=args.size,
            mode=describe_mode(args),
            upload_seconds=upload_seconds,
            download_seconds=download_seconds,
            baseline_kib=baselines[0],
            upload_peak_kib=up[0].peak,
            download_peak_kib=down[0].peak,
            hwm_reset=bool(up[0].hwm and down[0].hwm),
            # With offload the bytes are deleted by the purge task, and no worker runs here.
            purged=None if via_nginx else wait_purged(Path(env["MEDIA_ROOT"])),
            upload_cpu=up[0].cpu_seconds,
            download_cpu=down[0].cpu_seconds,
            nginx=usage,
        )
    finally:
        if nginx is not None:
            stop_nginx(nginx)
        if server is not None:
            stop_server(server.process)


class MismatchError(Exception):
    """The downloaded bytes are not the uploaded ones."""


# --- download paths compared ---------------------------------------------------------------


@dataclass
class Sample:
    """One download: wall time, and the CPU seconds of the client (this process), of the
    app's gunicorn worker(s) and of nginx's workers meanwhile; and how long the download
    held a gunicorn worker (its sync worker or gthread thread), in seconds: the whole
    response when gunicorn sends the bytes, nginx's upstream_time with offload."""

    seconds: float
    client_cpu: float
    app_cpu: float
    nginx_cpu: float
    app_busy: float = 0.0


@dataclass
class Variant:
    name: str
    method: str
    url: str
    app_workers: list[int]  # gunicorn workers that take part (none for the ceiling)
    logs: Callable[[], str]
    offloaded: bool = False  # the app answers X-Accel-Redirect, nginx sends the bytes
    samples: list[Sample] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(sample, attribute) for sample in self.samples)

    def mbps(self, size: int) -> float:
        return size / self.median("seconds") / 1e6


def fetch(
    variant: Variant,
    size: int,
    nginx_workers: list[int],
    timeout: tuple[int, int],
    digest: Callable[[bytes], object] | None = None,
) -> Sample:
    """One download of `variant` by the same client code for every variant: requests,
    streamed, large chunks; the bytes are counted, and passed to `digest` only for the
    verification download, which is not timed."""
    client_before = time.process_time()
    app_before = sum(cpu_seconds(pid) for pid in variant.app_workers)
    nginx_before = sum(cpu_seconds(pid) for pid in nginx_workers)
    received = 0
    started = time.perf_counter()
    with requests.request(variant.method, variant.url, stream=True, timeout=timeout) as response:
        if response.status_code != 200:
            raise RuntimeError(
                f"{variant.name}: {variant.method} answered {response.status_code}: "
                f"{response.text[:500]}\n{variant.logs()}"
            )
        for chunk in response.iter_content(chunk_size=CLIENT_CHUNK):
            received += len(chunk)
            if digest is not None:
                digest(chunk)
    seconds = time.perf_counter() - started
    if received != size:
        raise MismatchError(f"{variant.name}: received {received} bytes, expected {size}")
    return Sample(
        seconds=seconds,
        client_cpu=time.process_time() - client_before,
        app_cpu=sum(cpu_seconds(pid) for pid in variant.app_workers) - app_before,
        nginx_cpu=sum(cpu_seconds(pid) for pid in nginx_workers) - nginx_before,
        # Replaced by nginx's upstream_time for an offloaded download.
        app_busy=seconds if variant.app_workers else 0.0,
    )


@dataclass
class Comparison:
    size: int
    repeats: int
    variants: list[Variant]
    uploads: dict[str, float]  # variant name -> upload seconds

    def table(self) -> str:
        ceiling = self.variants[-1].mbps(self.size)
        rows = [
            "| variant | median MB/s | ratio to ceiling | runs (MB/s) | client CPU (s) "
            "| gunicorn CPU (s) | gunicorn busy (s) | nginx CPU (s) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for variant in self.variants:
            runs = ", ".join(f"{self.size / s.seconds / 1e6:.0f}" for s in variant.samples)
            app = f"{variant.median('app_cpu'):.2f}" if variant.app_workers else "-"
            busy = f"{variant.median('app_busy'):.3f}" if variant.app_workers else "-"
            rows.append(
                f"| {variant.name} | {variant.mbps(self.size):.1f} "
                f"| {variant.mbps(self.size) / ceiling:.2f} | {runs} "
                f"| {variant.median('client_cpu'):.2f} | {app} | {busy} "
                f"| {variant.median('nginx_cpu'):.2f} |"
            )
        return "\n".join(rows)


def stored_files(media: Path) -> set[Path]:
    return {path for path in (media / "shares").glob("*") if path.is_file()}


def compare(tmp: Path, args: argparse.Namespace) -> Comparison:
    """Download one file of --size through each path, --repeats times, interleaved.

    Three gunicorns share one database and MEDIA_ROOT: (1) without sendfile, (2) with
    sendfile, both reached directly, and (3) with DOWNLOAD_OFFLOAD=nginx behind nginx with
    the app's template. Each gets one share of the file (max_downloads 100), uploaded
    once. nginx also serves the bench template with MEDIA_ROOT as its root, so that (4),
    the ceiling, is the file that (3) offloads, fetched as a plain static file.
    """
    timeout = (CONNECT_TIMEOUT, READ_TIMEOUT)
    data = tmp / f"bench-{args.size}.bin"
    print(f"Writing {human_size(args.size)} to {data} ...", flush=True)
    expected = make_file(data, args.size)

    direct_env = server_env(tmp, args.size)
    offload_env = server_env(tmp, args.size, offload=True)
    offload_env["DJANGO_SECRET_KEY"] = direct_env["DJANGO_SECRET_KEY"]
    django_dir, templates, source = checkout(tmp, args.ref)
    print("code:", source, flush=True)
    prepare_site(tmp, django_dir, direct_env)
    media = tmp / "media"

    servers: list[Server] = []
    nginx: Nginx | None = None
    try:
        python = start_server(tmp, django_dir, direct_env, args, sendfile=False, name="python")
        servers.append(python)
        sendfile = start_server(tmp, django_dir, direct_env, args, sendfile=True, name="sendfile")
        servers.append(sendfile)
        offload = start_server(tmp, django_dir, offload_env, args, name="offload")
        servers.append(offload)
        for server in servers:
            print(f"gunicorn ({server.log_path.stem}):", shlex.join(server.command), flush=True)
        nginx, app_url, bench_url = start_front(
            tmp,
            templates,
            upstream=offload,
            max_body=int(offload_env["MAX_UPLOAD_SIZE"]),
            bench_root=media,
        )
        print("nginx:", shlex.join(nginx.command), flush=True)
        front = nginx
        nginx_workers = nginx.workers()

        endpoints = {
            "python": Endpoint(python.base_url, python.log_tail),
            "sendfile": Endpoint(sendfile.base_url, sendfile.log_tail),
            "offload": Endpoint(str(app_url), lambda: both_logs(offload, front)),
        }
        uploads: dict[str, float] = {}
        shares: dict[str, dict] = {}
        ceiling_name = ""
        for key, endpoint in endpoints.items():
            # Warm-up: first request, lazy imports.
            warm = tmp / "warmup.txt"
            warm.write_bytes(b"warm-up\n")
            download(endpoint, upload(endpoint, warm, args.mode, timeout)["token"], timeout)
            before = stored_files(media)
            print(f"Uploading for {key} ({args.mode}) ...", flush=True)
            started = time.perf_counter()
            shares[key] = upload(endpoint, data, args.mode, timeout, max_downloads=MAX_DOWNLOADS)
            uploads[key] = time.perf_counter() - started
            if shares[key]["sha256"] != expected or shares[key]["size"] != args.size:
                raise MismatchError(f"{key}: the server stored other bytes: {shares[key]}")
            new_files = stored_files(media) - before
            if len(new_files) != 1:
                raise RuntimeError(f"{key}: expected one new file in MEDIA_ROOT: {new_files}")
            if key == "offload":
                ceiling_name = new_files.pop().relative_to(media).as_posix()

        variants = [
            Variant(
                "gunicorn, pure Python (--no-sendfile)",
                "POST",
                f"{python.base_url}/api/v1/shares/{shares['python']['token']}/download",
                python.workers(),
                python.log_tail,
            ),
            Variant(
                "gunicorn, sendfile",
                "POST",
                f"{sendfile.base_url}/api/v1/shares/{shares['sendfile']['token']}/download",
                sendfile.workers(),
                sendfile.log_tail,
            ),
            Variant(
                "nginx offload (X-Accel-Redirect)",
                "POST",
                f"{app_url}/api/v1/shares/{shares['offload']['token']}/download",
                offload.workers(),
                endpoints["offload"].logs,
                offloaded=True,
            ),
            Variant(
                "nginx static file (ceiling)",
                "GET",
                f"{bench_url}/{ceiling_name}",
                [],
                front.log_tail,
            ),
        ]

        # One hashed download per variant, not timed: the bytes are right, and each path
        # has served the file once before the timed runs.
        for variant in variants:
            logged = len(download_entries(nginx))
            hasher = hashlib.sha256()
            fetch(variant, args.size, nginx_workers, timeout, hasher.update)
            if hasher.hexdigest() != expected:
                raise MismatchError(f"{variant.name}: sha256 {hasher.hexdigest()} != {expected}")
            if variant.offloaded:
                check_offloaded(nginx, args.size, logged)
        print(f"sha256 {expected}: every path sent the uploaded bytes", flush=True)

        # Timed runs, interleaved (each round starts one variant later), so that a busy
        # moment of a shared machine does not land on one variant only.
        for round_ in range(args.repeats):
            shift = round_ % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                logged = len(download_entries(nginx))
                sample = fetch(variant, args.size, nginx_workers, timeout)
                if variant.offloaded:
                    entry = check_offloaded(nginx, args.size, logged)
                    # One upstream, so one number (several would be listed, comma-separated).
                    busy = re.match(r"[\d.]+", entry.get("upstream_time", ""))
                    sample.app_busy = float(busy.group()) if busy else float("nan")
                variant.samples.append(sample)
                print(
                    f"round {round_ + 1}/{args.repeats}: {variant.name}: "
                    f"{args.size / sample.seconds / 1e6:.0f} MB/s",
                    flush=True,
                )
        for server in servers:
            if server.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited during the runs:\n{server.log_tail()}")
        return Comparison(args.size, args.repeats, variants, uploads)
    finally:
        if nginx is not None:
            stop_nginx(nginx)
        for server in servers:
            stop_server(server.process)


def machine_note() -> str:
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"{os.cpu_count()} CPUs, load average {load}, Python {sys.version.split()[0]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size", type=parse_size, default=parse_size("1G"), help="e.g. 64M, 1G (default 1G)"
    )
    parser.add_argument(
        "--mode",
        choices=["put", "put-chunked", "multipart"],
        default="put",
        help="put: raw body with Content-Length (default); put-chunked: raw body from a "
        "generator, Transfer-Encoding: chunked; multipart: POST /api/v1/shares",
    )
    parser.add_argument(
        "--no-sendfile",
        action="store_true",
        help="pass --no-sendfile to gunicorn: downloads go through Python instead of sendfile()",
    )
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers (default 1)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads per worker: 1 is the sync worker (default), more is gthread "
        "(make run uses --workers 2 --threads 8)",
    )
    parser.add_argument(
        "--worker-timeout",
        type=int,
        default=900,
        help="gunicorn --timeout: a sync worker busy longer than this is killed (default 900)",
    )
    parser.add_argument(
        "--deadline", type=int, default=1800, help="give up after this many seconds overall"
    )
    parser.add_argument(
        "--ref",
        default=None,
        help="benchmark this commit (exported with git archive) instead of the working tree",
    )
    parser.add_argument(
        "--via",
        choices=["direct", "nginx"],
        default="direct",
        help="direct: the client talks to gunicorn (default); nginx: to nginx with the "
        "repository's template in front of gunicorn, downloads offloaded "
        "(DOWNLOAD_OFFLOAD=nginx, X-Accel-Redirect)",
    )
    parser.add_argument(
        "--compare-downloads",
        action="store_true",
        help="compare the download paths on one file of --size: gunicorn without and with "
        "sendfile, nginx offload, and nginx serving the file as a static file (the ceiling)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="timed downloads per path with --compare-downloads; the median counts (default 5)",
    )
    parser.add_argument("--tmp-dir", type=Path, default=None, help="parent of the temp dir")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.compare_downloads and args.repeats + 1 > MAX_DOWNLOADS:
        parser.error(f"--repeats must be below {MAX_DOWNLOADS} (one share per path)")
    if args.compare_downloads and (args.via != "direct" or args.no_sendfile):
        parser.error("--compare-downloads runs every path itself: no --via, no --no-sendfile")

    print("command:", shlex.join([PYTHON, *sys.argv]), flush=True)
    print("machine:", machine_note(), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="ots-bench-", dir=args.tmp_dir))
    # The deadline: stop by interrupting the main thread, whose cleanup then runs. A
    # SIGTERM (a CI job cancelled, `timeout`) is handled the same way.
    timer = threading.Timer(args.deadline, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.daemon = True
    timer.start()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if args.compare_downloads:
            comparison = compare(tmp, args)
        else:
            result = run(tmp, args)
    except MismatchError as exc:
        print(f"FAILED: the downloaded bytes do not match: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"FAILED: interrupted (signal, or the deadline of {args.deadline} s)", file=sys.stderr
        )
        return 3
    except (RuntimeError, OSError, requests.RequestException, subprocess.SubprocessError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 2
    finally:
        timer.cancel()
        shutil.rmtree(tmp, ignore_errors=True)

    if args.compare_downloads:
        print_comparison(comparison)
        return 0

    print()
    print(result.table())
    print()
    if result.nginx is not None:
        print(result.nginx.line())
    if not result.hwm_reset:
        print("note: could not reset VmHWM; peaks are from 50 ms samples of VmRSS only")
    print(
        f"worker CPU time: upload {result.upload_cpu:.2f} s in {result.upload_seconds:.2f} s, "
        f"download {result.download_cpu:.2f} s in {result.download_seconds:.2f} s"
    )
    if result.purged is None:
        purged = "not checked (offload: the purge task deletes them, and no worker runs here)"
    else:
        purged = "yes" if result.purged else "NO"
    print(f"share bytes purged after the download: {purged}")
    return 0


def print_comparison(comparison: Comparison) -> None:
    size = comparison.size
    print()
    print(
        f"Downloads of one {human_size(size)} file, median of {comparison.repeats} "
        f"(interleaved), ratio to nginx serving the same file as a static file:"
    )
    print()
    print(comparison.table())
    print()
    uploads = ", ".join(
        f"{name} {size / seconds / 1e6:.0f} MB/s" for name, seconds in comparison.uploads.items()
    )
    print(f"uploads (one per gunicorn, not compared): {uploads}")
    print("machine after the runs:", machine_note())


if __name__ == "__main__":
    sys.exit(main())
