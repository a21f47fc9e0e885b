"""Worker processes stop with the command that started them."""

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pytest
from _proctools import alive, group_members, kill_if_running, stop_command
from nnfactory import random_nndir
from test_transform import synthetic

from neurosynchro.processes import Terminated, raise_on_sigterm, start_worker, stop


def wait_until(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not {what} in {seconds} s"
        time.sleep(0.05)


def _nap(seconds):
    time.sleep(seconds)
    return os.getpid()


@pytest.fixture
def thread_errors():
    """Exceptions raised in background threads while the test runs."""
    caught = []
    previous = threading.excepthook
    threading.excepthook = caught.append
    yield caught
    threading.excepthook = previous


def test_stop_after_some_tasks_finished_raises_nothing_anywhere(thread_errors):
    context = multiprocessing.get_context("spawn")
    executor = ProcessPoolExecutor(2, context, start_worker)
    futures = [executor.submit(_nap, s) for s in (0.0, 60, 60, 60, 60)]
    futures[0].result(timeout=60)
    wait_until(lambda: futures[1].running() and futures[2].running(), 60, "running")
    pids = list(executor._processes)
    assert pids and all(alive(p) for p in pids)
    start = time.monotonic()
    stop(executor)
    assert time.monotonic() - start < 10
    assert not any(alive(p) for p in pids)
    for future in futures[1:]:
        assert future.done()
        with pytest.raises(BrokenProcessPool):
            future.result()
    time.sleep(0.2)  # the executor's own threads finish their cleanup
    assert thread_errors == []


def test_workers_ignore_ctrl_c():
    # Ctrl-C reaches the whole process group: the workers must leave it to
    # the command (which stops them), not print their own tracebacks.
    context = multiprocessing.get_context("spawn")
    executor = ProcessPoolExecutor(1, context, start_worker)
    try:
        pid = executor.submit(_nap, 0).result(timeout=60)
        os.kill(pid, signal.SIGINT)
        assert executor.submit(_nap, 0).result(timeout=60) == pid
    finally:
        stop(executor)


WATCHED_CHILD = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", (
    "import time; from neurosynchro.processes import watch_parent; "
    "watch_parent(0.05); print('ready', flush=True); time.sleep(120)")],
    stdout=subprocess.PIPE, text=True)
assert child.stdout.readline() == "ready\\n"
print(child.pid, flush=True)
time.sleep(120)
"""


def test_worker_exits_when_its_parent_is_killed():
    parent = subprocess.Popen(
        [sys.executable, "-c", WATCHED_CHILD],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        child = int(parent.stdout.readline())
        assert alive(child)
        parent.kill()  # SIGKILL: no cleanup runs in the parent
        parent.wait(timeout=30)
        wait_until(lambda: not alive(child), 10, "child gone")
    finally:
        for pid in group_members(parent.pid):
            os.kill(pid, signal.SIGKILL)
        parent.stdout.close()


def test_sigterm_raises_terminated_and_the_handler_is_restored():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated):
        with raise_on_sigterm():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler runs before this returns
    assert signal.getsignal(signal.SIGTERM) is before


# The train command: stopped while one network is saved and two train.

TRAIN = """
import sys
from neurosynchro import cli
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def slow_nndir(tmp_path_factory):
    """A locked network directory whose j_I trains in one epoch, the others
    for hours."""
    rng = np.random.default_rng(20261204)
    nndir = tmp_path_factory.mktemp("train") / "nn"
    random_nndir(synthetic(rng, n=200), nndir, rng)
    for network in nndir.glob("*.npz"):
        network.unlink()
    config = nndir / "nn_config.toml"
    text = config.read_text()
    j_i = 'name = "j_I"\nmaptype = "log"\ntrainer = "generic"\n'
    assert text.count(j_i) == 1 and text.count("[signs]") == 1
    text = text.replace(j_i, j_i + "epochs = 1\nrefine_iterations = 0\n")
    text = text.replace(
        "[signs]", "[training]\nepochs = 100000\npatience = 100000\n\n[signs]"
    )
    config.write_text(text)
    return nndir


@pytest.mark.slow
@pytest.mark.parametrize(
    "how, status, said",
    [("ctrl-c", 130, "interrupted"), ("kill", 143, "terminated")],
)
def test_stopped_train_leaves_no_worker_and_no_traceback(
    slow_nndir, tmp_path, how, status, said
):
    nndir = tmp_path / "nn"
    shutil.copytree(slow_nndir, nndir)
    argv = ["train", str(nndir / "transformed.txt"), str(nndir)]
    argv += ["j_I", "alpha_I", "rho_V", "--jobs", "2"]
    process = subprocess.Popen(
        [sys.executable, "-c", TRAIN, *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        # j_I saved; alpha_I training, rho_V taken up by the free worker.
        wait_until(lambda: (nndir / "j_I.npz").exists(), 120, "j_I trained")
        time.sleep(1)
        stop_command(process, how)
        _, stderr = process.communicate(timeout=60)
        wait_until(lambda: not group_members(process.pid), 10, "workers gone")
    finally:
        kill_if_running(process)
    stderr = stderr.decode()
    assert process.returncode == status, stderr
    assert "Traceback" not in stderr and "Error" not in stderr, stderr
    assert stderr.splitlines()[-1] == f"neurosynchro: {said}", stderr
    assert sorted(p.name for p in nndir.glob("*.npz")) == ["j_I.npz"]
    assert not list(nndir.glob("*.tmp")) and not list(nndir.glob(".*.tmp"))
