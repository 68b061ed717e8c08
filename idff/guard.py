"""Guards of the long-running CLI jobs: outputs writable before compute, no orphaned writers.

``check_writable`` tries a hidden probe file beside each output before any training or
sampling, so a read-only folder fails in a second, naming the real output, not after hours
with a PermissionError about a temp file.

``watch_parent`` starts a daemon thread that stops the job when the process that started it
dies. Under Snakemake the job's direct parent is a shell that survives a SIGKILL of Snakemake,
so the watch follows the ancestors up to the nearest one whose command line names snakemake
(without one: the direct parent). A job whose Snakemake is gone would otherwise keep running
and writing while a rerun starts the same job again. ``IDFF_OUTLIVE_PARENT=1`` turns it off
(e.g. for ``nohup idff train ... &`` from a shell that is then closed).
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

#: set to the dead ancestor's pid when the watch stopped the job (the CLI reports it)
orphaned: int | None = None


class OutputNotWritable(OSError):
    """An output's folder cannot be written; raised before any compute."""


def check_writable(out: str | os.PathLike) -> None:
    """Raise OutputNotWritable naming ``out`` unless a file can be created beside it."""
    out = Path(out)
    if out.is_dir():
        raise OutputNotWritable(f"output {out} is a folder; give a file path to --out")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=out.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputNotWritable(
            f"output {out} cannot be written: its folder {out.parent} is not writable "
            f"({exc.strerror or exc}); make the folder writable or choose another --out "
            f"(nothing was computed)") from None


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of ``pid`` from /proc, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name may hold spaces and ')'
    return int(fields[1]), fields[0], int(fields[19])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def watched_ancestors() -> list[tuple[int, int]]:
    """(pid, start time) of the ancestors whose death stops this job (see the module doc)."""
    chain, pid = [], os.getppid()
    while pid > 1 and len(chain) < 32:
        st = _stat(pid)
        if st is None:
            break
        chain.append((pid, st[2]))
        if "snakemake" in _cmdline(pid):
            return chain
        pid = st[0]
    return chain[:1]


def _alive(pid: int, start: int) -> bool:
    st = _stat(pid)
    return st is not None and st[2] == start and st[1] not in ("Z", "X")  # zombie: it died


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"orphaned: process {orphaned} is gone")


def watch_parent(poll_s: float = 1.0, grace_s: float = 30.0) -> threading.Thread | None:
    """Stop this process (KeyboardInterrupt in the main thread, so temp files are cleaned up;
    ``os._exit`` after ``grace_s``) when a watched ancestor dies. None when off or unsupported.

    Call from the main thread. The stop goes through SIGUSR1 with a handler of its own, not
    SIGINT: jobs started in the background (Snakemake's among them) inherit an ignored SIGINT.
    """
    if os.environ.get("IDFF_OUTLIVE_PARENT") == "1":
        return None
    if Path("/proc/self/stat").is_file():
        chain = watched_ancestors()
        if not chain:
            return None

        def dead() -> int | None:
            return next((pid for pid, start in chain if not _alive(pid, start)), None)
    else:  # no /proc: the direct parent only (re-parenting changes getppid)
        first = os.getppid()

        def dead() -> int | None:
            return first if os.getppid() != first else None

    def run() -> None:
        global orphaned
        while (pid := dead()) is None:
            time.sleep(poll_s)
        orphaned = pid
        print(f"idff: the process that started this job ({pid}) is gone; stopping, so no rerun "
              f"races an orphaned writer", file=sys.stderr, flush=True)
        _thread.interrupt_main(signal.SIGUSR1)
        time.sleep(grace_s)
        os._exit(3)

    signal.signal(signal.SIGUSR1, _stop)
    thread = threading.Thread(target=run, name="idff-parent-watch", daemon=True)
    thread.start()
    return thread
