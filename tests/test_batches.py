"""kgbias.batches and training.host_batch: a batch's integers prepared on the host, moved in one copy."""

import pytest
import torch

from kgbias import training
from kgbias.batches import to_device
from test_debias_attributes import TOY_WHITELIST, attr_config, small_toy, write


def test_tensors_already_on_the_device_are_returned_as_they_are():
    tensors = {"batch": torch.arange(6).view(2, 3), "negatives": torch.arange(4)}
    assert to_device(tensors, "cpu") is tensors


def test_one_packed_copy_gives_each_tensor_back_with_its_shape():
    tensors = {"batch": torch.arange(6).view(2, 3), "empty": torch.zeros(0, 4, dtype=torch.long),
               "negatives": torch.tensor([7, 8])}
    moved = to_device(tensors, "meta")  # a second device on any machine (shapes only)
    assert list(moved) == list(tensors)
    assert all(moved[name].device.type == "meta" and moved[name].shape == tensors[name].shape for name in tensors)


def test_a_tensor_that_is_not_int64_is_named():
    with pytest.raises(TypeError, match="mask: only int64"):
        to_device({"batch": torch.arange(3), "mask": torch.ones(3, dtype=torch.bool)}, "meta")


@pytest.mark.parametrize("attribute_vectors", [False, True])
def test_host_batch_gives_the_loss_that_batch_loss_finds_itself(tmp_path, attribute_vectors):
    kg = small_toy()
    config = attr_config(write(tmp_path, TOY_WHITELIST), attribute_vectors=attribute_vectors,
                         **({} if attribute_vectors else {"whitelist": ""}))
    model = training.make_model(config, kg)
    scorer = training.scoring_model(config, kg, model)
    debiasing = training.make_debiasing(config, kg, model=model)
    batch, negatives = kg.train[:300], torch.arange(20)
    prepared = training.host_batch(scorer, batch, negatives, config, debiasing, "cpu")
    assert torch.equal(prepared["people"], debiasing.people_in(batch)) and len(prepared["people"]) > 10
    assert (prepared["plan"] is not None) == attribute_vectors
    if attribute_vectors:
        assert len(prepared["plan"].tensors["twin_relations"]) > 0  # the batch has twins
    torch.testing.assert_close(training.batch_loss(scorer, config=config, debiasing=debiasing, **prepared),
                               training.batch_loss(scorer, batch, negatives, config, debiasing), rtol=0, atol=0)
