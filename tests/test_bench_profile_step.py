"""bench.profile_step: the per-method step report (its CUDA part is checked in tests/test_device.py)."""

import re

from bench.profile_step import profile_method
from kgbias.data import load_dataset


def test_the_report_gives_each_steps_milliseconds_and_the_operators_that_took_the_time():
    kg = load_dataset("toy")
    lines = profile_method("none", kg, "cpu", steps=2)
    assert re.fullmatch(r"== dot: \d+\.\d\d ms per step \(2 steps\)", lines[0])
    # the matrix products of the scores are among the operators, counted per profiled step
    assert re.search(r"profiled \(10 steps\): kernels 0\.00 ms per step, host \d+\.\d\d ms per step", lines[1])
    assert re.search(r"aten::mm\s.*\s30\s*$", lines[2], re.MULTILINE)
