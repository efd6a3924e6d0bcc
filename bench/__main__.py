"""``python -m bench``: run every measurement of issue 6, print a table of ratios, write a CSV.

Each measurement runs in its own subprocess, one after the other (never two at once, so they do
not compete for cores); the parent collects each child's JSON result line and its peak resident
memory from ``os.wait4``. PyKEEN parts run under ``--peer-python`` (default: this interpreter when
it can import pykeen, else ``build/venv-bench/bin/python`` when that exists), so PyKEEN may live in a
separate virtual environment.

Quick check (about 5 minutes on a quiet 2-core machine): ``python -m bench --quick``. Full run:
``make bench`` (``python -m bench``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from kgbias.runs import atomic_write

from .common import REPO, RESULT_PREFIX, description, row

SECTIONS = ("train", "pykeen", "evaluate", "bias", "debias", "scaling")
SCALING_SIZES = (10_000, 100_000, 1_000_000)
# the debias section's graphs: issue 5 asks for the overhead on FB15K (paper 2's, where it measured
# 1.31x) and FB15k-237; --quick times FB15k-237 only
DEBIAS_SECTIONS = {"fb15k-237": ("debias", ""), "fb15k": ("debias-fb15k", " (FB15K)")}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=description(__doc__))
    parser.add_argument("--quick", action="store_true",
                        help="short run: 2 kgbias epochs, PyKEEN trained on 2000 triples, 2000 test triples ranked, "
                             "10 scaling batches, debiasing on FB15k-237 only")
    parser.add_argument("--device", default="cpu", help="torch device for every part, e.g. cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "bench" / "results.csv")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma list of sections: {','.join(SECTIONS)}")
    parser.add_argument("--epochs", type=int, default=None, help="kgbias epochs timed (default 5; quick 2)")
    parser.add_argument("--pykeen-epochs", type=int, default=2)
    parser.add_argument("--pykeen-subset", type=int, default=None,
                        help="PyKEEN trains on this many random triples per epoch and is scaled up to the "
                             "full epoch (default 20000; quick 2000; 0: the whole epoch, about an hour)")
    parser.add_argument("--scaling-batches", type=int, default=None,
                        help="batches timed per synthetic graph (default 200; quick 10; 0: whole epochs)")
    parser.add_argument("--test-subset", type=int, default=None,
                        help="evaluation ranks the first n test triples (default 0: all 20438; quick 2000)")
    parser.add_argument("--peer-python", default=None, help="interpreter that can import pykeen")
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(args.only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {unknown}; known: {', '.join(SECTIONS)}")
    args.epochs = args.epochs or (2 if args.quick else 5)
    if args.pykeen_subset is None:
        args.pykeen_subset = 2000 if args.quick else 20000
    if args.test_subset is None:
        args.test_subset = 2000 if args.quick else 0
    if args.scaling_batches is None:
        args.scaling_batches = 10 if args.quick else 200
    return args


def peer_python(choice: str | None) -> str | None:
    """An interpreter that imports pykeen, or None (the PyKEEN rows are then skipped)."""
    candidates = [choice] if choice else [sys.executable, str(REPO / "build" / "venv-bench" / "bin" / "python")]
    for python in candidates:
        if Path(python).exists() and subprocess.run([python, "-c", "import pykeen"], capture_output=True).returncode == 0:
            return python
    return None


def run_child(python: str, module: str, *args: str) -> list[dict]:
    """Run ``python -m bench.<module> args``; its rows, with the child's peak RSS from ``wait4``."""
    command = [python, "-m", f"bench.{module}", *map(str, args)]
    print(f"[bench] $ {' '.join(command[1:])}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    stdout = process.stdout.read()
    process.stdout.close()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = code = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    lines = [line for line in stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if code != 0 or not lines:
        return [row("error", f"{module} {' '.join(map(str, args))}", None, "s",
                    note=f"failed with exit code {code}; see its stderr above")]
    rows = json.loads(lines[-1][len(RESULT_PREFIX):])
    for item in rows:
        item["peak_rss_mib"] = usage.ru_maxrss / 1024  # KiB on Linux; the child and its descendants
        item["subprocess_wall_s"] = wall
    return rows


def run_all(args) -> list[dict]:
    work = REPO / "build" / "bench"  # trained weights (12 MB each) stay out of a tracked --out folder
    work.mkdir(parents=True, exist_ok=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    common = ["--device", args.device] + (["--threads", str(args.threads)] if args.threads else [])
    python = sys.executable
    weights = {c: work / f"kgbias-{c}.pt" for c in ("dot", "l2")}
    rows: list[dict] = []
    need_weights = {"evaluate", "bias"} & set(args.only)
    if "train" in args.only or need_weights:
        rows += run_child(python, "kgbias_train", "--comparator", "dot", "--epochs", args.epochs, "--floor",
                          "--floor-rounds", 5 if args.quick else 40, "--save", weights["dot"], *common)
        rows += run_child(python, "kgbias_train", "--comparator", "l2", "--epochs", args.epochs,
                          "--save", weights["l2"], *common)

    peer = peer_python(args.peer_python) if {"pykeen", "evaluate"} & set(args.only) else None
    if {"pykeen", "evaluate"} & set(args.only) and peer is None:
        rows.append(row("pykeen", "PyKEEN", None, "s", note="skipped: pykeen not importable "
                        "(pip install -e '.[bench]' or pass --peer-python)"))
    if "pykeen" in args.only and peer:
        for model in ("l2", "dot"):
            rows += run_child(peer, "pykeen_peer", "train", "--model", model, "--epochs", args.pykeen_epochs,
                              "--subset", args.pykeen_subset, *common)

    if "evaluate" in args.only:
        for comparator in ("l2",) if args.quick else ("l2", "dot"):
            subset = ["--test-subset", args.test_subset]
            rows += run_child(python, "evaluation", "--weights", weights[comparator], "--comparator", comparator,
                              *subset, *common)
            if peer:
                rows += run_child(peer, "pykeen_peer", "evaluate", "--model", comparator,
                                  "--weights", weights[comparator], *subset, *common)

    if "bias" in args.only:
        rows += run_child(python, "evaluation", "--weights", weights["dot"], "--comparator", "dot", "--bias", *common)

    if "debias" in args.only:  # with a Basic of its own in each section
        # Basic, KL and KL + Attr. in one process, epochs alternated, so that the machine's drift
        # (about 15% between runs on a shared VM) does not enter their ratios; Bose (about 6x an
        # epoch) apart, against the same Basic
        for dataset, (section, _) in DEBIAS_SECTIONS.items():
            if args.quick and dataset != "fb15k-237":
                continue
            for methods, epochs in (("none,kl,kl+attr", args.epochs), ("bose", min(args.epochs, 3))):
                rows += [{**item, "section": section} for item in
                         run_child(python, "kgbias_train", "--dataset", dataset, "--comparator", "dot", "--debias",
                                   methods, "--epochs", epochs,
                                   "--interleaved-pairs", 0 if methods == "bose" else (10 if args.quick else 80), *common)]

    if "scaling" in args.only:
        # each size twice, in the order small to large and back: the machine's drift over the
        # minutes of the section (up to 25% here) then weighs on every size alike
        timed = []
        for n_entities in (*SCALING_SIZES, *reversed(SCALING_SIZES)):
            timed += run_child(python, "scaling", "--n-entities", n_entities, "--batches", args.scaling_batches,
                               *common)
        rows += merge_scaling_repeats(timed)
    return rows


def merge_scaling_repeats(rows: list[dict]) -> list[dict]:
    """One row per graph size from its repeated timings: the mean seconds, the largest peak memory.

    Failed children's error rows pass through unchanged.
    """
    by_size: dict[int, list[dict]] = {}
    merged = [r for r in rows if r["section"] != "scaling"]
    for item in rows:
        if item["section"] == "scaling":
            by_size.setdefault(item["n_entities"], []).append(item)
    for repeats in by_size.values():
        per_million = [r["s_per_million_triples"] for r in repeats]
        peaks = {key: [r[key] for r in repeats if r.get(key) is not None] for key in ("peak_rss_mib", "peak_device_mib")}
        kept = [part for part in repeats[0]["note"].split("; ") if not part.startswith("s per 1e6 triples")]
        merged.append({**repeats[0],
                       "value": sum(r["value"] for r in repeats) / len(repeats),
                       "s_per_million_triples": sum(per_million) / len(repeats),
                       **{key: max(values) if values else None for key, values in peaks.items()},
                       "subprocess_wall_s": sum(r.get("subprocess_wall_s", 0.0) for r in repeats),
                       "note": "; ".join([f"mean of {len(repeats)} timings, s per 1e6 triples "
                                          + ", ".join(f"{x:.2f}" for x in per_million), *kept])})
    return merged


# --- ratios against the targets ------------------------------------------------------
def _find(rows, name, section=None):
    return next((r for r in rows if r["name"] == name and r.get("value") is not None
                 and section in (None, r["section"])), None)


def add_ratios(rows: list[dict]) -> list[dict]:
    """Ratio rows (section ``ratio``) for each target of issue 6 whose inputs were measured."""
    ratios = []

    def ratio(name, numerator, denominator, target, met, note="", section=None):
        a, b = _find(rows, numerator, section), _find(rows, denominator, section)
        if a and b and b["value"]:
            value = a["value"] / b["value"]
            paired = a.get("epoch_seconds"), b.get("epoch_seconds")
            if a.get("alternated") and b.get("alternated") and len(paired[0]) == len(paired[1]) > 1:
                note = (note + "; " if note else "") + "per steady epoch: " + ", ".join(
                    f"{x / y:.2f}" for x, y in zip(paired[0][1:], paired[1][1:]))
            ratios.append(row("ratio", name, value, "x", numerator=numerator, denominator=denominator,
                              target=target, met=met(value), note=note))

    def interleaved_ratio(name, measured, target, limit, section):
        """A ratio measured in alternation (a train-section row with its median's interval): met only
        when the whole interval is below ``limit``."""
        found = _find(rows, measured, section)
        if found:
            upper = found.get("interval_high", found["value"])
            ratios.append(row("ratio", name, found["value"], "x", target=target, met=upper <= limit,
                              note=found["note"]))

    # the train section's own Basic: a debias section's alternates its epochs with other methods'
    ratio("steady epoch / matmul floor", "kgbias dot steady epoch", "matmul floor per epoch",
          "<= 1.5", lambda v: v <= 1.5, section="train")
    # the same from steps and products timed in alternation
    interleaved_ratio("step / matmul floor, interleaved", "kgbias dot step / matmul floor, interleaved",
                      "<= 1.5", 1.5, "train")
    ratio("first epoch / steady epoch", "kgbias dot first epoch", "kgbias dot steady epoch",
          "<= 1.0", lambda v: v <= 1.0, section="train")
    for section, suffix in DEBIAS_SECTIONS.values():
        ratio(f"KL / Basic epoch{suffix}", "kgbias dot+kl steady epoch", "kgbias dot steady epoch",
              "reported (paper: 1.04)", lambda v: None, section=section)
        ratio(f"KL + Attr. / Basic epoch{suffix}", "kgbias dot+kl+attr steady epoch", "kgbias dot steady epoch",
              "<= 1.15 (paper: 1.31)", lambda v: v <= 1.15, section=section)
        # the same ratio from interleaved chunks of steps: the epochs' ratio swings with the machine
        interleaved_ratio(f"KL + Attr. / Basic step, chunks interleaved{suffix}",
                          "kgbias dot+kl+attr / dot step, chunks interleaved", "<= 1.15 (paper: 1.31)", 1.15, section)
        ratio(f"Bose / Basic epoch{suffix}", "kgbias dot+bose steady epoch", "kgbias dot steady epoch",
              "reported (paper: 7.8)", lambda v: None, section=section)
    for model in ("l2", "dot"):
        ratio(f"PyKEEN / kgbias epoch ({model})", f"pykeen {model} steady epoch", f"kgbias {model} steady epoch",
              ">= 3", lambda v: v >= 3)
        ratio(f"PyKEEN / kgbias evaluation ({model})", f"pykeen RankBasedEvaluator ({model})",
              f"kgbias link_prediction ({model})", ">= 2", lambda v: v >= 2)
        ours, theirs = _find(rows, f"kgbias link_prediction ({model})"), _find(rows, f"pykeen RankBasedEvaluator ({model})")
        if ours and theirs:
            equal = round(ours["mrr"], 4) == round(theirs["mrr"], 4)
            ratios.append(row("ratio", f"MRR kgbias - PyKEEN ({model})", ours["mrr"] - theirs["mrr"], "",
                              target="equal to 4 decimals", met=equal,
                              note=f"kgbias {ours['mrr']:.4f}, PyKEEN {theirs['mrr']:.4f} (realistic ties)"))
    scaling = sorted((r for r in rows if r["section"] == "scaling" and r.get("value") is not None),
                     key=lambda r: r["n_entities"])
    for small, large in zip(scaling, scaling[1:]):
        growth = large["s_per_million_triples"] / small["s_per_million_triples"]
        ratios.append(row("ratio", f"s per 1e6 triples, {large['n_entities']:.0e} / {small['n_entities']:.0e} entities",
                          growth, "x", target="<= 1 (linear in triples)", met=growth <= 1.1,
                          note="<= 1.1 counted as met (timing noise)"))
    return rows + ratios


# --- output ------------------------------------------------------------------------------------
def machine_info(args) -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "device": args.device, "python": platform.python_version(), "quick": args.quick,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "load_average_start": round(os.getloadavg()[0], 2)}
    if args.device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def format_table(rows: list[dict]) -> str:
    def fmt(value, unit=""):
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "NO"
        if isinstance(value, float):
            if math.isnan(value):
                return "nan"
            text = f"{value:.4f}" if unit == "" else f"{value:.3g}" if abs(value) >= 1000 else f"{value:.2f}"
            return text + (f" {unit}" if unit else "")
        return str(value)

    header = ["section", "measurement", "value", "target", "met", "peak RSS MiB", "note"]
    body = [[r["section"], r["name"], fmt(r.get("value"), r.get("unit", "")), r.get("target", ""),
             fmt(r.get("met")), fmt(r.get("peak_rss_mib"), "") if r.get("peak_rss_mib") else "",
             r.get("note", "")] for r in rows]
    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header) - 1)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)) + "  " + str(line[-1])
             for line in [header, *body]]
    lines.insert(1, "-" * min(160, len(lines[0]) + 20))
    return "\n".join(lines)


def write_csv(rows: list[dict], path: Path, machine: dict) -> None:
    rows = [{**r, **{f"machine_{k}": v for k, v in machine.items()}} for r in rows]
    columns = list(dict.fromkeys(key for r in rows for key in r))
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda file: file.write(text.getvalue().encode()))


def main(argv=None) -> None:
    args = parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    machine = machine_info(args)
    rows = add_ratios(run_all(args))
    machine["load_average_end"] = round(os.getloadavg()[0], 2)
    write_csv(rows, args.out, machine)
    print(f"\nkgbias benchmark ({'quick' if args.quick else 'full'}) on {machine['cpu']}, {machine['cores']} cores, "
          f"torch {machine['torch']} ({machine['threads']} threads), device {args.device}; "
          f"load average {machine['load_average_start']} -> {machine['load_average_end']}")
    print(format_table(rows))
    print(f"\nwritten: {args.out}")
    if any(r["section"] == "error" for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
