"""Which processes are running, read from /proc (Linux)."""

import os
import signal
from pathlib import Path


def alive(pid):
    """Whether process ``pid`` is running (a zombie, dead but not reaped, is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def group_members(pgid):
    """Process ids of the live processes in process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def stop_command(process, how):
    """Stop a command started in a session of its own: ``"ctrl-c"`` (SIGINT
    to its whole process group, as a terminal sends it) or ``"kill"``
    (SIGTERM to the command alone)."""
    if how == "ctrl-c":
        os.killpg(process.pid, signal.SIGINT)
    else:
        os.kill(process.pid, signal.SIGTERM)


def kill_if_running(process):
    """SIGKILL a command's process group if the command is still running."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
