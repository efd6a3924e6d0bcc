"""Training: softmax (or margin) loss over negatives shared in the batch, AdaGrad with warm-up.

``train(config)`` runs in a run folder (see :mod:`kgbias.runs`): it resumes from the last
checkpoint after an interruption, reuses a finished run with the same config, and refuses a
folder that holds another config. Same seed, same numbers on the CPU.

Debiasing options of the one entry point (paper 2's rows): ``debias="kl"`` (KL loss, with
``attribute_vectors``: KL + Attr.), ``debias="bose"`` (Bose & Hamilton's adversarial filters,
:mod:`kgbias.debias.adversarial`) and ``remove_sensitive`` ("Removed attributes", Table 9).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import torch

from . import paths
from .batches import to_device
from .config import TrainConfig
from .debias.adversarial import AttributeFilters, BoseAdversary, bose_batch_loss, filtered_model, sample_mask
from .debias.attributes import AttributeAwareModel, AttributeVectors
from .debias.whitelists import is_shipped_name, load_whitelist, resolve_whitelist
from .debias.kl import FB15K_WEIGHTS, KLDebiasing
from .debias.plan import BatchPlan
from .errors import RunError
from .evaluate import KnownAnswers, excluded_relations, link_prediction
from .graph import KnowledgeGraph
from .losses import margin_ranking_loss, softmax_loss
from .models import KGModel, build_model
from .optim import SparseAdagrad
from .runs import BEST, HISTORY, METRICS, PREVIOUS_CHECKPOINT, RunFolder

logger = logging.getLogger(__name__)


@dataclass
class TrainedRun:
    """A trained model with its graph, config, run folder, history and final metrics."""

    config: TrainConfig
    kg: KnowledgeGraph
    model: KGModel
    path: Path
    history: pd.DataFrame
    metrics: dict


def load_graph(config: TrainConfig, progress: bool = False) -> KnowledgeGraph:
    from .data import check_dataset_options, load_dataset  # late import: the data layer pulls in the registry

    check_dataset_options(config.dataset_options, "TrainConfig.dataset_options")
    return load_dataset(config.dataset, progress=progress, **config.dataset_options)


def debiased_attributes(config: TrainConfig, kg: KnowledgeGraph) -> list[str]:
    """The sensitive attributes that ``debias="bose"`` filters and ``remove_sensitive`` drops.

    Those of ``config.debias_weights`` with a nonzero weight, else paper 2's four (gender,
    religion, ethnicity, nationality) that ``kg`` has, the attributes the KL loss debiases by
    default. ``profession`` is sensitive in the graphs (paper 1 measures bias *on* it) but is
    not one of the attributes paper 2 removes, so it is only debiased when named.
    """
    if config.debias_weights:
        attributes = [a for a, weight in config.debias_weights.items() if weight != 0]
        unknown = [a for a in attributes if a not in kg.sensitive]
        if unknown:
            raise RunError(f"debias_weights names {', '.join(unknown)}, which {kg.name} has no sensitive "
                           f"relation for (it has: {', '.join(kg.sensitive) or 'none'})")
    else:
        attributes = [a for a in FB15K_WEIGHTS if a in kg.sensitive]
    if not attributes:
        raise RunError(f"{kg.name}: no sensitive attribute to debias (debias_weights: {config.debias_weights})")
    return attributes


def training_triples(config: TrainConfig, kg: KnowledgeGraph) -> tuple[torch.Tensor, int]:
    """The triples fed to :func:`train_epoch` and how many were removed from ``kg.train``.

    With ``remove_sensitive`` (paper 2's "Removed attributes", Table 9) every train triple of a
    debiased attribute's relation (:func:`debiased_attributes`) is dropped. ``kg.train`` stores
    each relation in its own direction, so an attribute stored value -> person (``inverted``,
    scored through its inverse ``r + n_relations``) is matched on its base id too. ``kg`` itself
    stays intact: the bias measures read people's values from its train split.
    """
    if not config.remove_sensitive:
        return kg.train, 0
    attributes = debiased_attributes(config, kg)
    relations = torch.tensor([kg.relation_id(kg.sensitive[a].relation) for a in attributes])
    removed = torch.isin(kg.train[:, 1], relations)
    if removed.all():
        raise RunError(f"remove_sensitive: all {len(removed)} train triples of {kg.name} belong to "
                       f"{', '.join(attributes)}; none are left to train on")
    return kg.train[~removed], int(removed.sum())


def make_model(config: TrainConfig, kg: KnowledgeGraph) -> KGModel:
    """The base model; with ``attribute_vectors`` it holds them as ``model.attributes``, with
    ``debias="bose"`` its filters as ``model.filters``.

    As submodules the vectors and filters are in the state dict, the optimizer and checkpoints;
    a model without them (Basic, KL) has exactly the keys it always had.
    """
    torch.manual_seed(config.seed)
    model = build_model(config.model, kg.n_entities, kg.n_relations, config.embedding_dim,
                        comparator=config.comparator, init_std=config.init_std)
    if config.attribute_vectors:
        whitelist = load_whitelist(resolve_whitelist(config.whitelist, config.dataset), kg)
        model.attributes = AttributeVectors(kg, whitelist.attributes, model.entity.embedding_dim,
                                            relation_init=model.relation.weight.detach())
    if config.debias == "bose":
        model.filters = AttributeFilters(debiased_attributes(config, kg), model.entity.embedding_dim,
                                         config.bose_compose)
    return model


def scoring_model(config: TrainConfig, kg: KnowledgeGraph, model: KGModel) -> KGModel | AttributeAwareModel:
    """What training and link prediction score with: the model itself, or (``attribute_vectors``)
    the model with its vectors on whitelisted triples. Bias metrics use the plain model."""
    if not config.attribute_vectors:
        return model
    whitelist = load_whitelist(resolve_whitelist(config.whitelist, config.dataset), kg)
    return AttributeAwareModel(model, model.attributes, whitelist, kg)


def evaluation_model(config: TrainConfig, kg: KnowledgeGraph, model: KGModel,
                     scorer: KGModel | AttributeAwareModel | None = None) -> KGModel | AttributeAwareModel:
    """What validation, final metrics and ``kgbias evaluate`` rank with.

    :func:`scoring_model`, except for ``debias="bose"``: the model with all its filters applied
    (paper 2's ``[a]``, :func:`~kgbias.debias.adversarial.filtered_model`), since at test time
    every attribute is to be hidden. Bias metrics of a Bose run use ``filtered_model(model,
    [attribute])`` (``[s]``) or ``filtered_model(model)`` (``[a]``). ``scorer``: the
    :func:`scoring_model` already built, if any.
    """
    if config.debias == "bose":
        return filtered_model(model)
    return scorer if scorer is not None else scoring_model(config, kg, model)


def make_debiasing(config: TrainConfig, kg: KnowledgeGraph, device: str = "cpu",
                   model: KGModel | None = None) -> KLDebiasing | BoseAdversary | None:
    """The debiasing term of the config: KL, Bose's discriminators, or None for Basic training.

    ``model`` (from :func:`make_model`) is needed for ``debias="bose"``: the discriminators read
    its filters' width.
    """
    if config.debias == "none":
        return None
    if config.debias == "bose":
        if model is None or not isinstance(getattr(model, "filters", None), AttributeFilters):
            raise RunError("debias='bose' needs the model of make_model(config, kg), which holds the filters")
        return BoseAdversary.from_graph(
            kg, model.filters.attributes, model.entity.embedding_dim, config.kl_n_values, config.bose_gamma,
            config.bose_disc_steps, config.bose_disc_lr, seed=config.seed).to(device)
    debiased_attributes(config, kg)  # unknown or only zero-weight attributes, or none in the graph: an error
    weights = config.debias_weights or {a: w for a, w in FB15K_WEIGHTS.items() if a in kg.sensitive}
    return KLDebiasing.from_graph(kg, weights, config.kl_n_values, train_relations=config.kl_train_relations,
                                  people=config.kl_people, second_scale=config.kl_second_scale).to(device)


def batch_loss(model: KGModel, batch: torch.Tensor, negatives: torch.Tensor, config: TrainConfig,
               debiasing: KLDebiasing | None = None, single_backward: bool = False,
               people: torch.Tensor | None = None, plan: BatchPlan | None = None) -> torch.Tensor:
    """Loss of one batch of positive triples, tails and heads, against shared negatives.

    Parameters
    ----------
    batch
        ``shape: (batch_size, 3)``; each triple is trained as ``(h, r, ?)`` and ``(t, r^-1, ?)``.
    negatives
        ``shape: (n_negatives,)`` entity ids shared by every query of the batch.
    single_backward
        The loss will be backpropagated once (training): see :func:`kgbias.losses.softmax_loss`.
    people, plan
        The KL term's people and, with attribute vectors, the batch's
        :class:`~kgbias.debias.plan.BatchPlan`, when the caller has them
        (:func:`host_batch`); by default found here.
    """
    # the KL term's people come from the batch's one entity lookup: a second lookup's sparse
    # gradient would be added to the first's, which cost more than the KL term itself
    if people is None and debiasing is not None:
        people = debiasing.people_in(batch)
    if config.attribute_vectors:
        if not isinstance(model, AttributeAwareModel):
            raise TypeError("attribute_vectors needs the AttributeAwareModel of scoring_model()")
        # whitelisted triples, then twins; the people's plain embeddings
        plan = model.batch_plan(batch, negatives, people) if plan is None else plan
        positive, negative, *person_emb = model.planned_scores(plan)
    else:
        h, r, t = batch.T
        ids = [h, t, negatives] if people is None else [h, t, negatives, people]
        # one lookup for heads, tails, negatives (and people): one sparse gradient, and split, whose
        # backward is one concatenation where each slice's would fill a zero table of the whole
        heads, negative_emb, *person_emb = model.entity(torch.cat(ids)).split(
            [2 * len(batch), *(len(i) for i in ids[2:])])
        queries = model.query(heads, torch.cat([r, r + model.n_relations]))  # (h, r, ?), then (t, r^-1, ?)
        positive = model.compare(queries, heads.roll(len(batch), 0), pairwise=True)  # [t, h]
        negative = model.compare(queries, negative_emb, pairwise=False)
    n_terms = negative.numel() if config.loss == "margin" else positive.numel()  # what the loss averages
    loss = link_loss(positive, negative, config, single_backward)
    if debiasing is not None:
        kl = debiasing.loss(model, people, *person_emb)  # both paths give [the people's embeddings]
        if config.kl_reduction == "sum":  # (sum L_CE + w L_KL) / n_terms: the same AdaGrad steps
            kl = kl / n_terms
        loss = loss + kl
    return loss


def link_loss(positive: torch.Tensor, negative: torch.Tensor, config: TrainConfig,
              single_backward: bool = False) -> torch.Tensor:
    """The run's link-prediction loss on ``(n_queries,)`` positive and ``(n_queries, n_negatives)``
    negative scores (the choice :func:`batch_loss` makes), for the Bose step."""
    if config.loss == "margin":
        return margin_ranking_loss(positive, negative, config.margin)
    return softmax_loss(positive, negative, single_backward)


def _optimizer(model: KGModel, config: TrainConfig, steps_per_epoch: int):
    optimizer = SparseAdagrad(model.parameters(), lr=config.learning_rate)
    warmup_steps = max(1, math.ceil(config.warmup_epochs * steps_per_epoch))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup_steps))
    return optimizer, scheduler


def host_batch(model: KGModel, batch: torch.Tensor, negatives: torch.Tensor, config: TrainConfig,
               debiasing: KLDebiasing | None, device) -> dict:
    """:func:`batch_loss`'s arguments of a batch drawn on the host, on ``device``: the KL term's
    people and the KL + Attr. plan are found on the host, and everything goes over in one copy
    (on a GPU the same work there made the host wait for the device 15 times a step)."""
    people = debiasing.people_in(batch) if debiasing is not None else None
    plan = model.batch_plan(batch, negatives, people) if config.attribute_vectors else None
    tensors = {"batch": batch, "negatives": negatives, **({} if people is None else {"people": people}),
               **({} if plan is None else {f"plan.{name}": tensor for name, tensor in plan.tensors.items()})}
    moved = to_device(tensors, device)
    if plan is not None:
        plan = replace(plan, tensors={name[5:]: tensor for name, tensor in moved.items() if name.startswith("plan.")})
    return {"batch": moved["batch"], "negatives": moved["negatives"], "people": moved.get("people"), "plan": plan}


def train_epoch(model, optimizer, scheduler, triples, config, generator, device, epoch, progress=False,
                debiasing: KLDebiasing | BoseAdversary | None = None) -> float:
    """One pass over ``triples`` in a random order; returns the mean batch loss.

    With a :class:`~kgbias.debias.adversarial.BoseAdversary` each step draws a filter mask from
    ``generator``, minimises the encoder loss with ``optimizer`` (embeddings and filters), then
    trains the chosen discriminators with their own Adam.
    """
    order = torch.randperm(len(triples), generator=generator)
    batches = range(0, len(triples), config.batch_size)
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc=f"epoch {epoch}", leave=False)
    total = 0.0
    for step, start in enumerate(batches):
        batch = triples[order[start:start + config.batch_size]]
        negatives = torch.randint(model.n_entities, (config.n_negatives,), generator=generator)
        if isinstance(debiasing, BoseAdversary):
            batch, negatives = batch.to(device), negatives.to(device)
            mask = sample_mask(len(debiasing.attributes), generator)
            loss, people, people_emb = bose_batch_loss(model, batch, negatives, debiasing, mask,
                                                       lambda positive, negative: link_loss(positive, negative, config))
        else:
            loss = batch_loss(model, config=config, debiasing=debiasing, single_backward=True,
                              **host_batch(model, batch, negatives, config, debiasing, device))
        if not torch.isfinite(loss):
            raise RunError(f"non-finite loss ({loss.item()}) at epoch {epoch}, step {step}; "
                           "the last good checkpoint is kept")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        with torch.sparse.check_sparse_tensor_invariants(enable=False):  # explicit: skip costly checks
            optimizer.step()
        scheduler.step()
        if isinstance(debiasing, BoseAdversary):
            debiasing.train_discriminators(people_emb, people, mask)
        total += loss.item()
    return total / len(batches)


def _check_finite(model: KGModel, epoch: int) -> None:
    """Refuse to checkpoint NaN/Inf weights (an overflow in an epoch's last step leaves a finite loss)."""
    for name, parameter in model.named_parameters():
        if not torch.isfinite(parameter).all():
            raise RunError(f"non-finite values in {name} after epoch {epoch}; "
                           "the last good checkpoint is kept")


def _restore(folder: RunFolder, model, optimizer, scheduler, generator,
             adversary: BoseAdversary | None = None) -> tuple[int, list[dict]]:
    state = folder.load_checkpoint(check_config=False)
    if state is None:
        return 0, []
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["generator"])
        if adversary is not None:
            adversary.load_state_dict(state["adversary"])
        epoch, history = int(state["epoch"]), list(state["history"])
    except (KeyError, RuntimeError, ValueError, TypeError) as error:
        raise RunError(f"{folder.checkpoint_path}: checkpoint does not fit this model and config "
                       f"({error!r})") from None
    folder.check_fingerprint(folder.checkpoint_path, state)
    logger.info("resuming %s after epoch %d", folder.path.name, epoch)
    return epoch, history


def _load_weights(model: KGModel, state: dict, path: Path) -> None:
    _check_fits(model, state, path)  # names and shapes, with the message a resumed run gives too
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError, TypeError, AttributeError) as error:
        raise RunError(f"{path}: stored weights do not fit this model ({error})") from None


def _validated(history: list[dict] | pd.DataFrame) -> bool:
    """Whether ``history`` (a checkpoint's rows, or history.csv) has a validation: then best.pt exists."""
    frame = history if isinstance(history, pd.DataFrame) else pd.DataFrame(list(history))
    return "valid_mrr" in frame and bool(frame["valid_mrr"].notna().any())


def _resume_best(folder: RunFolder, history: list[dict], model: KGModel) -> dict | None:
    best = folder.load_best()
    if best is None and _validated(history):  # else a later, worse epoch would become "best"
        raise RunError(f"{folder.path / BEST}: missing, but the checkpoint's history has validations; "
                       "restore it, or delete the run folder to retrain")
    if best is not None:  # checked now, not after the remaining epochs, when it is loaded
        _check_fits(model, best, folder.path / BEST)
    return best


def _check_fits(model: KGModel, state: dict, path: Path) -> None:
    """Refuse weights whose names or shapes differ from ``model``'s, naming the first that does."""
    stored = state.get("model")
    expected = model.state_dict()
    if not isinstance(stored, dict) or stored.keys() != expected.keys():
        raise RunError(f"{path}: stored weights do not fit this model (other parameter names)")
    for name, tensor in expected.items():
        shape = getattr(stored[name], "shape", None)
        if shape != tensor.shape:
            raise RunError(f"{path}: stored weights do not fit this model (size mismatch for {name}: "
                           f"stored {tuple(shape) if shape is not None else type(stored[name]).__name__}, "
                           f"model {tuple(tensor.shape)})")


def _load_finished(folder: RunFolder, model: KGModel, history: pd.DataFrame, metrics: dict) -> None:
    """Load the weights ``metrics`` were computed with: best.pt, or (no validation) the last checkpoint."""
    best = folder.load_best()
    if best is not None:
        path, state = folder.path / BEST, best
    elif _validated(history):
        raise RunError(f"{folder.path / BEST}: missing, but {HISTORY} has validations: the weights "
                       f"{METRICS} was computed with are gone; delete the run folder to retrain")
    else:
        state, path = folder.load_checkpoint(), folder.checkpoint_path
        if state is None:
            raise RunError(f"{folder.path}: finished run without weights (no {BEST} or checkpoint); "
                           "delete the run folder to retrain")
    epoch_used = metrics.get("epoch_used")  # the fallback checkpoint.prev.pt is an earlier epoch
    if epoch_used is not None and state.get("epoch") != epoch_used:
        damaged = " (the later checkpoint is damaged or missing)" if path.name == PREVIOUS_CHECKPOINT else ""
        raise RunError(f"{path}: holds epoch {state.get('epoch')}, but {METRICS} was computed with epoch "
                       f"{epoch_used}{damaged}; delete the run folder to retrain")
    _load_weights(model, state, path)


def _without_sensitive(model: KGModel, kg: KnowledgeGraph, known: KnownAnswers) -> dict:
    """Paper 2's "(filtered)" test metrics, with the relations they leave out."""
    return {"test_without_sensitive": link_prediction(model, kg, "test", known=known, exclude_sensitive=True),
            "test_without_sensitive_relations": excluded_relations(kg)}


def _refresh_without_sensitive(config: TrainConfig, kg: KnowledgeGraph, folder: RunFolder, model: KGModel,
                               scorer, metrics: dict) -> dict:
    """Recompute a finished run's "(filtered)" metrics if they left out other relations than
    :func:`~kgbias.evaluate.excluded_relations` does now (runs from before 2026-11-27 also left
    out profession), and store them; the other metrics and the weights are untouched."""
    if not kg.sensitive or metrics.get("test_without_sensitive_relations") == excluded_relations(kg):
        return metrics
    logger.info("%s: recomputing the test metrics without sensitive triples", folder.path.name)
    known = KnownAnswers(kg.all_triples(), kg.n_relations)
    metrics = {**metrics, **_without_sensitive(evaluation_model(config, kg, model, scorer), kg, known)}
    folder.write_metrics(metrics)
    return metrics


def final_metrics(model: KGModel, kg: KnowledgeGraph, known: KnownAnswers, epoch_used: int,
                  history: list[dict]) -> dict:
    """Test metrics on all test triples and with sensitive triples removed (paper 2's protocol).

    ``model`` is what :func:`evaluation_model` gives: for a Bose run, all filters applied ([a]).
    """
    metrics = {"epoch_used": epoch_used, "n_epochs_run": len(history)}
    metrics["test"] = link_prediction(model, kg, "test", known=known)
    if kg.sensitive:
        metrics.update(_without_sensitive(model, kg, known))
    seconds = [row["seconds"] for row in history]
    if seconds:
        metrics["seconds_first_epoch"] = seconds[0]
        metrics["seconds_per_epoch"] = sum(seconds[1:]) / len(seconds[1:]) if len(seconds) > 1 else seconds[0]
    return metrics


def train(config: TrainConfig, kg: KnowledgeGraph | None = None, run_dir: str | Path | None = None,
          device: str = "cpu", progress: bool = False) -> TrainedRun:
    """Train (or resume, or reuse) the run described by ``config``.

    Parameters
    ----------
    kg
        The graph; loaded from ``config.dataset`` when not given. A run trained on another graph
        (another fingerprint) under the same config is refused, not reused: give such a graph a
        ``run_dir`` of its own.
    run_dir
        Run folder; default ``results/<config.run_name()>``.
    device
        ``"cpu"`` (default) or a torch device such as ``"cuda"``.
    progress
        Show tqdm bars (for the CLI); the library is otherwise silent except for logging.
    """
    kg = kg if kg is not None else load_graph(config, progress)
    path = Path(run_dir) if run_dir else paths.results_dir() / config.run_name()
    with RunFolder.opened(path, config, graph=kg.fingerprint()) as folder:
        torch.set_flush_denormal(True)  # tiny initial embeddings with AdaGrad hit denormals: 11x slower
        try:
            return _train_locked(config, kg, folder, device, progress)
        except Exception:
            folder.forget_unstarted()
            raise
        finally:
            torch.set_flush_denormal(False)  # torch's default; it has no getter to restore from


def _train_locked(config: TrainConfig, kg: KnowledgeGraph, folder: RunFolder, device: str,
                  progress: bool) -> TrainedRun:
    model = make_model(config, kg).to(device)
    scorer = scoring_model(config, kg, model).to(device)
    if folder.finished:
        history, metrics = folder.history(), folder.metrics()
        _load_finished(folder, model, history, metrics)
        metrics = _refresh_without_sensitive(config, kg, folder, model, scorer, metrics)
        return TrainedRun(config, kg, model, folder.path, history, metrics)

    triples, n_removed = training_triples(config, kg)
    if config.valid_every and not len(kg.valid):
        logger.warning("%s has no valid triples: no validation MRR, no early stopping; the last epoch is "
                       "used", kg.name)
    if not len(kg.test):
        logger.warning("%s has no test triples: the test metrics will be NaN", kg.name)
    steps_per_epoch = math.ceil(len(triples) / config.batch_size)
    optimizer, scheduler = _optimizer(model, config, steps_per_epoch)
    generator = torch.Generator().manual_seed(config.seed)
    debiasing = make_debiasing(config, kg, device, model)
    adversary = debiasing if isinstance(debiasing, BoseAdversary) else None
    start_epoch, history = _restore(folder, model, optimizer, scheduler, generator, adversary)
    known = KnownAnswers(kg.all_triples(), kg.n_relations)
    best = _resume_best(folder, history, model) if start_epoch else None
    best_mrr, best_epoch = (best["valid_mrr"], best["epoch"]) if best else (-1.0, 0)

    epochs = range(start_epoch + 1, config.n_epochs + 1)
    if progress:
        from tqdm.auto import tqdm

        epochs = tqdm(epochs, desc=config.run_name(), initial=start_epoch, total=config.n_epochs)
    for epoch in epochs:
        if config.early_stopping_patience and best_epoch and \
                epoch - 1 - best_epoch >= config.early_stopping_patience * max(config.valid_every, 1):
            logger.info("early stop after epoch %d (best validation epoch %d)", epoch - 1, best_epoch)
            break
        started = time.perf_counter()
        loss = train_epoch(scorer, optimizer, scheduler, triples, config, generator, device, epoch, progress,
                           debiasing)
        row = {"epoch": epoch, "loss": loss, "seconds": time.perf_counter() - started}
        _check_finite(model, epoch)
        if config.valid_every and epoch % config.valid_every == 0:
            row["valid_mrr"] = link_prediction(evaluation_model(config, kg, model, scorer), kg, "valid",
                                               known=known)["mrr_filtered"]
            if row["valid_mrr"] > best_mrr:
                best_mrr, best_epoch = row["valid_mrr"], epoch
                folder.save_best(model.state_dict(), epoch, best_mrr)
        history.append(row)
        checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict(), "generator": generator.get_state(),
                      "epoch": epoch, "history": history}
        if adversary is not None:  # the discriminators and their Adam state, for an identical resume
            checkpoint["adversary"] = adversary.state_dict()
        folder.save_checkpoint(checkpoint)
        folder.write_history(history)
        logger.info("epoch %d loss %.4f (%.1f s)%s", epoch, loss, row["seconds"],
                    f" valid MRR {row['valid_mrr']:.4f}" if "valid_mrr" in row else "")

    folder.write_history(history)  # a kill after the last checkpoint can have left it one epoch short
    if best_epoch:
        _load_weights(model, folder.load_best(), folder.path / BEST)
    epoch_used = best_epoch or len(history)
    metrics = final_metrics(evaluation_model(config, kg, model, scorer), kg, known, epoch_used, history)
    if config.remove_sensitive:
        metrics["n_train_removed_sensitive"] = n_removed
    folder.write_metrics(metrics)
    return TrainedRun(config, kg, model, folder.path, folder.history(), metrics)


def load_run(path: str | Path, device: str = "cpu") -> TrainedRun:
    """A finished run from its folder (the config is read from ``config.json``)."""
    from .runs import CONFIG, read_json

    path = Path(path)
    config_path = path / CONFIG
    if not config_path.exists():
        raise RunError(f"{path}: not a run folder (no {CONFIG})")
    config = TrainConfig.from_dict(read_json(config_path), source=str(config_path))
    # config.json keeps file paths as they were given, relative to where training ran
    files = {"dataset": config.dataset if config.dataset.endswith(".toml") else "",
             "whitelist": "" if is_shipped_name(config.whitelist) else config.whitelist}
    for field, name in files.items():
        if name and not Path(name).is_absolute() and not Path(name).exists():
            raise RunError(f"{config_path}: {field} {name!r} is a path relative to the directory the run was "
                           f"trained in, and {Path.cwd()} is not it: run this from there")
    folder = RunFolder(path, config)
    if not folder.finished:
        raise RunError(f"{path}: run not finished; rerun `kgbias train` with its config to resume it")
    return train(config, run_dir=path, device=device)
