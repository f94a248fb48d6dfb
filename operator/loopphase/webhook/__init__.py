"""Push webhooks: verify a git host's push notification and turn it into an immediate observe.

The payload is a hint only: it says *which* remote and branch moved, never *what* is there;
the files and commits are always read from the remote by the git watcher.
"""

from loopphase.webhook.counters import WebhookCounters
from loopphase.webhook.providers import PushEvent, sign_github
from loopphase.webhook.receiver import PushNotice, Receiver, Subscription, parse_listen
from loopphase.webhook.urls import repo_key

__all__ = [
    "PushEvent",
    "PushNotice",
    "Receiver",
    "Subscription",
    "WebhookCounters",
    "parse_listen",
    "repo_key",
    "sign_github",
]
