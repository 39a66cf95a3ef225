"""Memory and CPU of the server's processes, read from /proc while the benchmark runs.

A background thread reads ``/proc/<pid>/status`` of the watched processes (gunicorn's or
nginx's workers) every 50 ms. Before each phase the kernel's peak-RSS counter is reset
(``echo 5 > /proc/<pid>/clear_refs``), so ``VmHWM`` at the end of a phase is that phase's
true peak, which catches spikes shorter than the sampling interval. A phase's peak is the
larger of the sampled ``VmRSS`` maximum and that ``VmHWM``, summed over the processes.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_INTERVAL = 0.05


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


def total_cpu_seconds(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


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
        return total_cpu_seconds(self.pids)

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
