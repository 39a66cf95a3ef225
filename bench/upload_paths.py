"""The upload paths compared (``--compare-uploads``): how close an upload comes to disk speed.

One file of ``--size`` is sent, in one run, by four paths:

1. **nginx PUT, the ceiling**: deploy/nginx/bench.conf.template's ``/_bench_put/``
   location (``dav_methods PUT``): nginx receives the body into its client_body_temp_path
   and renames it into place, with no app, no hash and no database. An upload through the
   service cannot be faster;
2. **raw PUT**: ``PUT /api/v1/shares/<name>``, the body streamed from the open file with a
   Content-Length (as ``curl -T``);
3. **multipart**: ``POST /api/v1/shares``, as a browser's form sends it;
4. **tus**: the resumable endpoint ``/api/v1/uploads/``: tuspy (the pinned client) creates
   the upload, and the file goes as one PATCH streamed from disk, as tus-js-client and Uppy
   send it by default; with ``--tus-chunk N``, tuspy sends it in PATCHes of N bytes (it
   reads each into memory) and the server, which cannot keep a hash between requests,
   reads the file once more at the end for its SHA-256.

Paths 2 to 4 go to one gunicorn (one sync worker unless told otherwise, as in the memory
benchmark). Each path is warmed up with a tiny file, then makes ``--repeats`` timed uploads,
interleaved: every round runs all four, the next round starting one path later. Every
upload is checked (the SHA-256 and size the server stored) and its stored file deleted, so
the disk holds at most one copy besides the test file; before each upload, os.sync() (not
timed) writes out what the previous one left in the page cache. The time runs from the
first request to the last answer (for tus: creation, every PATCH, and the share's creation
at the end).

For each path the table gives the median MB/s and its ratio to the ceiling's median in the
same run, every run, and the median per upload of: the CPU seconds of the gunicorn worker and
of nginx's workers, and the peak RSS growth of each over its resting size (VmHWM, reset
before each upload, see process_stats.py).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
from process_stats import RssMonitor
from served_app import prepare_code, running, server_env, start_front, start_server
from transfer_client import (
    TIMEOUT,
    Endpoint,
    MismatchError,
    human_size,
    upload,
    warm_up,
    write_test_file,
)
from tusclient.client import TusClient

CEILING = "nginx PUT to disk (ceiling)"


@dataclass
class Sample:
    """One upload: wall time; CPU seconds and peak RSS growth (KiB) of the gunicorn worker(s)
    and of nginx's workers meanwhile."""

    seconds: float
    app_cpu: float
    nginx_cpu: float
    app_growth: int
    nginx_growth: int


@dataclass
class Variant:
    name: str
    send: Callable[[int], None]  # one upload, numbered; checks what was stored
    samples: list[Sample] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(sample, attribute) for sample in self.samples)

    def mbps(self, size: int) -> float:
        return size / self.median("seconds") / 1e6


@dataclass
class UploadComparison:
    size: int
    repeats: int
    tus_chunk: int
    variants: list[Variant]

    def table(self) -> str:
        ceiling = next(v for v in self.variants if v.name == CEILING).mbps(self.size)
        rows = [
            "| path | median MB/s | ratio to nginx PUT | runs (MB/s) | gunicorn CPU (s) "
            "| nginx CPU (s) | gunicorn peak growth (MiB) | nginx peak growth (MiB) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for variant in self.variants:
            runs = ", ".join(f"{self.size / s.seconds / 1e6:.0f}" for s in variant.samples)
            rows.append(
                f"| {variant.name} | {variant.mbps(self.size):.1f} "
                f"| {variant.mbps(self.size) / ceiling:.2f} | {runs} "
                f"| {variant.median('app_cpu'):.2f} | {variant.median('nginx_cpu'):.2f} "
                f"| {max(s.app_growth for s in variant.samples) / 1024:.1f} "
                f"| {max(s.nginx_growth for s in variant.samples) / 1024:.1f} |"
            )
        return "\n".join(rows)

    def tus_note(self) -> str:
        if self.tus_chunk:
            return f"in tuspy PATCHes of {human_size(self.tus_chunk)}"
        return "in one streamed PATCH"

    def report(self, machine: str) -> str:
        return "\n".join(
            [
                "",
                f"Uploads of one {human_size(self.size)} file, median of {self.repeats} "
                f"(interleaved; tus {self.tus_note()}), ratio to "
                "nginx writing the same PUT body to disk; peak growth is the largest of the "
                "runs:",
                "",
                self.table(),
                "",
                f"machine after the runs: {machine}",
            ]
        )


def compare_uploads(tmp: Path, args: argparse.Namespace) -> UploadComparison:
    """Upload one file of --size through each path, --repeats times, interleaved."""
    data, expected = write_test_file(tmp, args.size)
    env = server_env(tmp, args.size)
    django_dir, templates = prepare_code(tmp, args.ref, env)
    media = tmp / "media"
    put_root = tmp / "nginx-put"
    put_root.mkdir()

    with running(tmp) as processes:
        server = start_server(processes, django_dir, env, args)
        print("gunicorn:", shlex.join(server.process.command), flush=True)
        nginx, _, bench_url = start_front(
            processes, tmp, templates, upstream=None, max_body=args.size, bench_root=put_root
        )
        print("nginx:", shlex.join(nginx.command), flush=True)
        put_url = str(bench_url).replace("/_bench", "/_bench_put")
        endpoint = Endpoint(server.base_url, server.log_tail)
        for mode in ("put", "multipart"):
            warm_up(endpoint, tmp, mode)
        warm = tmp / "warmup.txt"
        TusClient(f"{server.base_url}/api/v1/uploads/").uploader(
            str(warm), metadata={"filename": warm.name}
        ).upload()
        requests.put(f"{put_url}/warmup.txt", data=b"warm-up\n", timeout=TIMEOUT)

        def stored_once(share: dict, what: str) -> None:
            if share["sha256"] != expected or share["size"] != args.size:
                raise MismatchError(f"{what}: the server stored other bytes: {share}")
            stored = [path for path in (media / "shares").glob("*") if path.is_file()]
            big = [path for path in stored if path.stat().st_size == args.size]
            if len(big) != 1:
                raise RuntimeError(f"{what}: expected one stored file of the size: {stored}")
            big[0].unlink()  # one copy on disk at a time (10 GiB runs)

        def nginx_put(number: int) -> None:
            target = put_root / f"put-{number}.bin"
            with data.open("rb") as source:
                response = requests.put(f"{put_url}/{target.name}", data=source, timeout=TIMEOUT)
            if response.status_code not in (201, 204) or target.stat().st_size != args.size:
                raise RuntimeError(f"nginx PUT answered {response.status_code}\n{nginx.tail(20)}")
            target.unlink()

        def app_upload(mode: str) -> Callable[[int], None]:
            def send(number: int) -> None:
                stored_once(upload(endpoint, data, mode), f"{mode} #{number}")

            return send

        def tus_upload(number: int) -> None:
            uploader = TusClient(f"{server.base_url}/api/v1/uploads/").uploader(
                str(data),
                chunk_size=args.tus_chunk or args.size,
                metadata={"filename": data.name},
            )
            if args.tus_chunk:
                uploader.upload()
                headers = uploader.request.response_headers
            else:
                # tuspy creates the upload; the body goes as one PATCH streamed from the
                # file, as tus-js-client and Uppy send it by default (chunkSize Infinity).
                # tuspy would read the whole PATCH body into memory first.
                uploader.set_url(uploader.create_url())
                with data.open("rb") as source:
                    response = requests.patch(
                        uploader.url,
                        data=source,
                        headers={
                            "Tus-Resumable": "1.0.0",
                            "Upload-Offset": "0",
                            "Content-Type": "application/offset+octet-stream",
                            "Content-Length": str(args.size),
                        },
                        timeout=TIMEOUT,
                    )
                if response.status_code not in (200, 204):
                    raise RuntimeError(
                        f"tus #{number}: PATCH answered {response.status_code}: "
                        f"{response.text[:500]}\n{server.log_tail()}"
                    )
                headers = {key.lower(): value for key, value in response.headers.items()}
            share_url = headers.get("onetimeshare-share-url", "")
            token = share_url.rstrip("/").rsplit("/", 1)[-1]
            response = requests.get(f"{server.base_url}/api/v1/shares/{token}", timeout=TIMEOUT)
            if response.status_code != 200:
                raise RuntimeError(
                    f"tus #{number}: no share at {share_url!r}: {response.status_code}\n"
                    f"{server.log_tail()}"
                )
            stored_once(response.json(), f"tus #{number}")

        variants = [
            Variant(CEILING, nginx_put),
            Variant("app, raw PUT", app_upload("put")),
            Variant("app, multipart POST", app_upload("multipart")),
            Variant("app, tus (tuspy)", tus_upload),
        ]
        app = RssMonitor(server.workers())
        front = RssMonitor(nginx.children())
        app_rest, front_rest = app.baseline(), front.baseline()

        # Every timed upload is checked (the stored SHA-256 and size); the paths were warmed
        # up with a tiny file (first request, lazy imports) before.

        for round_ in range(args.repeats):
            shift = round_ % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                # Each upload starts with no dirty pages waiting for the disk (the test file
                # just written, the upload before): writeback owed by another path would
                # slow this one down.
                os.sync()
                app.start()
                front.start()
                started = time.perf_counter()
                variant.send(round_ + 1)
                seconds = time.perf_counter() - started
                app_phase, front_phase = app.stop(), front.stop()
                variant.samples.append(
                    Sample(
                        seconds=seconds,
                        app_cpu=app_phase.cpu_seconds,
                        nginx_cpu=front_phase.cpu_seconds,
                        app_growth=max(app_phase.peak - app_rest, 0),
                        nginx_growth=max(front_phase.peak - front_rest, 0),
                    )
                )
                print(
                    f"round {round_ + 1}/{args.repeats}: {variant.name}: "
                    f"{args.size / seconds / 1e6:.0f} MB/s, gunicorn peak "
                    f"{app_phase.peak / 1024:.1f} MiB (rest {app_rest / 1024:.1f})",
                    flush=True,
                )
        if server.process.popen.poll() is not None:
            raise RuntimeError(f"gunicorn exited during the runs:\n{server.log_tail()}")
        return UploadComparison(args.size, args.repeats, args.tus_chunk, variants)
