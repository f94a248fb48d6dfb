"""Remote git watching shared by the local runner and the Kubernetes operator."""

from loopphase.git.errors import GitRemoteError, GitTimeoutError
from loopphase.git.redact import redact, redact_url
from loopphase.git.registry import WatcherRegistry, observe_async
from loopphase.git.runner import config_env
from loopphase.git.watcher import MAX_COMMITS, RemoteWatcher

__all__ = [
    "MAX_COMMITS",
    "GitRemoteError",
    "GitTimeoutError",
    "RemoteWatcher",
    "WatcherRegistry",
    "config_env",
    "observe_async",
    "redact",
    "redact_url",
]
