"""`loopphase timeline`: a run's history as a picture (matplotlib, the optional ``timeline`` extra).

``model`` reads a local run's logs into plain data (no plotting import); ``render`` draws it.
"""
