"""``loopphase bench``: reproducible figures for reaction times, footprint and throughput."""
