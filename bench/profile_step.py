"""``python -m bench.profile_step --device cuda``: where a training step's time goes, per method.

For Basic, KL and KL + Attr. on FB15k-237 in the papers' setting (the bench's ``Method``): the
milliseconds per step over ``--steps`` steps after 20 warm-up steps, then, on CUDA, the calls that
make the host wait for the device (``torch.cuda.set_sync_debug_mode``, by source line, over 5
steps), then ``torch.profiler`` over 10 steps: the device's kernel time and the host's own time per
step, the number of aten calls, and the operators ranked by host time. On a GPU a step that
launches many small operations is bound by the host, and each wait for the device also stops
the host from queueing the next kernels. Not part of ``python -m bench``: a diagnosis, not a
target.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import time
import warnings
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from kgbias.runs import atomic_write

from .common import description, load_fb15k237, setup_torch, synchronize
from .kgbias_train import DEBIAS, Method

WARM_UP, SYNC_STEPS, PROFILED_STEPS = 20, 5, 10


def synchronizing_lines(method: Method, triples: torch.Tensor) -> collections.Counter:
    """Source lines (``file:line``) of the calls that waited for the device, with their counts."""
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            method.train(triples, 1)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return collections.Counter(f"{os.path.relpath(w.filename)}:{w.lineno}" for w in caught
                               if "synchroniz" in str(w.message))


def plan_ms(method: Method, triples: torch.Tensor) -> float:
    """Median milliseconds of ``kgbias.training.host_batch`` over the batches of ``triples``, with
    each batch's negatives drawn as training draws them (the plans are made, not used)."""
    generator, batch_size, times = torch.Generator().manual_seed(0), method.config.batch_size, []
    for start in range(0, len(triples), batch_size):
        batch = triples[start:start + batch_size]
        negatives = torch.randint(method.model.n_entities, (method.config.n_negatives,), generator=generator)
        started = time.perf_counter()
        method.training.host_batch(method.scorer, batch, negatives, method.config, method.debiasing, method.device)
        times.append(time.perf_counter() - started)
    synchronize(method.device)
    return statistics.median(times) * 1000


def profile_method(name: str, kg, device: str, steps: int) -> list[str]:
    method = Method(name, kg, "dot", device)
    triples, start, batch_size = kg.train, 0, method.config.batch_size

    def take(n_steps: int) -> torch.Tensor:  # the next triples, from the start again on a small graph
        nonlocal start
        chunk = triples[torch.arange(start, start + n_steps * batch_size) % len(triples)]
        start += n_steps * batch_size
        return chunk

    method.train(take(WARM_UP), 1)
    chunk = take(steps)
    synchronize(device)
    started = time.perf_counter()
    method.train(chunk, 1)
    synchronize(device)
    ms = (time.perf_counter() - started) / steps * 1000
    lines = [f"== {method.label}: {ms:.2f} ms per step ({steps} steps)"]
    if method.config.attribute_vectors:  # the host's share: the KL term's people and the BatchPlan
        lines.append(f"   of which the batch's people and plan on the host: {plan_ms(method, chunk):.2f} ms per step")
    if device.startswith("cuda"):
        waits = synchronizing_lines(method, take(SYNC_STEPS))
        lines.append(f"   waits for the device: {sum(waits.values()) / SYNC_STEPS:.1f} per step")
        lines += [f"   {count / SYNC_STEPS:.1f} per step at {where}" for where, count in waits.most_common()]
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    with profile(activities=activities) as profiler:
        method.train(take(PROFILED_STEPS), 1)
        synchronize(device)
    averages = profiler.key_averages()
    kernel_ms = sum(event.self_device_time_total for event in averages) / PROFILED_STEPS / 1000
    host_ms = sum(event.self_cpu_time_total for event in averages) / PROFILED_STEPS / 1000
    aten_calls = sum(event.count for event in averages if event.key.startswith("aten::")) / PROFILED_STEPS
    lines.append(f"   profiled ({PROFILED_STEPS} steps): kernels {kernel_ms:.2f} ms per step, host {host_ms:.2f} ms "
                 f"per step (with the profiler's overhead), {aten_calls:.0f} aten calls per step (nested included)")
    lines.append(averages.table(sort_by="self_cpu_time_total", row_limit=25))
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=description(__doc__))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--steps", type=int, default=100, help="steps timed per method (default 100)")
    parser.add_argument("--methods", default="none,kl,kl+attr",
                        help=f"comma list of {', '.join(m for m in DEBIAS if m != 'bose')}")
    parser.add_argument("--out", default=None, help="also write the report to this file")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.methods.split(",") if name.strip()]
    unknown = sorted(set(names) - set(DEBIAS) | ({"bose"} & set(names)))
    if unknown or not names:
        parser.error(f"--methods: unknown or unsupported {unknown}")
    setup_torch(args.threads)
    kg = load_fb15k237()
    report = []
    for name in names:
        lines = profile_method(name, kg, args.device, args.steps)
        print("\n".join(line for line in lines if line.startswith(("==", "   "))), flush=True)
        report += lines
    if args.out:
        atomic_write(Path(args.out), lambda file: file.write(("\n".join(report) + "\n").encode()))


if __name__ == "__main__":
    main()
