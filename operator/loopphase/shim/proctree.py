"""Kill a process tree and verify it is gone (REFERENCE.md lesson 14: kill, verify, record)."""

from __future__ import annotations

import logging
import time

import psutil

log = logging.getLogger(__name__)


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    living = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                living.append(proc)
        except psutil.NoSuchProcess:
            continue
    return living


def wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Poll until every process exited (zombies count as gone: only a reap is missing)."""
    deadline = time.monotonic() + timeout
    alive = _alive(procs)
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = _alive(alive)
    return alive


def kill_tree(pid: int, term_timeout: float = 3.0, kill_timeout: float = 3.0) -> list[int]:
    """SIGTERM the tree of ``pid``, wait, SIGKILL survivors, wait; return pids still alive.

    Blocking: run it in a thread from async code.
    """
    procs = tree(pid)
    if not procs:
        return []
    log.info("stopping process tree of %d (%d processes): SIGTERM", pid, len(procs))
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            continue
    alive = wait_gone(procs, term_timeout)
    if alive:
        log.warning("%d processes ignored SIGTERM; SIGKILL %s", len(alive), [p.pid for p in alive])
        for proc in alive:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                continue
        alive = wait_gone(alive, kill_timeout)
    if alive:
        log.error("processes survived SIGKILL: %s", [p.pid for p in alive])
    return [p.pid for p in alive]
