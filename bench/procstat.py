"""CPU time and memory of other processes, from Linux ``/proc``."""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """Fields of ``/proc/<pid>/stat`` after the command name (field 3 onwards)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used by ``pid`` so far (its own threads, not children)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _status_kib(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    raise LookupError(f"{name} not in /proc/{pid}/status")


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` now (MiB)."""
    return _status_kib(pid, "VmRSS") / 1024


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory of ``pid`` since it started (``VmHWM``, MiB)."""
    return _status_kib(pid, "VmHWM") / 1024


def child_pids(command_name: str, parent: int | None = None) -> list[int]:
    """Pids of ``parent``'s (default: this process's) children whose ``comm`` is given."""
    parent = os.getpid() if parent is None else parent
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:  # the process just ended
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        if ppid == parent and comm == command_name:
            found.append(int(entry.name))
    return found
