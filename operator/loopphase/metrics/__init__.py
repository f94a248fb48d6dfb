"""Prometheus metrics of the controller tick, shared by ``loopphase run`` and the operator.

``LoopMetrics`` owns one ``CollectorRegistry`` per process (never the module-level default);
``record_tick`` derives every series from what a tick already has (the status before and
after, the actions and their results, the observations), so both shells export the same
series. ``serve`` exposes a registry over HTTP (prometheus_client's own server thread).
"""

from loopphase.metrics.series import LoopMetrics, MetricsServeError, record_tick, serve

__all__ = ["LoopMetrics", "MetricsServeError", "record_tick", "serve"]
