"""Linear probe: multinomial logistic regression on mean-pooled frame embeddings, fitted in torch (L-BFGS)."""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from train.baselines import mean_over_time
from train.method import Method, window_means
from train.metrics import row_cross_entropy, truth_ahead

C_GRID = (0.1, 1.0, 10.0)  # inverse L2 strength (scikit-learn's C), picked on the validation split
MAX_STEPS = 100            # L-BFGS iterations per C; each C starts from the previous (stronger) one's optimum
ABSENT = -1e4  # bias of classes the probe never saw: never predicted, yet softmax stays finite
# Rows per step of the loss, the standardisation and validation scoring: [16384, 400] float32 logits are
# 26 MB, so the probe's working memory beyond its [n, D] features does not grow with the training set.
CHUNK = 16384


class LinearMethod(Method):
    """logits = W @ meanpool(frames) + b over its own classes (it cannot score unseen text)."""

    scores_any_text = False
    order_blind = True
    pooled_only = True

    def __init__(self, name: str, class_names: List[str], config: Dict[str, Any],
                 weight: np.ndarray, bias: np.ndarray):
        super().__init__(name, class_names, config)
        self.weight = np.asarray(weight, np.float32)  # [C, D]
        self.bias = np.asarray(bias, np.float32)      # [C]

    def _embed(self, x: np.ndarray) -> np.ndarray:
        return mean_over_time(x)

    def _pool_windows(self, x: np.ndarray, starts: np.ndarray, width: int, text: np.ndarray) -> np.ndarray:
        return window_means(x, starts, width)                                # [B, W, D]

    def _score(self, pooled: np.ndarray, text: np.ndarray) -> np.ndarray:
        return pooled @ self.weight.T + self.bias

    def _num_outputs(self, text: np.ndarray) -> int:
        return len(self.weight)

    def state_dict(self) -> Dict[str, torch.Tensor]:
        return {"weight": torch.from_numpy(self.weight.copy()), "bias": torch.from_numpy(self.bias.copy())}


def _minimise(z: torch.Tensor, y: torch.Tensor, num: int, c: float, start: Optional[torch.Tensor],
              steps: int, chunk: int = CHUNK) -> torch.Tensor:
    """[P, D + 1] weights and bias minimising C * sum(cross-entropy) + |W|^2 / 2 (scikit-learn's objective).

    The loss and its gradient are summed over `chunk` rows at a time (one chunk: the plain full-batch
    expression, bit for bit; more: the same objective added up in another order)."""
    n, d = z.shape
    theta = (torch.zeros(num, d + 1, dtype=z.dtype, device=z.device) if start is None else start.clone()
             ).requires_grad_(True)
    opt = torch.optim.LBFGS([theta], lr=1.0, max_iter=steps, history_size=20, tolerance_grad=1e-4,
                            tolerance_change=1e-10, line_search_fn="strong_wolfe")
    reg = 1.0 / (2.0 * c * n)  # the same objective divided by C * n: a mean loss keeps L-BFGS well scaled

    spans = [(s, min(s + chunk, n)) for s in range(0, n, chunk)] or [(0, 0)]

    def closure():
        opt.zero_grad()
        total = None
        for s, e in spans:
            logits = torch.addmm(theta[:, d], z[s:e], theta[:, :d].T)      # [b, P]
            loss = F.cross_entropy(logits, y[s:e]) * ((e - s) / n)         # this chunk's share of the mean
            if e == n:
                loss = loss + reg * theta[:, :d].pow(2).sum()
            loss.backward()                                                # frees this chunk's graph
            total = loss.detach() if total is None else total + loss.detach()
        return total

    opt.step(closure)
    _minimise.evaluations = opt.state[opt._params[0]]["func_evals"]  # for the bench's record
    return theta.detach()


def _fold(theta: np.ndarray, present: np.ndarray, mu: np.ndarray, sd: np.ndarray,
          num_classes: int) -> Tuple[np.ndarray, np.ndarray]:
    """Weights [C, D] and bias [C] over all classes that act on raw features (standardisation folded in)."""
    coef, icpt = theta[:, :-1].astype(np.float64), theta[:, -1].astype(np.float64)
    weight = np.zeros((num_classes, coef.shape[1]), np.float64)
    bias = np.full(num_classes, ABSENT, np.float64)
    weight[present] = coef / sd
    bias[present] = icpt - (coef * (mu / sd)).sum(axis=1)
    return weight.astype(np.float32), bias.astype(np.float32)


def _moments(x, n: int) -> Tuple[np.ndarray, np.ndarray]:
    """Column mean and standard deviation (float64) of x [n, D], read CHUNK rows at a time: the same bits
    as np.mean / np.std over axis 0 of the whole array, which add its rows one after another."""
    def column_sum(rows):
        acc = None
        for block in rows:
            acc = block.sum(axis=0) if acc is None else np.add.reduce(np.concatenate([acc[None], block]), axis=0)
        return acc
    chunks = lambda: (np.asarray(x[s:s + CHUNK], np.float64) for s in range(0, n, CHUNK))
    mu = column_sum(chunks()) / n
    dev2 = column_sum(np.square(b - mu) for b in chunks())
    return mu, np.sqrt(dev2 / n)


def _val_scores(val_x, val_y: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> Tuple[float, float]:
    """(top-1, mean cross-entropy) of the probe on the validation rows, CHUNK rows at a time."""
    if not len(val_y):
        return float("nan"), float("nan")
    ahead, losses = [], []
    for s in range(0, len(val_y), CHUNK):
        logits = np.asarray(val_x[s:s + CHUNK], np.float32) @ weight.T + bias     # [b, C]
        ahead.append(truth_ahead(logits, val_y[s:s + CHUNK]))
        losses.append(row_cross_entropy(logits, val_y[s:s + CHUNK]))
    return float((np.concatenate(ahead) < 1).mean()), float(np.mean(np.concatenate(losses)))


def fit_linear(train_x, train_y: np.ndarray, val_x, val_y: np.ndarray,
               num_classes: int, seed: int, grid: Sequence[float] = C_GRID,
               device: Optional[torch.device] = None, steps: int = MAX_STEPS, chunk: int = CHUNK
               ) -> Tuple[np.ndarray, np.ndarray, Dict[str, Any]]:
    """Fit on mean-pooled features [n, D]; pick C by validation top-1 (then loss). -> (W, b, info).

    Features are anything sliced by rows (an array, or train.data's SpillRows and RowSelection, read a
    chunk at a time). Full-batch L-BFGS on standardised features, on `device` (the GPU when train.device
    picked one); the fit is deterministic, so `seed` only names the run.
    """
    device = device or torch.device("cpu")
    n, val_y = len(train_y), np.asarray(val_y, np.int64)
    mu, sd = _moments(train_x, n)
    sd = sd + 1e-6  # standardised features make one C grid fit every CLIP model
    present, y = np.unique(np.asarray(train_y, np.int64), return_inverse=True)
    z = torch.empty((n, len(mu)), dtype=torch.float32)                              # [n, D]
    for s in range(0, n, CHUNK):
        z[s:s + CHUNK] = torch.from_numpy(((np.asarray(train_x[s:s + CHUNK], np.float64) - mu) / sd
                                           ).astype(np.float32))
    z = z.to(device)
    target = torch.from_numpy(y.astype(np.int64)).to(device)                       # [n]
    if not len(val_y):
        grid = (1.0,)  # nothing to choose with
    best_key, best_index = None, 0
    fits, search, theta = [], [], None
    for i, c in enumerate(sorted(grid)):  # strongest regularisation first: each fit warm-starts the next
        theta = _minimise(z, target, len(present), float(c), theta, steps, chunk)
        weight, bias = _fold(theta.cpu().numpy(), present, mu, sd, num_classes)
        fits.append((weight, bias))
        top1, loss = _val_scores(val_x, val_y, weight, bias)
        search.append({"C": c, "val_top1": top1, "val_loss": loss})
        key = (np.nan_to_num(top1, nan=0.0), -np.nan_to_num(loss, nan=0.0))  # higher top-1, then lower loss
        if best_key is None or key > best_key:
            best_key, best_index = key, i
    weight, bias = fits[best_index]
    return weight, bias, {"C": sorted(grid)[best_index], "search": search}
