"""Linear probe: multinomial logistic regression on mean-pooled frame embeddings, fitted in torch (L-BFGS)."""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from train.baselines import mean_over_time
from train.method import Method, window_means
from train.metrics import cross_entropy, topk_accuracy

C_GRID = (0.1, 1.0, 10.0)  # inverse L2 strength (scikit-learn's C), picked on the validation split
MAX_STEPS = 100            # L-BFGS iterations per C; each C starts from the previous (stronger) one's optimum
ABSENT = -1e4  # bias of classes the probe never saw: never predicted, yet softmax stays finite


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
              steps: int) -> torch.Tensor:
    """[P, D + 1] weights and bias minimising C * sum(cross-entropy) + |W|^2 / 2 (scikit-learn's objective)."""
    n, d = z.shape
    theta = (torch.zeros(num, d + 1, dtype=z.dtype, device=z.device) if start is None else start.clone()
             ).requires_grad_(True)
    opt = torch.optim.LBFGS([theta], lr=1.0, max_iter=steps, history_size=20, tolerance_grad=1e-4,
                            tolerance_change=1e-10, line_search_fn="strong_wolfe")
    reg = 1.0 / (2.0 * c * n)  # the same objective divided by C * n: a mean loss keeps L-BFGS well scaled

    def closure():
        opt.zero_grad()
        logits = torch.addmm(theta[:, d], z, theta[:, :d].T)               # [n, P]
        loss = F.cross_entropy(logits, y) + reg * theta[:, :d].pow(2).sum()
        loss.backward()
        return loss

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


def fit_linear(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
               num_classes: int, seed: int, grid: Sequence[float] = C_GRID,
               device: Optional[torch.device] = None, steps: int = MAX_STEPS
               ) -> Tuple[np.ndarray, np.ndarray, Dict[str, Any]]:
    """Fit on mean-pooled features [n, D]; pick C by validation top-1 (then loss). -> (W, b, info).

    Full-batch L-BFGS on standardised features, on `device` (the GPU when train.device picked one);
    the fit is deterministic, so `seed` only names the run.
    """
    device = device or torch.device("cpu")
    train_x64 = np.asarray(train_x, np.float64)
    mu = train_x64.mean(axis=0)
    sd = train_x64.std(axis=0) + 1e-6  # standardised features make one C grid fit every CLIP model
    present, y = np.unique(np.asarray(train_y, np.int64), return_inverse=True)
    z = torch.from_numpy(((train_x64 - mu) / sd).astype(np.float32)).to(device)    # [n, D]
    target = torch.from_numpy(y.astype(np.int64)).to(device)                       # [n]
    del train_x64
    if not len(val_y):
        grid = (1.0,)  # nothing to choose with
    best_key, best_index = None, 0
    fits, search, theta = [], [], None
    for i, c in enumerate(sorted(grid)):  # strongest regularisation first: each fit warm-starts the next
        theta = _minimise(z, target, len(present), float(c), theta, steps)
        weight, bias = _fold(theta.cpu().numpy(), present, mu, sd, num_classes)
        fits.append((weight, bias))
        logits = val_x @ weight.T + bias if len(val_y) else np.zeros((0, num_classes), np.float32)
        top1, loss = topk_accuracy(logits, val_y, 1), cross_entropy(logits, val_y)
        search.append({"C": c, "val_top1": top1, "val_loss": loss})
        key = (np.nan_to_num(top1, nan=0.0), -np.nan_to_num(loss, nan=0.0))  # higher top-1, then lower loss
        if best_key is None or key > best_key:
            best_key, best_index = key, i
    weight, bias = fits[best_index]
    return weight, bias, {"C": sorted(grid)[best_index], "search": search}
