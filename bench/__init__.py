"""Speed benchmark of kgbias (issue 6): the compute floor, PyKEEN, evaluation, bias measure, scaling.

Run it from the repository root with ``make bench`` or ``python -m bench`` (``--help`` for the
options). Every measurement runs in its own subprocess, one after the other, so each gets its own
peak memory (``ru_maxrss`` from ``os.wait4``) and none inherits another's allocator state. PyKEEN
is a benchmark-only dependency (``pip install -e ".[bench]"``); without it the PyKEEN rows are
reported as skipped.
"""
