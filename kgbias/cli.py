"""Command line: ``kgbias data|train|evaluate`` (also ``python -m kgbias``).

Training flags are generated from :class:`~kgbias.config.TrainConfig`, so ``--embedding-dim``
is the field ``embedding_dim`` everywhere (notebook parameters, config files, run folders).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import typing
from pathlib import Path

from .config import TrainConfig
from .errors import KgbiasError

EXAMPLES = """\
examples:
  kgbias data list                         registered datasets
  kgbias data describe fb15k-237           sizes and sensitive-attribute coverage
  kgbias train                             Basic TransE on FB15k-237, the papers' setting
  kgbias train --dataset toy --embedding-dim 32 --n-negatives 100 --batch-size 256 --n-epochs 20
  kgbias train --debias kl --attribute-vectors true --whitelist default   KL + Attr.
  kgbias train --debias kl --debias-weights gender=1 --debias-weights religion=100
  kgbias train --debias bose               Bose & Hamilton's adversarial filters (paper 2's baseline)
  kgbias train --remove-sensitive true     paper 2's "Removed attributes" (Table 9)
  kgbias evaluate results/<run folder> --per-relation --exclude-sensitive
"""


def _parse_value(text: str):
    """Value of a ``KEY=VALUE`` flag: a number or boolean when it looks like one."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def _boolean(text: str) -> bool:
    value = {"true": True, "false": False, "1": True, "0": False}.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return value


def _optional_float(text: str) -> float | None:
    return None if text.lower() == "none" else float(text)


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, with the field's comment and default as help.

    Dict fields (``dataset_options``, ``debias_weights``) take repeated ``KEY=VALUE`` flags.
    """
    hints = typing.get_type_hints(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        if hints[field.name] is dict:
            parser.add_argument(flag, dest=field.name, action="append", default=[], metavar="KEY=VALUE",
                                help=f"{field.metadata['help']} (repeat the flag for more)")
            continue
        kind = {int: int, float: float, str: str, bool: _boolean}.get(hints[field.name], _optional_float)
        parser.add_argument(flag, type=kind, default=field.default,
                            help=f"{field.metadata['help']} (default: {field.default})")


def _key_values(items: list[str], flag: str) -> dict:
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise KgbiasError(f"{flag} expects KEY=VALUE, got {item!r}")
        values[key] = _parse_value(value)
    return values


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    hints = typing.get_type_hints(TrainConfig)
    values = {}
    for field in dataclasses.fields(TrainConfig):
        value = getattr(args, field.name)
        if hints[field.name] is dict:
            value = _key_values(value, "--" + field.name.replace("_", "-"))
        values[field.name] = value
    return TrainConfig(**values)


def _data_command(args) -> int:
    from . import data

    if args.action == "list":
        for name in data.list_datasets():
            print(name)
        return 0
    if args.name is None:
        raise KgbiasError(f"kgbias data {args.action} needs a dataset name (see `kgbias data list`)")
    if args.action == "fetch":
        for path in data.fetch_dataset(args.name, progress=not args.quiet):
            print(path)
        return 0
    options = _key_values(args.dataset_options, "--dataset-options")
    data.check_dataset_options(options, "--dataset-options")
    kg = data.load_dataset(args.name, progress=not args.quiet, **options)
    print(json.dumps(kg.describe(), indent=2))
    for attribute in kg.sensitive:
        print(f"\n{attribute}: top values (people)")
        print(kg.attribute_counts(attribute).head(args.top).to_string())
    return 0


def _check_device(device: str) -> None:
    """A one-line error for a device this torch cannot use, before any data is loaded."""
    import torch

    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as error:
        raise KgbiasError(f"--device {device}: not usable here ({str(error).splitlines()[0]})") from None


def _check_run_dir(path: Path | None) -> None:
    """A one-line error for a --run-dir that cannot become a folder, before any data is loaded."""
    if path is None:
        return
    for existing in (path, *path.parents):
        if existing.exists():
            if not existing.is_dir():
                where = "exists" if existing == path else f"is inside {existing}, which exists"
                raise KgbiasError(f"--run-dir {path}: {where} and is not a folder; choose another run folder")
            return


def _train_command(args) -> int:
    from .data import check_dataset_options
    from .training import train

    config = config_from_args(args)
    check_dataset_options(config.dataset_options, "--dataset-options")
    _check_device(args.device)
    _check_run_dir(args.run_dir)
    run = train(config, run_dir=args.run_dir, device=args.device, progress=not args.quiet)
    print(json.dumps({"run": str(run.path), **run.metrics}, indent=2))
    return 0


def _evaluate_command(args) -> int:
    from .evaluate import link_prediction
    from .training import evaluation_model, load_run

    _check_device(args.device)
    run = load_run(args.run, device=args.device)
    # as in its metrics.json: a KL + Attr. run with its attribute vectors, a Bose run with all filters
    result = link_prediction(evaluation_model(run.config, run.kg, run.model), run.kg, split=args.split,
                             filtered=not args.raw, ties=args.ties, exclude_sensitive=args.exclude_sensitive,
                             per_relation=args.per_relation)
    if args.per_relation:
        metrics, frame = result
        print(frame.round(4).to_string(index=False))
    else:
        metrics = result
    print(json.dumps(metrics, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kgbias", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description="Measure and reduce social bias in knowledge-graph embeddings.")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or log lines")
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="list, fetch or describe datasets")
    data.add_argument("action", choices=["list", "fetch", "describe"])
    data.add_argument("name", nargs="?", help="dataset name (see `kgbias data list`)")
    data.add_argument("--top", type=int, default=10, help="values shown per attribute (describe)")
    data.add_argument("--dataset-options", action="append", default=[], metavar="KEY=VALUE",
                      help="dataset parameters, as for train, e.g. the toy graph's skew (repeat the flag for more)")
    data.set_defaults(handler=_data_command)

    train = commands.add_parser(
        "train", help="train a model (resumes an interrupted run, reuses a finished one)",
        description="Train in results/<run name>/ (or --run-dir). Rerunning the same command resumes "
                    "an interrupted run and reuses a finished one. Defaults are the papers' setting.")
    add_config_flags(train)
    train.add_argument("--run-dir", type=Path, default=None, help="run folder (default: results/<run name>)")
    train.add_argument("--device", default="cpu", help="cpu (default) or e.g. cuda")
    train.set_defaults(handler=_train_command)

    evaluate = commands.add_parser("evaluate", help="link prediction metrics of a finished run")
    evaluate.add_argument("run", type=Path, help="run folder written by `kgbias train`")
    evaluate.add_argument("--split", default="test", choices=["train", "valid", "test"])
    evaluate.add_argument("--ties", default="realistic", choices=["realistic", "optimistic", "pessimistic"])
    evaluate.add_argument("--raw", action="store_true", help="raw ranks (default: filtered)")
    evaluate.add_argument("--exclude-sensitive", action="store_true",
                          help="drop the sensitive attributes' triples from the split, profession's kept "
                               "(paper 2's '(filtered)')")
    evaluate.add_argument("--per-relation", action="store_true", help="also print metrics per relation")
    evaluate.add_argument("--device", default="cpu")
    evaluate.set_defaults(handler=_evaluate_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        return args.handler(args)
    except KgbiasError as error:
        print(f"kgbias: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # training checkpoints every epoch and writes atomically: the same command resumes
        print("kgbias: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `kgbias data describe ... | head`: the reader left (as the Python docs advise)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 1


if __name__ == "__main__":
    sys.exit(main())
