"""Notifications: webhooks announcing chosen decisions, durably (an outbox in status).

``outbox`` (pure) turns a tick's new history into outbox items and folds delivery outcomes
back; ``deliver.Notifier`` posts them in background tasks (a tick never waits on a webhook);
``urls`` resolves a webhook's URL locally (file or environment variable).
"""

from loopphase.notify.deliver import Notifier, Outcome
from loopphase.notify.outbox import fold

__all__ = ["Notifier", "Outcome", "fold"]
