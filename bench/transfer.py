"""Transfer benchmark: throughput and server memory for one large upload and download, and
the download paths compared. The command-line entry point (``make bench``).

Each job has a module of its own in bench/:

- round_trip.py: one upload and one download of ``--size`` through gunicorn (or nginx in
  front, ``--via nginx``), with the server's memory growth and CPU time;
- download_paths.py: ``--compare-downloads``, gunicorn without and with sendfile, nginx
  offload, and nginx serving the file as a static file (the ceiling);
- upload_paths.py: ``--compare-uploads``, nginx writing a PUT body to disk (the ceiling),
  the app's raw PUT, multipart POST and tus upload, with memory and CPU;
- process_stats.py: RSS and CPU of the server's processes, read from /proc;
- served_app.py: which code is served, its environment, gunicorn and nginx on loopback,
  through the process harness the tests use (django_backend/tests/support/processes.py);
- transfer_client.py: the test file, uploads and downloads through the API.

MB/s is 10^6 bytes per second; memory is in MiB (2^20 bytes).

How to run
    .venv/bin/python bench/transfer.py --size 1G
    .venv/bin/python bench/transfer.py --size 64M --mode multipart
    .venv/bin/python bench/transfer.py --size 1G --no-sendfile   # downloads through Python
    .venv/bin/python bench/transfer.py --size 1G --via nginx     # nginx in front, offload
    .venv/bin/python bench/transfer.py --compare-downloads --size 256M   # download paths
    .venv/bin/python bench/transfer.py --compare-uploads --size 1G   # upload paths
    .venv/bin/python bench/transfer.py --ref HEAD   # the last commit, not the working tree
    .venv/bin/python bench/transfer.py --workers 2 --threads 8   # as `make run` serves

It prints the command lines used and a Markdown table, and exits non-zero when the
downloaded bytes do not match, a request fails, or the deadline (``--deadline``) passes.
gunicorn and nginx are stopped and the temporary directory removed in every case (also on
SIGTERM). Every request has a timeout.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import requests
from download_paths import MAX_DOWNLOADS, compare
from round_trip import run
from served_app import PYTHON
from transfer_client import MismatchError, parse_size
from upload_paths import compare_uploads


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
    parser.add_argument(
        "--compare-uploads",
        action="store_true",
        help="compare the upload paths on one file of --size: nginx writing a PUT body to "
        "disk (the ceiling), the app's raw PUT, multipart POST and tus upload",
    )
    parser.add_argument(
        "--tus-chunk",
        type=parse_size,
        default=0,
        help="with --compare-uploads, send the tus upload with tuspy in PATCHes of this "
        "size (it reads each into memory) instead of one streamed PATCH (default)",
    )
    parser.add_argument("--tmp-dir", type=Path, default=None, help="parent of the temp dir")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.compare_downloads and args.repeats + 1 > MAX_DOWNLOADS:
        parser.error(f"--repeats must be below {MAX_DOWNLOADS} (one share per path)")
    if args.compare_downloads and args.compare_uploads:
        parser.error("--compare-downloads and --compare-uploads are separate runs")
    if args.compare_uploads and (args.via != "direct" or args.mode != "put"):
        parser.error("--compare-uploads runs every path itself: no --via, no --mode")
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
        elif args.compare_uploads:
            comparison = compare_uploads(tmp, args)
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

    if args.compare_downloads or args.compare_uploads:
        print(comparison.report(machine_note()))
    else:
        print(result.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
