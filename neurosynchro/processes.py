"""Worker processes that never outlive the command that started them.

``make-training-set`` and ``train`` share their work out over local worker
processes (``ProcessPoolExecutor`` with the ``spawn`` start method). Those
workers must stop when the command stops, however it stops:

* Ctrl-C reaches every process of the terminal's process group. The workers
  ignore it; the command catches it and terminates them (:func:`stop`), so
  that it alone reports the interrupt.
* ``kill`` (SIGTERM) reaches the command only; :func:`raise_on_sigterm`
  turns it into :class:`Terminated`, which unwinds through the same cleanup.
* ``kill -9``, or a crash, runs no cleanup at all; each worker watches its
  parent (:func:`watch_parent`) and exits when it is gone.

A killed worker leaves nothing half-written: every file neurosynchro writes
is written under a temporary name and renamed into place.
"""

import contextlib
import os
import signal
import threading
import time

__all__ = ["Terminated", "raise_on_sigterm", "start_worker", "stop", "watch_parent"]

#: Seconds between a worker's checks that its parent is alive.
PARENT_POLL_SECONDS = 0.5


class Terminated(BaseException):
    """The process received SIGTERM (a ``BaseException``, like
    ``KeyboardInterrupt``, so that ``except Exception`` does not swallow it)."""


def _raise_terminated(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def raise_on_sigterm():
    """Within this block, SIGTERM raises :class:`Terminated` in the main thread.

    Outside the main thread (where Python cannot install signal handlers)
    this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def watch_parent(poll=PARENT_POLL_SECONDS):
    """Exit this process, at once, when its parent process is gone.

    Starts a daemon thread that polls the parent's process id: when the
    parent dies the process is re-parented, and its parent id changes.
    """
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(poll)
        os._exit(1)

    name = "neurosynchro-watch-parent"
    threading.Thread(target=watch, name=name, daemon=True).start()


def start_worker(ignore_interrupts=True):
    """Initializer for a worker process (see the module's docstring)."""
    if ignore_interrupts:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch_parent()


def stop(executor):
    """Terminate an executor's worker processes and wait until they are gone.

    Futures still pending fail with ``BrokenProcessPool`` (they are not
    cancelled first: cancelling races with the executor's own cleanup of a
    broken pool, which then raises in a background thread).
    """
    processes = list((getattr(executor, "_processes", None) or {}).values())
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(5)
        if process.is_alive():
            process.kill()
    executor.shutdown(wait=True)
