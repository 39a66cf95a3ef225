"""The transfer benchmark: throughput and server memory for one large upload and download.

The design promises flat memory: uploads and downloads stream, so a 1 GiB file should need
no more server memory than a 1 KiB one. This checks that claim end to end on the embedded
default (SQLite, files on local disk), served by gunicorn with one sync worker
(``--workers``/``--threads`` change that; threads > 1 is gthread):

1. In a fresh temporary directory it creates the database (``manage.py migrate``), the
   media and upload-spool folders, and a file of ``--size`` bytes.
2. It starts gunicorn on a free port of 127.0.0.1 and does a tiny warm-up round trip, so
   that lazy imports and first-request caches are not counted as growth.
3. It uploads the file with ``PUT /api/v1/shares/<name>`` (``--mode put``, default), the
   body streamed from the open file, or with ``POST /api/v1/shares`` (``--mode
   multipart``), or with ``--mode put-chunked`` (``Transfer-Encoding: chunked``, as ``curl
   -T -`` from a pipe).
4. It downloads it with ``POST /api/v1/shares/<token>/download`` (streamed), hashing what
   arrives, and compares the SHA-256 with the one the upload response reported and with
   the one computed while the file was written.

Meanwhile process_stats.RssMonitor samples the gunicorn worker(s). Growth is the peak minus
the baseline taken after the warm-up; the target is under 64 MiB. With several workers the
RSS figures are sums over the workers (idle ones add a constant).

With ``--via nginx`` the client talks to nginx instead, started on a free loopback port
with the repository's template (deploy/nginx/onetimeshare.conf.template) in front of
gunicorn, and the app offloads downloads to it (``DOWNLOAD_OFFLOAD=nginx``: the app answers
``X-Accel-Redirect`` and nginx sends the file from MEDIA_ROOT). nginx's workers are sampled
too. With offload the bytes are deleted by a Celery task, and no worker runs here: the file
stays until the end.
"""

from __future__ import annotations

import argparse
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from process_stats import RssMonitor
from served_app import (
    Server,
    both_logs,
    prepare_code,
    running,
    server_env,
    start_front,
    start_server,
)
from transfer_client import (
    Endpoint,
    MismatchError,
    check_offloaded,
    download,
    download_entries,
    human_size,
    upload,
    warm_up,
    write_test_file,
)

from tests.support.processes import ProcessError, wait_until

GROWTH_TARGET_MIB = 64
PURGE_DEADLINE = 5.0  # seconds for the last download's bytes to leave MEDIA_ROOT


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


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

    def report(self) -> str:
        """The table and the lines under it."""
        lines = ["", self.table(), ""]
        if self.nginx is not None:
            lines.append(self.nginx.line())
        if not self.hwm_reset:
            lines.append("note: could not reset VmHWM; peaks are from 50 ms samples of VmRSS only")
        lines.append(
            f"worker CPU time: upload {self.upload_cpu:.2f} s in {self.upload_seconds:.2f} s, "
            f"download {self.download_cpu:.2f} s in {self.download_seconds:.2f} s"
        )
        if self.purged is None:
            purged = "not checked (offload: the purge task deletes them, and no worker runs here)"
        else:
            purged = "yes" if self.purged else "NO"
        lines.append(f"share bytes purged after the download: {purged}")
        return "\n".join(lines)


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


def purged(media: Path) -> bool:
    """Whether the share's bytes left MEDIA_ROOT after its last download."""
    try:
        wait_until(
            "the share's bytes to leave MEDIA_ROOT",
            lambda: not any(p.is_file() for p in (media / "shares").glob("*")),
            PURGE_DEADLINE,
        )
    except ProcessError:
        return False
    return True


def run(tmp: Path, args: argparse.Namespace) -> Result:
    data, expected = write_test_file(tmp, args.size)
    via_nginx = args.via == "nginx"
    env = server_env(tmp, args.size, offload=via_nginx)
    django_dir, templates = prepare_code(tmp, args.ref, env)
    with running(tmp) as processes:
        server = start_server(processes, django_dir, env, args)
        print("gunicorn:", shlex.join(server.process.command), flush=True)
        workers = server.workers()
        print(f"gunicorn master {server.process.pid}, worker(s) {workers}", flush=True)
        endpoint = Endpoint(server.base_url, server.log_tail)
        nginx = None
        monitors = [RssMonitor(workers)]
        if via_nginx:
            nginx, app_url, _ = start_front(
                processes, tmp, templates, upstream=server, max_body=int(env["MAX_UPLOAD_SIZE"])
            )
            print("nginx:", shlex.join(nginx.command), flush=True)
            print(f"nginx master {nginx.pid}, worker(s) {nginx.children()}", flush=True)
            front, app = nginx, server
            endpoint = Endpoint(str(app_url), lambda: both_logs(app, front))
            monitors.append(RssMonitor(nginx.children()))

        warm_up(endpoint, tmp, args.mode)
        time.sleep(0.5)  # the warm-up's garbage settles before the baseline is taken

        baselines = [monitor.baseline() for monitor in monitors]

        print(f"Uploading ({args.mode}{', via nginx' if via_nginx else ''}) ...", flush=True)
        for monitor in monitors:
            monitor.start()
        started = time.perf_counter()
        share = upload(endpoint, data, args.mode)
        upload_seconds = time.perf_counter() - started
        up = [monitor.stop() for monitor in monitors]

        check_workers(server, workers, "upload", endpoint)
        if share.get("size") != args.size:
            raise RuntimeError(f"server recorded {share.get('size')} bytes, sent {args.size}")

        print("Downloading ...", flush=True)
        logged = len(download_entries(nginx)) if nginx else 0
        for monitor in monitors:
            monitor.start()
        started = time.perf_counter()
        received, digest = download(endpoint, share["token"])
        download_seconds = time.perf_counter() - started
        down = [monitor.stop() for monitor in monitors]

        check_workers(server, workers, "download", endpoint)
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
            purged=None if via_nginx else purged(Path(env["MEDIA_ROOT"])),
            upload_cpu=up[0].cpu_seconds,
            download_cpu=down[0].cpu_seconds,
            nginx=usage,
        )


def check_workers(server: Server, workers: list[int], phase: str, endpoint: Endpoint) -> None:
    if server.workers() != workers:
        raise RuntimeError(f"worker(s) restarted during the {phase}:\n{endpoint.logs()}")
