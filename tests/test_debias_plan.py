"""The numpy batch plan's tables (kgbias/debias/plan.py)."""

import numpy as np
import pytest
import torch

from kgbias.debias.plan import _compact, value_pairs
from test_debias_attributes import TOY_WHITELIST, attr_config, small_toy, write


@pytest.mark.parametrize("values, dtype", [([0, 255], np.uint8), ([-1, 3], np.int8), ([0, 256], np.uint16),
                                           ([-129, 5], np.int16), ([0, 70_000], np.uint32), ([0, 2**40], np.int64)])
def test_tables_take_the_smallest_integer_type_that_holds_them(values, dtype):
    table = np.array(values, dtype=np.int64)
    compact = _compact(table)
    assert compact.dtype == dtype and compact.tolist() == values


def test_value_pairs_of_a_compact_table_are_the_int64_tables():
    # three entities with slots of values 0..299 (300: unused), so the compact table is uint16
    table = np.array([[299, 300], [300, 300], [7, 256]], dtype=np.int64)
    ids = np.array([2, 0, 1, 2])
    for given in (table, _compact(table)):
        position, value = value_pairs(given, 300, ids)
        assert position.tolist() == [0, 0, 1, 3, 3] and value.tolist() == [7, 256, 299, 7, 256]


def test_plans_are_int64_and_on_the_batch_device(tmp_path):
    from kgbias import training

    kg = small_toy()
    config = attr_config(write(tmp_path, TOY_WHITELIST))
    scorer = training.scoring_model(config, kg, training.make_model(config, kg))
    assert scorer.plan_tables().table_all.dtype == np.uint8  # the toy's few values
    plan = scorer.batch_plan(kg.train[:64], torch.arange(20))
    assert plan.tensors and all(t.dtype == torch.long and t.device.type == "cpu" for t in plan.tensors.values())
