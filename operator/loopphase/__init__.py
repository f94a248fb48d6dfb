"""LoopPhase: supervise long-lived coding-agent loops."""

__version__ = "0.1.0"
