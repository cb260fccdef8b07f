"""Fit one method on prepared data, score it, and write its run folder."""
import os
import time
from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np
import torch

from train.baselines import BaselineMethod, mean_over_time
from train.data import frame_statistics
from train.checkpoint import CHECKPOINT_NAME, save_checkpoint
from train.heads import HEAD_DEFAULTS
from train.linear import LinearMethod, fit_linear
from train.loop import FitConfig, FitResult, fit, set_determinism
from train.method import Method
from train.metrics import summarize
from train.outputs import METRICS_NAME, SPLIT_NAME, write_json, write_predictions, write_split, write_video_emb
from train.prepare import TrainData
from train.registry import BASELINES, HeadMethod, build_module


@dataclass
class HeadOptions:
    """Command-line choices that shape how a head trains (None = the head's default)."""
    epochs: int = 60
    seed: int = 0
    lr: Optional[float] = None
    batch_size: Optional[int] = None
    patience: int = 15
    progress: bool = True
    split_seed: int = 0
    command: str = ""       # the command line that made the run, for the report's provenance


def auto_batch_size(n_train: int) -> int:
    """Small sets want several steps per epoch; large ones want big batches for throughput."""
    return int(min(256, max(16, 2 ** round(np.log2(max(1, n_train) / 8)))))


def map_rows(data: TrainData, rows: np.ndarray, fn, width: int) -> np.ndarray:
    """Concatenate fn(frames [b, K, D]) -> [b, width] over `rows`, read block by block (chunked caches too)."""
    parts = [fn(block) for _, block in data.source.blocks(rows)]
    return np.concatenate(parts) if parts else np.zeros((0, width), np.float32)


def candidate_logits(method: Method, data: TrainData, rows: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Logits [len(rows), len(classes)] of `method` when only `classes` are candidates."""
    if isinstance(method, LinearMethod):  # scores its own (= the cache's) classes; keep the candidates
        return map_rows(data, rows, lambda x: method.logits(x, data.text_emb), len(data.class_names))[:, classes]
    text = data.text_emb[classes]
    return map_rows(data, rows, lambda x: method.logits(x, text), len(classes))


def _block(method: Method, data: TrainData, rows: np.ndarray, classes: np.ndarray) -> Dict[str, Any]:
    logits = candidate_logits(method, data, rows, classes)
    true = np.searchsorted(classes, data.labels[rows])  # cache class index -> candidate index
    return summarize(logits, true, [data.class_names[c] for c in classes])


def build_config(name: str, data: TrainData, opts: HeadOptions) -> Dict[str, Any]:
    """The head's config as stored in head.pt (plain values only)."""
    config: Dict[str, Any] = {"head": name, "dim": int(data.reader.dim), "frames": int(len(data.frames)),
                              "pos_len": int(len(data.frames)), "seed": opts.seed,
                              "trained_classes": [data.class_names[c] for c in data.train_classes]}
    config.update(HEAD_DEFAULTS.get(name, {}))
    if opts.lr is not None and name in HEAD_DEFAULTS:
        config["lr"] = opts.lr
    return config


def fit_method(name: str, data: TrainData, opts: HeadOptions, device: torch.device):
    """-> (Method, FitResult, extra metrics). Baselines fit nothing; linear fits a probe; heads train."""
    config = build_config(name, data, opts)
    classes = data.train_classes
    tr, va = data.splits["train"], data.splits["val"]
    if name in BASELINES:
        return BaselineMethod(name, data.class_names, config), FitResult(), {}
    if name == "linear":
        feats = {k: map_rows(data, r, mean_over_time, data.reader.dim) for k, r in (("train", tr), ("val", va))}
        weight, bias, info = fit_linear(feats["train"], data.labels[tr], feats["val"], data.labels[va],
                                        len(data.class_names), opts.seed)
        config["C"] = info["C"]
        return LinearMethod(name, data.class_names, config, weight, bias), FitResult(), {"linear": info}
    set_determinism(opts.seed)
    module = build_module(config)
    module.set_statistics(*(torch.from_numpy(s) for s in frame_statistics(data.source, tr)))
    tuned = {k: config[k] for k in ("lr", "weight_decay", "ema", "label_smoothing") if k in config}
    cfg = FitConfig(epochs=opts.epochs, batch_size=opts.batch_size or auto_batch_size(len(tr)),
                    patience=opts.patience, seed=opts.seed, **tuned)
    config["batch_size"] = cfg.batch_size
    result = fit(module, data.source, tr, np.searchsorted(classes, data.labels[tr]), va,
                 np.searchsorted(classes, data.labels[va]), data.text_emb[classes], cfg, device,
                 desc=name, progress=opts.progress)
    return HeadMethod(name, data.class_names, config, module, device), result, {}


def state_of(method: Method) -> Optional[Dict[str, torch.Tensor]]:
    return method.state_dict() if hasattr(method, "state_dict") else None


def evaluate_method(method: Method, data: TrainData) -> Dict[str, Any]:
    """val over the training classes; test over all classes, plus seen/unseen parts in an open-set run."""
    every = np.arange(len(data.class_names))
    test = data.splits["test"]
    out = {"val": _block(method, data, data.splits["val"], data.train_classes),
           "test": _block(method, data, test, every)}
    if data.seen is not None:
        is_seen = np.isin(data.labels[test], data.seen)
        out["test_seen"] = _block(method, data, test[is_seen], every)
        out["test_unseen"] = _block(method, data, test[~is_seen], every)
        # The classic zero-shot number: unseen videos among the unseen class names only.
        out["test_unseen_zeroshot"] = _block(method, data, test[~is_seen], np.asarray(data.unseen))
    return out


def write_predictions_for(method: Method, data: TrainData, run_dir: str) -> None:
    test, names = data.splits["test"], data.class_names
    logits = map_rows(data, test, lambda x: method.logits(x, data.text_emb), len(names))
    pred = logits.argmax(axis=1)
    score = method.probabilities(logits)[np.arange(len(test)), pred]
    write_predictions(run_dir, [data.reader.ids[i] for i in test], [names[data.labels[i]] for i in test],
                      [names[p] for p in pred], score)


def train_head(name: str, data: TrainData, run_dir: str, opts: HeadOptions,
               device: torch.device) -> Dict[str, Any]:
    """Fit, score and write run_dir (see train.outputs.run_dir_for); returns the metrics written to metrics.json."""
    start = time.perf_counter()
    os.makedirs(run_dir, exist_ok=True)
    method, result, extra = fit_method(name, data, opts, device)
    fit_seconds = time.perf_counter() - start
    save_checkpoint(os.path.join(run_dir, CHECKPOINT_NAME), name, method.config, data.class_names,
                    data.fingerprint, data.cache_info(), state_of(method))
    scores = evaluate_method(method, data)
    write_split(run_dir, data.reader.ids, data.splits)
    write_predictions_for(method, data, run_dir)
    every_video = np.arange(data.reader.num_videos)
    write_video_emb(run_dir, map_rows(data, every_video, method.video_embeddings, data.reader.dim),
                    data.reader.ids, data.fingerprint)
    open_set = None if data.seen is None else {"seen": [data.class_names[c] for c in data.seen],
                                                "unseen": [data.class_names[c] for c in data.unseen]}
    metrics = {"head": name, "cache": os.path.abspath(data.path), "cache_fingerprint": data.fingerprint,
               "random_weights": data.reader.random_weights, "frames": int(len(data.frames)),
               "split": SPLIT_NAME, "split_source": data.split_source,
               "sizes": {k: int(len(v)) for k, v in data.splits.items()}, "open_set": open_set,
               **scores, "history": result.history, "epochs_run": result.epochs_run,
               "best_epoch": result.best_epoch, "seconds_per_epoch": result.seconds_per_epoch,
               "seconds_to_best": result.seconds_to_best, "cpu_seconds": result.cpu_seconds,
               "fit_seconds": fit_seconds,
               "device": str(device), "config": method.config, "seed": opts.seed, "split_seed": opts.split_seed,
               "epochs": opts.epochs if name in HEAD_DEFAULTS else None, "command": opts.command, **extra}
    metrics["seconds"] = time.perf_counter() - start
    write_json(os.path.join(run_dir, METRICS_NAME), metrics)
    return metrics
