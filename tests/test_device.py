"""Training on a GPU gives the CPU's run up to float rounding, and its run folder loads on the CPU.

Skipped where torch sees no CUDA device (CI); run on a GPU machine with
``python -m pytest tests/test_device.py``. The batches and negatives come from the same seeded CPU
generator on both devices, so the only differences are the order of float sums.
Where each test reads ``cuda``, putting ``cpu`` checks its logic on a machine without a GPU.
"""

import pytest
import torch

from kgbias import TrainConfig, gradient_bias, train
from kgbias.training import load_graph, load_run

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

BASE = dict(dataset="toy", dataset_options={"n_people": 300}, embedding_dim=16, n_negatives=64,
            batch_size=128, n_epochs=4, valid_every=2)
METHODS = {
    "Basic": {},
    "KL": {"debias": "kl"},
    "KL, relations trained": {"debias": "kl", "kl_train_relations": True},
    "KL, every person": {"debias": "kl", "kl_people": "all"},
    "KL, batch + every person": {"debias": "kl", "kl_people": "batch+all"},
    "KL, batch + centroid": {"debias": "kl", "kl_people": "batch+centroid"},
    "KL + Attr.": {"debias": "kl", "attribute_vectors": True, "whitelist": "default"},
    "Bose": {"debias": "bose"},
    "Removed attributes": {"remove_sensitive": True},
}


@pytest.fixture(scope="module")
def kg():
    return load_graph(TrainConfig(**BASE))


@pytest.mark.parametrize("method", list(METHODS))
def test_a_gpu_run_matches_the_cpu_run(kg, tmp_path, method):
    config = TrainConfig(**BASE, **METHODS[method])
    if method == "Bose":  # its min-max game amplifies rounding (on the CPU, 1 and 2 threads give epoch
        # losses up to 3% apart after 4 epochs): compare one step, the whole train split as one batch
        config = TrainConfig(**{**config.to_dict(), "n_epochs": 1, "batch_size": len(kg.train)})
    on_cpu = train(config, kg=kg, run_dir=tmp_path / "cpu")
    on_gpu = train(config, kg=kg, run_dir=tmp_path / "gpu", device="cuda")
    assert next(on_gpu.model.parameters()).device.type == "cuda"
    assert on_gpu.history["loss"].to_numpy() == pytest.approx(on_cpu.history["loss"].to_numpy(), rel=1e-3)
    if method != "Bose":  # after Bose's one step all scores are about equal: ranks follow the rounding
        for name in ("mrr_filtered", "hits_at_10_filtered"):
            assert on_gpu.metrics["test"][name] == pytest.approx(on_cpu.metrics["test"][name], abs=0.01)

    reloaded = load_run(tmp_path / "gpu", device="cpu")  # trained on a GPU, analysed on a laptop
    assert next(reloaded.model.parameters()).device.type == "cpu"
    assert reloaded.metrics["test"] == on_gpu.metrics["test"]
    for name, value in on_gpu.model.state_dict().items():
        assert torch.equal(reloaded.model.state_dict()[name], value.cpu()), name


def test_gradient_bias_on_a_gpu_model_equals_the_cpu_one(kg, tmp_path):
    run = train(TrainConfig(**BASE), kg=kg, run_dir=tmp_path / "run", device="cuda")
    on_gpu = gradient_bias(run.model, kg, min_count=1)
    on_cpu = gradient_bias(run.model.cpu(), kg, min_count=1)
    on_gpu, on_cpu = on_gpu.set_index("target").sort_index(), on_cpu.set_index("target").sort_index()
    assert list(on_gpu.index) == list(on_cpu.index) and len(on_cpu) > 5
    assert on_gpu["bias"].to_numpy() == pytest.approx(on_cpu["bias"].to_numpy(), rel=1e-4, abs=1e-7)


def test_the_step_profile_names_the_lines_that_wait_for_the_gpu(kg):
    import os

    import kgbias.training
    from bench.kgbias_train import Method
    from bench.profile_step import synchronizing_lines

    method = Method("none", kg, "dot", "cuda")
    waits = synchronizing_lines(method, kg.train[:2 * method.config.batch_size])  # two steps
    # each step reads its loss back (`total += loss.item()`): one wait per step on that line
    source = kgbias.training.__file__
    item_line = next(number for number, line in enumerate(open(source), 1) if "total += loss.item()" in line)
    assert waits[f"{os.path.relpath(source)}:{item_line}"] == 2


def test_host_batch_gives_the_plan_of_the_same_batch_on_the_gpu(kg):
    """host_batch's packed copy carries the plan that batch_plan returns for the batch on the GPU
    (both made on the host with numpy; only the copy differs)."""
    from kgbias.training import host_batch, make_debiasing, make_model, scoring_model

    config = TrainConfig(**BASE, **METHODS["KL + Attr."])
    model = make_model(config, kg).to("cuda")
    scorer = scoring_model(config, kg, model).to("cuda")
    debiasing = make_debiasing(config, kg, "cuda", model=model)
    batch, negatives = kg.train[:512], torch.arange(64)
    prepared = host_batch(scorer, batch, negatives, config, debiasing, "cuda")
    people = debiasing.people_in(batch.cuda())
    on_gpu = scorer.batch_plan(batch.cuda(), negatives.cuda(), people)
    assert torch.equal(prepared["people"], people)
    plan = prepared["plan"]
    assert (plan.sizes, plan.groups, plan.candidate_groups) == (on_gpu.sizes, on_gpu.groups, on_gpu.candidate_groups)
    assert list(plan.tensors) == list(on_gpu.tensors)
    for name, tensor in plan.tensors.items():
        assert tensor.device.type == "cuda" and torch.equal(tensor, on_gpu.tensors[name]), name
