"""Each job runs in a child process of the worker, under its organization's memory limit.

Why a child process. A job's memory goes mostly to numpy, BLAS, OpenMP, XGBoost and pandas, which
allocate outside Python, from C and C++, in threads of their own. Three ways to cap it were weighed:

- ``setrlimit(RLIMIT_AS)`` in the worker process: counts address space, not memory. Thread stacks,
  malloc's per-thread arenas and every mapped library inflate it by hundreds of MB that use no RAM, so
  a limit tight enough to matter refuses honest jobs; and when an allocation fails inside C++ (XGBoost,
  inside an OpenMP region) the process aborts, taking the worker down with it.
- a monitor thread reading RSS and asking the job to stop: the job cannot be stopped in the middle of a
  C call, and a single allocation can outrun a sampling thread by gigabytes.
- running the job in a child process that the worker watches and can kill: whatever the job does
  (a MemoryError, a C++ abort, a segfault, a SIGKILL from the watcher or from the kernel) only the child
  dies; the worker survives, records a clear error and takes the next job.

The last is what this module does. The worker (a django-q2 worker process) claims the job, closes its
database connections, forks, and watches the child:

- every ``WATCH_INTERVAL_S`` it reads the memory the child and its descendants own: the unique set
  size (private pages, from ``/proc/<pid>/smaps_rollup``), i.e. what the job added on top of the
  interpreter and libraries it shares with the worker (its RSS would count those too). Past the
  organization's limit the child is killed with SIGKILL and the job fails with "memory limit of N MB
  reached";
- as a kernel-enforced backstop against a spike faster than the sampling, the child sets
  ``RLIMIT_DATA`` (private writable memory; unlike RLIMIT_AS it ignores mapped libraries and reserved
  address space) to what it had at fork plus twice the limit: an allocation past it fails with a
  MemoryError, which the job reports with the same message;
- the child asks the kernel to kill it if the worker dies (``PR_SET_PDEATHSIG``), so no job outlives
  its worker to write after the job was declared lost;
- a child that dies without finishing its job row (any signal or exit) is finished by the worker, and
  every file the job wrote is removed;
- a job whose row was ended elsewhere while it ran (declared lost after missing its heartbeats) has its
  child killed within seconds; a result it was about to record is refused anyway (`JobEndedElsewhere`).

Forking is safe here because the worker process does no numeric work itself (no OpenMP thread pool has
started in it, and libgomp is the one library that is not fork-safe); every task that runs ML code must
therefore run through ``run_job``. The garbage collector is frozen around the fork so the child does not
copy the worker's heap by touching it. Outside a worker (tests, shell) jobs run inline, unlimited.

The web server never runs a job: requests only queue them.
"""
from __future__ import annotations

import ctypes
import gc
import logging
import os
import resource
import signal
import sys
import time
from collections.abc import Callable

import psutil
from django.db import connections

logger = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.05
STATUS_CHECK_S = 5.0
EXIT_MEMORY = 86  # the child ran out of memory (MemoryError) and could not record it
EXIT_CRASH = 87  # the child raised out of the job body
MB = 2**20

_in_worker = False
_limit_mb: int | None = None  # in a job's child: its limit, for the messages


def mark_worker_process() -> None:
    """Called in each django-q2 worker process when it starts: jobs run isolated from here on."""
    global _in_worker
    _in_worker = True


def current_limit_mb() -> int | None:
    """The memory limit of the job running in this process (None outside a job's child)."""
    return _limit_mb


def memory_limit_message(limit_mb: int | None, used_mb: float | None = None) -> str:
    if limit_mb is None:
        return "The job ran out of memory. Use fewer rows or columns or a lighter algorithm."
    used = f" (it was using {used_mb:,.0f} MB)" if used_mb else ""
    return (f"memory limit of {limit_mb} MB reached{used}: the job was stopped. Use fewer rows or columns or a "
            "lighter algorithm, or ask an administrator for a larger limit.")


def unexpected_error_message(exc: BaseException) -> str:
    """What a job's error says for an exception nobody anticipated (a MemoryError names the limit)."""
    if isinstance(exc, MemoryError):
        return memory_limit_message(_limit_mb)
    return f"Unexpected error: {exc.__class__.__name__}: {exc}"


# --- measuring ------------------------------------------------------------------------------------------
def _private_bytes(pid: int) -> int:
    """Unique set size of one process: its private pages (and private pages swapped out)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            total = 0
            for line in handle:
                if line.startswith((b"Private_Clean:", b"Private_Dirty:", b"Private_Hugetlb:", b"Swap:")):
                    total += int(line.split()[1]) * 1024
            return total
    except FileNotFoundError:
        raise psutil.NoSuchProcess(pid) from None
    except OSError:  # no smaps_rollup (not Linux, or an old kernel): resident size is the next best
        return psutil.Process(pid).memory_info().rss


def job_memory_bytes(pid: int | None = None) -> int:
    """Memory a job's process (and its descendants) owns, in bytes; see the module docstring."""
    process = psutil.Process(pid)
    total = _private_bytes(process.pid)
    for child in process.children(recursive=True):
        try:
            total += _private_bytes(child.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def _data_bytes() -> int:
    with open("/proc/self/status", "rb") as handle:
        for line in handle:
            if line.startswith(b"VmData:"):
                return int(line.split()[1]) * 1024
    return 0


# --- running ---------------------------------------------------------------------------------------------
def run_job(body: Callable[[], object], *, memory_limit_mb: int,
            still_wanted: Callable[[], bool] = lambda: True) -> tuple[str, float | None]:
    """Run ``body`` (which finishes the job row itself) in a child process under ``memory_limit_mb``.

    Returns ("", peak MB) when the child ran ``body`` to its end, else (the error to record, peak MB): the
    caller then finishes the job row. ``still_wanted()`` is asked every ``STATUS_CHECK_S``; when it says no
    (the job row was ended elsewhere, e.g. declared lost), the child is killed. Inline (no child, no limit,
    no peak) outside a worker process.
    """
    if not _in_worker:
        body()
        return "", None
    connections.close_all()  # the child must open its own: a socket shared by two processes is corrupted
    gc.freeze()
    try:
        pid = os.fork()
    except OSError:
        gc.unfreeze()
        raise
    if pid == 0:
        _child(body, memory_limit_mb)  # never returns
    gc.unfreeze()
    return _watch(pid, memory_limit_mb, still_wanted)


def _child(body: Callable[[], object], memory_limit_mb: int) -> None:
    global _limit_mb
    code = EXIT_CRASH
    try:
        _limit_mb = memory_limit_mb
        signal.alarm(0)  # the worker's task time-out alarm belongs to the worker
        for sig in (signal.SIGALRM, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        _die_with_parent()
        soft_limit = _data_bytes() + 2 * memory_limit_mb * MB
        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        resource.setrlimit(resource.RLIMIT_DATA, (soft_limit if hard == resource.RLIM_INFINITY else min(soft_limit, hard), hard))
        body()
        code = 0
    except MemoryError:
        code = EXIT_MEMORY
    except BaseException:
        try:
            logger.exception("job process failed")
        except BaseException:
            pass
    finally:
        try:
            connections.close_all()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (prctl PR_SET_PDEATHSIG)."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):  # not Linux: the job's monitor thread notices the new parent instead
        logger.warning("PR_SET_PDEATHSIG unavailable; a job process may outlive a killed worker briefly")
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(EXIT_CRASH)


def _watch(pid: int, limit_mb: int, still_wanted: Callable[[], bool]) -> tuple[str, float]:
    """Wait for the child, killing it past its memory limit or once it is no longer wanted.
    Returns (error to record or "", peak MB)."""
    limit, peak = limit_mb * MB, 0
    killed_for_memory = unwanted = False
    next_check = time.monotonic() + STATUS_CHECK_S
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            try:
                used = job_memory_bytes(pid)
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                used = 0
            peak = max(peak, used)
            if used > limit and not killed_for_memory:
                killed_for_memory = True
                os.kill(pid, signal.SIGKILL)
            if time.monotonic() > next_check and not (killed_for_memory or unwanted):
                next_check = time.monotonic() + STATUS_CHECK_S
                if not _asked(still_wanted):
                    unwanted = True
                    os.kill(pid, signal.SIGKILL)
            time.sleep(WATCH_INTERVAL_S)
    except BaseException:  # the worker itself is stopping (its task time-out, a signal): the job goes with it
        _kill_and_reap(pid)
        raise
    peak_mb = round(peak / MB, 1)
    if unwanted:
        return "The job was ended elsewhere while it ran; its process was stopped.", peak_mb
    if killed_for_memory:
        return memory_limit_message(limit_mb, peak_mb), peak_mb
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        if code == 0:
            return "", peak_mb
        if code == EXIT_MEMORY:
            return memory_limit_message(limit_mb, peak_mb), peak_mb
        return f"The job's process ended unexpectedly (exit code {code}); see the worker's log.", peak_mb
    sig = os.WTERMSIG(status)
    name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
    hint = (f" It had reached {peak_mb:,.0f} MB of its {limit_mb} MB memory limit; the system may have run out "
            "of memory." if peak > 0.8 * limit else "")
    return f"The job's process was killed by {name}.{hint}", peak_mb


def _asked(still_wanted: Callable[[], bool]) -> bool:
    try:
        return still_wanted()
    except Exception:  # the database blinked: keep the job running, ask again later
        logger.warning("could not check whether the job is still wanted", exc_info=True)
        return True


def _kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
