"""Run a command as the terminal's foreground job: `make run` starts honcho through this.

Ctrl-C in a terminal interrupts every process of the foreground process group. Under
`make run` that group holds make itself, which then reports "*** Interrupt" (or "Error
130") for what was a normal way to stop the server. This script starts the command in a
process group of its own and hands that group the terminal, as a shell does for a job, so
Ctrl-C reaches only the command (honcho, which stops web, worker and beat in turn). When
the command ends, the terminal goes back to make's group and an interrupted run counts as
a clean stop.
"""

import contextlib
import os
import signal
import subprocess
import sys

# How a command reports that it was stopped by Ctrl-C (or by the SIGTERM honcho forwards).
STOPPED = {0, 130, -signal.SIGINT, 143, -signal.SIGTERM}


def main(command: list[str]) -> int:
    try:
        terminal = os.open("/dev/tty", os.O_RDWR)
        make_group = os.tcgetpgrp(terminal)
    except OSError:
        # No terminal (CI, a service manager): nobody can press Ctrl-C; just run it.
        os.execvp(command[0], command)  # noqa: S606 - the command make gave us
    job = subprocess.Popen(command, process_group=0)  # noqa: S603 - the command make gave us
    # Changing the terminal's foreground group from a background group raises SIGTTOU.
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    # OSError: the job ended already, or the terminal went away: nothing to hand over.
    with contextlib.suppress(OSError):
        os.tcsetpgrp(terminal, job.pid)
    # Still in make's group: a Ctrl-C that reaches us before the hand-over must not kill
    # us while the job runs; the job decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    returncode = job.wait()
    with contextlib.suppress(OSError):
        os.tcsetpgrp(terminal, make_group)
    return 0 if returncode in STOPPED else returncode


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: foreground.py COMMAND [ARG...]")
    sys.exit(main(sys.argv[1:]))
