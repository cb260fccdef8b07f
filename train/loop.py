"""The training loop: AdamW (no decay on biases, norms, temperature, tables), cosine schedule with warm-up, early stopping on validation, fixed seeds."""
import copy
import math
import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from clipvid.progress import epoch_line, progress as progress_display
from train.data import FrameSource, epoch_order
from clipvid.device import amp_dtype, autocast
from train.heads import TemporalHead
from train.metrics import history_row

EVAL_BATCH = 512


@dataclass(kw_only=True)
class FitConfig:
    """Optimiser and stopping settings for one head."""
    epochs: int = 60
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: float = 0.1     # fraction of all steps spent ramping the learning rate up
    patience: int = 15      # epochs without a better validation score before stopping
    seed: int = 0
    grad_clip: float = 1.0
    ema: float = 0.0        # decay of an exponential moving average of the weights (0 = off)
    label_smoothing: float = 0.0


@dataclass
class FitResult:
    """What a training run did, for metrics.json."""
    history: List[Dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    epochs_run: int = 0
    seconds: float = 0.0
    seconds_per_epoch: float = 0.0
    seconds_to_best: float = 0.0
    cpu_seconds: float = 0.0


def set_determinism(seed: int) -> None:
    """Fixed seeds and deterministic kernels, so a CPU run repeats exactly."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it for determinism
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


# Parameters never decayed, as CLIP's and X-CLIP's trainers do: decay pulls them towards 0, which for a
# temperature, a LayerNorm gain, a bias or a position/prompt table is a wrong prior, not regularisation.
NO_DECAY_NAMES = ("log_scale", "pos", "extra")


def decays(name: str, param: torch.nn.Parameter) -> bool:
    """Whether AdamW's weight decay applies: matrices yes; biases, norms, temperature and tables no."""
    return param.ndim >= 2 and name.rsplit(".", 1)[-1] not in NO_DECAY_NAMES


def param_groups(module: torch.nn.Module, weight_decay: float) -> List[Dict[str, object]]:
    """AdamW parameter groups: decayed matrices, then everything else with weight_decay 0."""
    named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    return [{"params": [p for n, p in named if decays(n, p)], "weight_decay": weight_decay},
            {"params": [p for n, p in named if not decays(n, p)], "weight_decay": 0.0}]


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Multiplier of the base learning rate: linear warm-up over `warmup` steps, then cosine to 0."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def update_average(averaged: torch.nn.Module, module: torch.nn.Module, decay: float) -> None:
    """averaged <- decay * averaged + (1 - decay) * module, for every float tensor (buffers copied)."""
    with torch.no_grad():
        for a, m in zip(averaged.state_dict().values(), module.state_dict().values()):
            if a.dtype.is_floating_point:
                a.mul_(decay).add_(m, alpha=1.0 - decay)
            else:
                a.copy_(m)


def predict_logits(module: TemporalHead, source: FrameSource, rows: np.ndarray, text: torch.Tensor,
                   device: torch.device) -> np.ndarray:
    """Logits [len(rows), C] in eval mode, batched."""
    module.eval()
    out = []
    with torch.no_grad(), autocast(device):
        for _, frames in source.blocks(rows, EVAL_BATCH):
            x = torch.from_numpy(frames).to(device, non_blocking=True).float()  # [b, K, D]
            out.append(module.logits(x, text).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(text)), np.float32)


def _val_scores(module, source, rows, labels, text, device):
    """(loss, top-1) over `rows` taken in the order given; they are read in cache order (contiguous)."""
    if not len(rows):
        return float("nan"), float("nan")
    order = np.argsort(rows, kind="stable")
    logits = np.empty((len(rows), len(text)), np.float32)
    logits[order] = predict_logits(module, source, rows[order], text, device)
    logits = torch.from_numpy(logits)
    y = torch.from_numpy(labels)
    return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


def fit(module: TemporalHead, source: FrameSource, train_rows: np.ndarray, train_y: np.ndarray,
        val_rows: np.ndarray, val_y: np.ndarray, text_emb: np.ndarray, cfg: FitConfig,
        device: torch.device, desc: str = "", progress: bool = True) -> FitResult:
    """Train `module` in place to classify rows against `text_emb` [C, D]; it ends at its best epoch.

    Labels index the rows of `text_emb`. Early stopping picks the epoch with the highest validation
    top-1 (lower loss breaks ties); without a validation split every epoch runs and the last is kept.
    """
    rng = np.random.default_rng(cfg.seed)
    module.to(device)
    text = torch.from_numpy(np.asarray(text_emb, np.float32)).to(device)   # [C, D]
    ytrain = torch.from_numpy(np.asarray(train_y, np.int64))
    opt = torch.optim.AdamW(param_groups(module, cfg.weight_decay), lr=cfg.lr)
    steps_per_epoch = max(1, math.ceil(len(train_rows) / cfg.batch_size))
    total = steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, total, max(1, int(cfg.warmup * total))))
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype(device) == torch.float16)
    result = FitResult()
    best_key: Optional[tuple] = None
    best_top1, last_gain = -1.0, 0
    best_state: Optional[Dict[str, torch.Tensor]] = None
    # The averaged weights are what validation judges and what is kept: smoother on small sets.
    averaged = copy.deepcopy(module).requires_grad_(False) if cfg.ema > 0 else None
    start, cpu_start = time.perf_counter(), time.process_time()
    for epoch in range(1, cfg.epochs + 1):
        module.train()
        windows = epoch_order(train_rows, rng)  # block-shuffled: the same batches in memory and from disk
        total_loss, seen = 0.0, 0
        epoch_start = time.perf_counter()
        bar = progress_display(total=steps_per_epoch, desc=f"{desc} epoch {epoch}/{cfg.epochs}", unit="batch",
                               quiet=not progress, leave=False, lines=False)   # a log gets epoch_line instead
        for pick, frames in source.batches(train_rows, windows, cfg.batch_size):
            x = torch.from_numpy(frames).to(device, non_blocking=True).float()  # [B, K, D]
            y = ytrain[pick].to(device)
            with autocast(device):
                loss = F.cross_entropy(module.logits(x, text).float(), y, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
            sched.step()
            if averaged is not None:
                update_average(averaged, module, cfg.ema)
            total_loss += loss.item() * len(pick)
            seen += len(pick)
            bar.update(1)
            bar.set_postfix(loss=f"{total_loss / seen:.3f}")
        bar.close()
        judged = averaged if averaged is not None else module
        val_loss, val_top1 = _val_scores(judged, source, val_rows, np.asarray(val_y, np.int64), text, device)
        result.history.append(history_row(epoch, total_loss / max(1, seen), val_loss, val_top1))
        epoch_line(desc, epoch, cfg.epochs, total_loss / max(1, seen), val_top1,
                   time.perf_counter() - epoch_start, quiet=not progress)
        result.epochs_run = epoch
        if math.isnan(val_top1) or best_key is None or (val_top1, -val_loss) > best_key:
            # Keep the best state: highest top-1, then lowest loss (the last epoch with no val split).
            best_key = (0.0, 0.0) if math.isnan(val_top1) else (val_top1, -val_loss)
            result.best_epoch, result.seconds_to_best = epoch, time.perf_counter() - start
            best_state = {k: v.detach().clone() for k, v in judged.state_dict().items()}
        # Stop on top-1 alone: once it is perfect the loss keeps creeping down, which is not progress.
        if math.isnan(val_top1) or val_top1 > best_top1:
            best_top1, last_gain = val_top1, epoch
        elif epoch - last_gain >= cfg.patience:
            break
    result.seconds = time.perf_counter() - start
    result.seconds_per_epoch = result.seconds / max(1, result.epochs_run)
    result.cpu_seconds = time.process_time() - cpu_start  # wall time on a shared machine misleads
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return result
