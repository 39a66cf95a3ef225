"""The download paths compared (``--compare-downloads``): who sends the bytes, how fast.

One file of ``--size`` is uploaded once to each of three gunicorns, which share one database
and MEDIA_ROOT: one with ``--no-sendfile`` (the app's pure-Python read loop), one with
sendfile (``wsgi.file_wrapper``), both reached directly, and one with
``DOWNLOAD_OFFLOAD=nginx`` behind nginx. Each share allows 100 downloads. nginx also serves
deploy/nginx/bench.conf.template with MEDIA_ROOT as its root: the ceiling is the very file
the offload variant sends, fetched as a plain static file, with no app in the way. Each path
serves one hashed download first (not timed: it checks the bytes and warms the path up),
then ``--repeats`` (5) timed downloads, interleaved (each round starts one path later).
Every download is made by the same client code (requests, ``stream=True``, 4 MiB
``iter_content`` chunks, bytes counted, not hashed).

The table has the median MB/s of each path and its ratio to the ceiling's median, every
run, the median CPU seconds per download of the client (this process), of the path's
gunicorn worker(s) and of nginx's workers, and how long a download holds a gunicorn worker:
the whole response when gunicorn sends the bytes, nginx's ``upstream_time`` (from its
access log) with offload. The offload variant's access-log entries are checked on every
run: nginx sent the bytes, gunicorn none.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shlex
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
from process_stats import total_cpu_seconds
from served_app import (
    MIB,
    both_logs,
    prepare_code,
    running,
    server_env,
    start_front,
    start_server,
)
from transfer_client import (
    TIMEOUT,
    Endpoint,
    MismatchError,
    check_offloaded,
    download_entries,
    human_size,
    upload,
    warm_up,
    write_test_file,
)

CLIENT_CHUNK = 4 * MIB  # iter_content chunk of every download compared
MAX_DOWNLOADS = 100  # the app's MAX_DOWNLOADS_LIMIT: one share serves all repeats


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
    digest: Callable[[bytes], object] | None = None,
) -> Sample:
    """One download of `variant` by the same client code for every variant: requests,
    streamed, large chunks; the bytes are counted, and passed to `digest` only for the
    verification download, which is not timed."""
    client_before = time.process_time()
    app_before = total_cpu_seconds(variant.app_workers)
    nginx_before = total_cpu_seconds(nginx_workers)
    received = 0
    started = time.perf_counter()
    with requests.request(variant.method, variant.url, stream=True, timeout=TIMEOUT) as response:
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
        app_cpu=total_cpu_seconds(variant.app_workers) - app_before,
        nginx_cpu=total_cpu_seconds(nginx_workers) - nginx_before,
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

    def report(self, machine: str) -> str:
        """The table with its heading and the lines under it."""
        uploads = ", ".join(
            f"{name} {self.size / seconds / 1e6:.0f} MB/s" for name, seconds in self.uploads.items()
        )
        return "\n".join(
            [
                "",
                f"Downloads of one {human_size(self.size)} file, median of {self.repeats} "
                "(interleaved), ratio to nginx serving the same file as a static file:",
                "",
                self.table(),
                "",
                f"uploads (one per gunicorn, not compared): {uploads}",
                f"machine after the runs: {machine}",
            ]
        )


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
    data, expected = write_test_file(tmp, args.size)
    direct_env = server_env(tmp, args.size)
    offload_env = server_env(tmp, args.size, offload=True)
    offload_env["DJANGO_SECRET_KEY"] = direct_env["DJANGO_SECRET_KEY"]
    django_dir, templates = prepare_code(tmp, args.ref, direct_env)
    media = tmp / "media"

    with running(tmp) as processes:
        python = start_server(
            processes, django_dir, direct_env, args, sendfile=False, name="python"
        )
        sendfile = start_server(
            processes, django_dir, direct_env, args, sendfile=True, name="sendfile"
        )
        offload = start_server(processes, django_dir, offload_env, args, name="offload")
        servers = [python, sendfile, offload]
        for server in servers:
            print(f"gunicorn ({server.name}):", shlex.join(server.process.command), flush=True)
        nginx, app_url, bench_url = start_front(
            processes,
            tmp,
            templates,
            upstream=offload,
            max_body=int(offload_env["MAX_UPLOAD_SIZE"]),
            bench_root=media,
        )
        print("nginx:", shlex.join(nginx.command), flush=True)
        nginx_workers = nginx.children()

        endpoints = {
            "python": Endpoint(python.base_url, python.log_tail),
            "sendfile": Endpoint(sendfile.base_url, sendfile.log_tail),
            "offload": Endpoint(str(app_url), lambda: both_logs(offload, nginx)),
        }
        uploads: dict[str, float] = {}
        shares: dict[str, dict] = {}
        ceiling_name = ""
        for key, endpoint in endpoints.items():
            warm_up(endpoint, tmp, args.mode)
            before = stored_files(media)
            print(f"Uploading for {key} ({args.mode}) ...", flush=True)
            started = time.perf_counter()
            shares[key] = upload(endpoint, data, args.mode, max_downloads=MAX_DOWNLOADS)
            uploads[key] = time.perf_counter() - started
            if shares[key]["sha256"] != expected or shares[key]["size"] != args.size:
                raise MismatchError(f"{key}: the server stored other bytes: {shares[key]}")
            new_files = stored_files(media) - before
            if len(new_files) != 1:
                raise RuntimeError(f"{key}: expected one new file in MEDIA_ROOT: {new_files}")
            if key == "offload":
                ceiling_name = new_files.pop().relative_to(media).as_posix()

        def download_url(base_url: str, key: str) -> str:
            return f"{base_url}/api/v1/shares/{shares[key]['token']}/download"

        variants = [
            Variant(
                "gunicorn, pure Python (--no-sendfile)",
                "POST",
                download_url(python.base_url, "python"),
                python.workers(),
                python.log_tail,
            ),
            Variant(
                "gunicorn, sendfile",
                "POST",
                download_url(sendfile.base_url, "sendfile"),
                sendfile.workers(),
                sendfile.log_tail,
            ),
            Variant(
                "nginx offload (X-Accel-Redirect)",
                "POST",
                download_url(str(app_url), "offload"),
                offload.workers(),
                endpoints["offload"].logs,
                offloaded=True,
            ),
            Variant(
                "nginx static file (ceiling)",
                "GET",
                f"{bench_url}/{ceiling_name}",
                [],
                lambda: nginx.tail(20),
            ),
        ]

        # One hashed download per variant, not timed: the bytes are right, and each path
        # has served the file once before the timed runs.
        for variant in variants:
            logged = len(download_entries(nginx))
            hasher = hashlib.sha256()
            fetch(variant, args.size, nginx_workers, hasher.update)
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
                sample = fetch(variant, args.size, nginx_workers)
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
            if server.process.popen.poll() is not None:
                raise RuntimeError(f"gunicorn exited during the runs:\n{server.log_tail()}")
        return Comparison(args.size, args.repeats, variants, uploads)
