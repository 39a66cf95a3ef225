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

How to run
    .venv/bin/python bench/transfer.py --size 1G
    .venv/bin/python bench/transfer.py --size 64M --mode multipart
    .venv/bin/python bench/transfer.py --size 1G --no-sendfile   # downloads through Python
    .venv/bin/python bench/transfer.py --ref HEAD   # the last commit, not the working tree
    .venv/bin/python bench/transfer.py --workers 2 --threads 8   # as `make run` serves

It prints the command lines used and a Markdown table, and exits non-zero when the
downloaded bytes do not match, a request fails, or the deadline (``--deadline``) passes.
gunicorn is stopped and the temporary directory removed in every case.
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
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO_DIR = Path(__file__).resolve().parent.parent
DJANGO_DIR = REPO_DIR / "django_backend"
PYTHON = sys.executable

MIB = 1024 * 1024
BLOCK = MIB
SAMPLE_INTERVAL = 0.05
GROWTH_TARGET_MIB = 64
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 300
START_TIMEOUT = 30
STOP_TIMEOUT = 30

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


def server_env(tmp: Path, size: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        MEDIA_ROOT=str(tmp / "media"),
        FILE_UPLOAD_TEMP_DIR=str(tmp / "spool"),
        MAX_UPLOAD_SIZE=str(max(size, MIB) + MIB),
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        SITE_URL="",
        STORAGE_BACKEND="local",
        LOG_LEVEL="WARNING",
    )
    return env


def start_server(
    tmp: Path, django_dir: Path, env: dict[str, str], args: argparse.Namespace
) -> Server:
    (tmp / "media").mkdir()
    (tmp / "spool").mkdir()
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=django_dir,
        env=env,
        check=True,
        timeout=120,
    )
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
    if args.no_sendfile:
        command.append("--no-sendfile")
    log_path = tmp / "gunicorn.log"
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


def checkout(tmp: Path, ref: str | None) -> tuple[Path, str]:
    """The django_backend to serve and a description of it.

    Without `ref`, the working tree as it is. With `ref`, that commit's django_backend,
    exported with `git archive` into the temporary directory, so that edits in progress in
    the working tree cannot change or break the measurement.
    """
    if ref is None:
        try:
            head = git("rev-parse", "--short", "HEAD").strip()
            dirty = git("status", "--porcelain", "--", "django_backend").strip()
        except (OSError, subprocess.SubprocessError):
            return DJANGO_DIR, f"working tree {DJANGO_DIR}"
        state = " with uncommitted changes" if dirty else ""
        return DJANGO_DIR, f"working tree at {head}{state}"
    sha = git("rev-parse", "--verify", f"{ref}^{{commit}}").strip()
    archive = subprocess.run(
        ["git", "-C", str(REPO_DIR), "archive", "--format=tar", sha, "django_backend"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    src = tmp / "src"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(src, filter="data")
    return src / "django_backend", f"{ref} = {sha[:12]} (exported with git archive)"


# --- client --------------------------------------------------------------------------------


class MultipartBody:
    """A multipart/form-data body read from disk as it is sent.

    requests sees `__len__` and sends a Content-Length; urllib3 then calls `read()` in
    blocks, so the file is never loaded whole. Only the `file` field is sent: the other
    fields keep their defaults.
    """

    def __init__(self, path: Path, filename: str) -> None:
        self.boundary = f"bench-{uuid.uuid4().hex}"
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        head = (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
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


def upload(server: Server, path: Path, mode: str, timeout: tuple[int, int]) -> dict:
    if mode == "multipart":
        body = MultipartBody(path, path.name)
        response = requests.post(
            f"{server.base_url}/api/v1/shares",
            data=body,
            headers={"Content-Type": body.content_type},
            timeout=timeout,
        )
    elif mode == "put-chunked":
        response = requests.put(
            f"{server.base_url}/api/v1/shares/{path.name}",
            data=read_blocks(path),
            headers={"Content-Type": "application/octet-stream"},
            timeout=timeout,
        )
    else:
        with path.open("rb") as source:
            response = requests.put(
                f"{server.base_url}/api/v1/shares/{path.name}",
                data=source,
                headers={"Content-Type": "application/octet-stream"},
                timeout=timeout,
            )
    if response.status_code != 201:
        raise RuntimeError(
            f"upload answered {response.status_code}: {response.text[:500]}\n"
            f"gunicorn log:\n{server.log_tail()}"
        )
    return response.json()


def download(server: Server, token: str, timeout: tuple[int, int]) -> tuple[int, str]:
    """Stream the share; return (bytes received, their SHA-256)."""
    hasher = hashlib.sha256()
    received = 0
    with requests.post(
        f"{server.base_url}/api/v1/shares/{token}/download", stream=True, timeout=timeout
    ) as response:
        if response.status_code != 200:
            raise RuntimeError(
                f"download answered {response.status_code}: {response.text[:500]}\n"
                f"gunicorn log:\n{server.log_tail()}"
            )
        for chunk in response.iter_content(chunk_size=BLOCK):
            hasher.update(chunk)
            received += len(chunk)
    return received, hasher.hexdigest()


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
    purged: bool
    upload_cpu: float
    download_cpu: float

    @property
    def growth_kib(self) -> int:
        return max(self.upload_peak_kib, self.download_peak_kib) - self.baseline_kib

    def table(self) -> str:
        def mbps(seconds: float) -> str:
            return f"{self.size / seconds / 1e6:.1f}" if seconds > 0 else "n/a"

        def mib(kib: int) -> str:
            return f"{kib / 1024:.1f}"

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


def describe_mode(args: argparse.Namespace) -> str:
    parts = [args.mode]
    if args.threads > 1:
        parts.append(f"gthread {args.workers}x{args.threads}")
    elif args.workers > 1:
        parts.append(f"sync x{args.workers}")
    if args.no_sendfile:
        parts.append("no-sendfile")
    return ", ".join(parts)


def wait_purged(media: Path, seconds: float = 5.0) -> bool:
    """Whether the share's bytes left MEDIA_ROOT after its last download."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(p.is_file() for p in (media / "shares").glob("*")):
            return True
        time.sleep(0.1)
    return False


def run(tmp: Path, args: argparse.Namespace) -> Result:
    timeout = (CONNECT_TIMEOUT, READ_TIMEOUT)
    data = tmp / f"bench-{args.size}.bin"
    print(f"Writing {human_size(args.size)} to {data} ...", flush=True)
    expected = make_file(data, args.size)

    env = server_env(tmp, args.size)
    django_dir, source = checkout(tmp, args.ref)
    print("code:", source, flush=True)
    server = start_server(tmp, django_dir, env, args)
    try:
        print("gunicorn:", shlex.join(server.command), flush=True)
        workers = server.workers()
        print(f"gunicorn master {server.process.pid}, worker(s) {workers}", flush=True)

        # Warm-up: first request, lazy imports, one tiny share through the whole path.
        warm = tmp / "warmup.txt"
        warm.write_bytes(b"warm-up\n")
        share = upload(server, warm, args.mode, timeout)
        download(server, share["token"], timeout)
        time.sleep(0.5)

        monitor = RssMonitor(workers)
        baseline = monitor.baseline()

        print(f"Uploading ({args.mode}) ...", flush=True)
        monitor.start()
        started = time.perf_counter()
        share = upload(server, data, args.mode, timeout)
        upload_seconds = time.perf_counter() - started
        up = monitor.stop()

        if server.workers() != workers:
            raise RuntimeError(f"worker(s) restarted during the upload:\n{server.log_tail()}")
        if share.get("size") != args.size:
            raise RuntimeError(f"server recorded {share.get('size')} bytes, sent {args.size}")

        print("Downloading ...", flush=True)
        monitor.start()
        started = time.perf_counter()
        received, digest = download(server, share["token"], timeout)
        download_seconds = time.perf_counter() - started
        down = monitor.stop()

        if server.workers() != workers:
            raise RuntimeError(f"worker(s) restarted during the download:\n{server.log_tail()}")
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

        return Result(
            size=args.size,
            mode=describe_mode(args),
            upload_seconds=upload_seconds,
            download_seconds=download_seconds,
            baseline_kib=baseline,
            upload_peak_kib=up.peak,
            download_peak_kib=down.peak,
            hwm_reset=bool(up.hwm and down.hwm),
            purged=wait_purged(Path(env["MEDIA_ROOT"])),
            upload_cpu=up.cpu_seconds,
            download_cpu=down.cpu_seconds,
        )
    finally:
        stop_server(server.process)


class MismatchError(Exception):
    """The downloaded bytes are not the uploaded ones."""


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
    parser.add_argument("--tmp-dir", type=Path, default=None, help="parent of the temp dir")
    args = parser.parse_args(argv)

    print("command:", shlex.join([PYTHON, *sys.argv]), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="ots-bench-", dir=args.tmp_dir))
    # The deadline: stop by interrupting the main thread, whose cleanup then runs.
    timer = threading.Timer(args.deadline, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.daemon = True
    timer.start()
    try:
        result = run(tmp, args)
    except MismatchError as exc:
        print(f"FAILED: the downloaded bytes do not match: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"FAILED: interrupted (deadline {args.deadline} s?)", file=sys.stderr)
        return 3
    except (RuntimeError, OSError, requests.RequestException, subprocess.SubprocessError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 2
    finally:
        timer.cancel()
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(result.table())
    print()
    if not result.hwm_reset:
        print("note: could not reset VmHWM; peaks are from 50 ms samples of VmRSS only")
    print(
        f"worker CPU time: upload {result.upload_cpu:.2f} s in {result.upload_seconds:.2f} s, "
        f"download {result.download_cpu:.2f} s in {result.download_seconds:.2f} s"
    )
    print(f"share bytes purged after the download: {'yes' if result.purged else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
