"""A scripted model endpoint for running the real agent CLIs without a real model.

``loopphase model-server --script S.yaml`` (or :class:`loopphase.modelserver.server.ModelServer`
in tests) answers the Anthropic Messages API and the OpenAI-compatible chat completions API
from a per-agent script: text turns, tool calls the real CLI executes, slow and hung streams,
usage limits with the subscription headers, and the API errors the CLIs draw screens for.
"""
