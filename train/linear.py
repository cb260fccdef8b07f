"""Linear probe: scikit-learn logistic regression on mean-pooled frame embeddings."""
import warnings
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from train.baselines import mean_over_time
from train.method import Method
from train.metrics import cross_entropy, topk_accuracy

C_GRID = (0.1, 1.0, 10.0)  # inverse L2 strength, picked on the validation split (each fit costs seconds)
ABSENT = -1e4  # bias of classes the probe never saw: never predicted, yet softmax stays finite


class LinearMethod(Method):
    """logits = W @ meanpool(frames) + b over its own classes (it cannot score unseen text)."""

    scores_any_text = False

    def __init__(self, name: str, class_names: List[str], config: Dict[str, Any],
                 weight: np.ndarray, bias: np.ndarray):
        super().__init__(name, class_names, config)
        self.weight = np.asarray(weight, np.float32)  # [C, D]
        self.bias = np.asarray(bias, np.float32)      # [C]

    def _embed(self, x: np.ndarray) -> np.ndarray:
        return mean_over_time(x)

    def _logits(self, x: np.ndarray, text: np.ndarray) -> np.ndarray:
        return mean_over_time(x) @ self.weight.T + self.bias

    def _num_outputs(self, text: np.ndarray) -> int:
        return len(self.weight)

    def state_dict(self) -> Dict[str, torch.Tensor]:
        return {"weight": torch.from_numpy(self.weight.copy()), "bias": torch.from_numpy(self.bias.copy())}


def _fold(model: LogisticRegression, mu: np.ndarray, sd: np.ndarray,
          num_classes: int) -> Tuple[np.ndarray, np.ndarray]:
    """Weights [C, D] and bias [C] over all classes that act on raw features (standardisation folded in)."""
    coef, icpt = model.coef_, model.intercept_
    if coef.shape[0] == 1:  # binary: sklearn keeps one row, the logit of classes_[1] against classes_[0]
        coef, icpt = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], icpt])
    weight = np.zeros((num_classes, coef.shape[1]), np.float64)
    bias = np.full(num_classes, ABSENT, np.float64)
    weight[model.classes_] = coef / sd
    bias[model.classes_] = icpt - (coef * (mu / sd)).sum(axis=1)
    return weight.astype(np.float32), bias.astype(np.float32)


def fit_linear(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
               num_classes: int, seed: int, grid: Sequence[float] = C_GRID
               ) -> Tuple[np.ndarray, np.ndarray, Dict[str, Any]]:
    """Fit on mean-pooled features [n, D]; pick C by validation top-1 (then loss). -> (W, b, info)."""
    mu = train_x.mean(axis=0)
    sd = train_x.std(axis=0) + 1e-6  # standardised features make one C grid fit every CLIP model
    z = (train_x - mu) / sd
    if not len(val_y):
        grid = (1.0,)  # nothing to choose with
    best_key, best_index = None, 0
    fits = []
    search = []
    for i, c in enumerate(grid):
        model = LogisticRegression(C=c, max_iter=2000, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(z, train_y)
        weight, bias = _fold(model, mu, sd, num_classes)
        fits.append((weight, bias))
        logits = val_x @ weight.T + bias if len(val_y) else np.zeros((0, num_classes), np.float32)
        top1, loss = topk_accuracy(logits, val_y, 1), cross_entropy(logits, val_y)
        search.append({"C": c, "val_top1": top1, "val_loss": loss})
        key = (np.nan_to_num(top1, nan=0.0), -np.nan_to_num(loss, nan=0.0))  # higher top-1, then lower loss
        if best_key is None or key > best_key:
            best_key, best_index = key, i
    weight, bias = fits[best_index]
    return weight, bias, {"C": grid[best_index], "search": search}
