"""Fit methods on prepared data, score them all in one shared pass, and write their run folders."""
import os
import shutil
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch

from train.baselines import BaselineMethod
from train.checkpoint import CHECKPOINT_NAME, save_checkpoint
from train.data import RowSelection
from train.linear import LinearMethod, fit_linear
from train.loop import FitConfig, FitResult, fit, set_determinism
from train.method import Method
from train.metrics import summarize_ranks
from clipvid.jsonfile import write_json
from train.outputs import METRICS_NAME, SPLIT_NAME, publish_video_emb, write_predictions, write_split
from train.prepare import TrainData
from train.scan import PARTIAL_EMB, FitInputs, Scored, fit_pass, score_parts, score_pass
from train.registry import HEADS, HeadMethod, build_module


@dataclass(kw_only=True)
class HeadOptions:
    """Command-line choices that shape how a head trains (None = the head's default)."""
    epochs: int = 60
    seed: int = 0
    lr: Optional[float] = None
    batch_size: Optional[int] = None
    patience: int = 15
    progress: bool = True
    split_seed: int = 0
    command: str = ""                          # the command line that made the runs, for provenance
    run_dirs: Optional[Dict[str, str]] = None  # head -> its folder (default RUNS/<head>); see outputs.run_dir_for
    head_config: Optional[Dict[str, Any]] = None  # a run's stored head settings, replacing the defaults


def auto_batch_size(n_train: int) -> int:
    """Small sets want several steps per epoch; large ones want big batches for throughput."""
    return int(min(256, max(16, 2 ** round(np.log2(max(1, n_train) / 8)))))


def map_rows(data: TrainData, rows: np.ndarray, fn, width: int) -> np.ndarray:
    """Concatenate fn(frames [b, K, D]) -> [b, width] over `rows`, read block by block (chunked caches too)."""
    parts = [fn(block) for _, block in data.source.blocks(rows)]
    return np.concatenate(parts) if parts else np.zeros((0, width), np.float32)


def build_config(name: str, data: TrainData, opts: HeadOptions) -> Dict[str, Any]:
    """The head's config as stored in head.pt (plain values only)."""
    config: Dict[str, Any] = {"head": name, "dim": int(data.reader.dim), "frames": int(len(data.frames)),
                              "pos_len": int(len(data.frames)), "seed": opts.seed,
                              "trained_classes": [data.class_names[c] for c in data.train_classes]}
    spec = HEADS[name]
    config.update(spec.defaults)
    if opts.head_config and spec.trains:  # retraining a run as it was (evaluate's few-shot curves)
        stored = {**spec.former, **opts.head_config}
        config.update({k: v for k, v in stored.items() if k in spec.defaults})
    if opts.lr is not None and spec.trains:
        config["lr"] = opts.lr
    return config


def fit_method(name: str, data: TrainData, opts: HeadOptions, device: torch.device,
               inputs: Optional[FitInputs] = None):
    """-> (Method, FitResult, extra metrics). Baselines fit nothing; linear fits a probe; heads train.

    `inputs` carries what a shared fit pass already read (see train.scan); missing parts are read here.
    """
    config = build_config(name, data, opts)
    spec = HEADS[name]
    classes = data.train_classes
    tr, va = data.splits["train"], data.splits["val"]
    if not spec.learns:
        return BaselineMethod(name, data.class_names, config), FitResult(), {}
    if inputs is None or (spec.needs_pooled and inputs.train_x is None) or (spec.needs_stats and inputs.stats is None):
        inputs = fit_pass(data, pooled=spec.needs_pooled, stats=spec.needs_stats, progress=opts.progress)
    # Rows in video-id order, not cache order: a re-extracted cache (Dask writes videos in the order they
    # finish) then sees the same batches and the same float sums, so the same seed gives the same run.
    tr_order, va_order = np.argsort(data.rank[tr], kind="stable"), np.argsort(data.rank[va], kind="stable")
    if spec.kind == "probe":
        weight, bias, info = fit_linear(RowSelection(inputs.train_x, tr_order), data.labels[tr][tr_order],
                                        RowSelection(inputs.val_x, va_order), data.labels[va][va_order],
                                        len(data.class_names), opts.seed, device=device)
        config["C"] = info["C"]
        return LinearMethod(name, data.class_names, config, weight, bias), FitResult(), {name: info}
    set_determinism(opts.seed)
    module = build_module(config)
    module.set_statistics(*(torch.from_numpy(s) for s in inputs.stats))
    tuned = {k: config[k] for k in ("lr", "weight_decay", "ema", "label_smoothing") if k in config}
    cfg = FitConfig(epochs=opts.epochs, batch_size=opts.batch_size or auto_batch_size(len(tr)),
                    patience=opts.patience, seed=opts.seed, **tuned)
    config["batch_size"] = cfg.batch_size
    tr, va = tr[tr_order], va[va_order]
    result = fit(module, data.source, tr, np.searchsorted(classes, data.labels[tr]), va,
                 np.searchsorted(classes, data.labels[va]), data.text_emb[classes], cfg, device,
                 desc=name, progress=opts.progress)
    return HeadMethod(name, data.class_names, config, module, device), result, {}


def state_of(method: Method) -> Optional[Dict[str, torch.Tensor]]:
    return method.state_dict() if hasattr(method, "state_dict") else None


def evaluate_scored(scored: Scored, data: TrainData) -> Dict[str, Any]:
    """val over the training classes; test over all classes, plus seen/unseen parts in an open-set run."""
    parts = score_parts(data)
    out = {}
    for name in ("val", "test", "test_unseen_zeroshot"):
        if name in parts:
            rows, classes = parts[name]
            true = np.searchsorted(classes, data.labels[rows])            # cache class index -> candidate index
            out[name] = summarize_ranks(scored.ahead[name], scored.pred[name], true,
                                        [data.class_names[c] for c in classes])
    if data.seen is not None:
        test, names = data.splits["test"], data.class_names
        is_seen = np.isin(data.labels[test], data.seen)
        for name, mask in (("test_seen", is_seen), ("test_unseen", ~is_seen)):
            # The test part's candidates are every class, so its candidate index is the class index.
            out[name] = summarize_ranks(scored.ahead["test"][mask], scored.pred["test"][mask],
                                        data.labels[test[mask]], names)
    return out


def write_predictions_for(data: TrainData, run_dir: str, scored: Scored) -> None:
    """predictions.csv from the test predictions and confidences the scoring pass kept."""
    test, names = data.splits["test"], data.class_names
    write_predictions(run_dir, [data.reader.ids[i] for i in test], [names[data.labels[i]] for i in test],
                      [names[p] for p in scored.pred["test"]], scored.confidence["test"])


def train_heads(names: List[str], data: TrainData, out_root: str, opts: HeadOptions, device: torch.device,
                done: Optional[Callable[[Dict[str, Any]], None]] = None) -> List[Dict[str, Any]]:
    """Fit, score and write RUNS/<name>/ for every method; returns the metrics of each, in order.

    Reads: at most one pass over the train/val frames (linear features and frame statistics together),
    the trained heads' epochs, and one sequential pass over every video per group for scoring,
    predictions and video_emb, where a group is a run of consecutive training-free methods (baselines,
    linear) or one trained head, so a head finished before an interrupt is kept. `done` hears each
    head's metrics as its folder is published.
    """
    inputs = fit_pass(data, pooled=any(HEADS[n].needs_pooled for n in names), stats=any(HEADS[n].needs_stats for n in names),
                      progress=opts.progress, every_video=True)  # the probe then scores from these means
    out: List[Dict[str, Any]] = []
    for group in _groups(names):
        for metrics in _train_group(group, data, out_root, opts, device, inputs):
            out.append(metrics)
            if done is not None:
                done(metrics)
    return out


def _groups(names: List[str]) -> List[List[str]]:
    groups: List[List[str]] = []
    for name in names:
        if HEADS[name].cheap and groups and HEADS[groups[-1][0]].cheap:   # cheap ones share a scoring pass
            groups[-1].append(name)
        else:
            groups.append([name])
    return groups


def _train_group(names: List[str], data: TrainData, out_root: str, opts: HeadOptions, device: torch.device,
                 inputs: FitInputs) -> List[Dict[str, Any]]:
    """Fit `names`, score them in one pass and publish their folders (written under hidden names and
    renamed into place when whole, so an interrupt leaves the previous RUNS/<name> or none)."""
    run_dirs = [os.path.join(out_root, f".{n}.partial-{os.getpid()}") for n in names]
    try:
        fitted = []
        for name, run_dir in zip(names, run_dirs):
            shutil.rmtree(run_dir, ignore_errors=True)
            os.makedirs(run_dir)
            start = time.perf_counter()
            method, result, extra = fit_method(name, data, opts, device, inputs)
            save_checkpoint(os.path.join(run_dir, CHECKPOINT_NAME), name, method.config, data.class_names,
                            data.fingerprint, data.cache_info(), state_of(method), data.text_emb)
            fitted.append((method, result, extra, time.perf_counter() - start))
        scored, _, read_seconds = score_pass([f[0] for f in fitted], data, run_dirs, opts.progress,
                                                inputs.pooled)
        out = []
        for run_dir, (method, result, extra, fit_seconds), score in zip(run_dirs, fitted, scored):
            start = time.perf_counter()
            write_split(run_dir, data.reader.ids, data.splits)
            write_predictions_for(data, run_dir, score)
            publish_video_emb(run_dir, os.path.join(run_dir, PARTIAL_EMB), data.reader.ids, data.fingerprint)
            metrics = _metrics(method, data, evaluate_scored(score, data), result, fit_seconds, device, extra)
            # Each method's own fit and scoring time, plus an equal share of the shared read.
            metrics["seconds"] = (fit_seconds + score.seconds + read_seconds / len(fitted)
                                  + time.perf_counter() - start)
            metrics.update({"seed": opts.seed, "split_seed": opts.split_seed, "command": opts.command,
                            "epochs": opts.epochs if HEADS[method.name].trains else None})
            write_json(os.path.join(run_dir, METRICS_NAME), metrics)
            out.append(metrics)
        for name, run_dir in zip(names, run_dirs):
            final = (opts.run_dirs or {}).get(name) or os.path.join(out_root, name)
            os.makedirs(os.path.dirname(final) or ".", exist_ok=True)
            _publish(run_dir, final)
    except BaseException:
        for run_dir in run_dirs:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return out


def train_head(name: str, data: TrainData, out_root: str, opts: HeadOptions,
               device: torch.device) -> Dict[str, Any]:
    """Fit, score and write RUNS/<name>/; returns the metrics written to metrics.json."""
    return train_heads([name], data, out_root, opts, device)[0]


def _publish(tmp: str, final: str) -> None:
    """Put the finished folder `tmp` at `final`, replacing an older run of the same head."""
    old = None
    if os.path.exists(final):
        old = os.path.join(os.path.dirname(final), f".{os.path.basename(final)}.old-{os.getpid()}")
        os.rename(final, old)
    os.rename(tmp, final)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def _metrics(method: Method, data: TrainData, scores: Dict[str, Any], result: FitResult, fit_seconds: float,
             device: torch.device, extra: Dict[str, Any]) -> Dict[str, Any]:
    open_set = None if data.seen is None else {"seen": [data.class_names[c] for c in data.seen],
                                                "unseen": [data.class_names[c] for c in data.unseen]}
    return {"head": method.name, "cache": os.path.abspath(data.path), "cache_fingerprint": data.fingerprint,
            "random_weights": data.reader.random_weights, "frames": int(len(data.frames)),
            "split": SPLIT_NAME, "split_source": data.split_source,
            "sizes": {k: int(len(v)) for k, v in data.splits.items()}, "open_set": open_set,
            **scores, "history": result.history, "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch, "seconds_per_epoch": result.seconds_per_epoch,
            "seconds_to_best": result.seconds_to_best, "cpu_seconds": result.cpu_seconds,
            "fit_seconds": fit_seconds, "device": str(device), "config": method.config, **extra}
