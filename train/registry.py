"""Every method by name: how to build it from a config (and weights), and the Method wrapping a torch head."""
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from clipvid.device import autocast
from train.baselines import POOLS, BaselineMethod
from train.heads import LSTMHead, TemporalHead, TransformerHead
from train.linear import LinearMethod
from train.method import Method
from train.xclip import XCLIPHead

BASELINES = tuple(POOLS)                      # midframe, meanpool, maxpool, vote
TRAINED = ("lstm", "transformer", "xclip")
ALL_METHODS = BASELINES + ("linear",) + TRAINED
_MODULES = {"lstm": LSTMHead, "transformer": TransformerHead, "xclip": XCLIPHead}


def build_module(config: Dict[str, Any]) -> TemporalHead:
    """A fresh torch head for config["head"] (weights from the current torch seed)."""
    return _MODULES[config["head"]](config)


class HeadMethod(Method):
    """A trained torch head behind the numpy Method interface."""

    def __init__(self, name: str, class_names: List[str], config: Dict[str, Any],
                 module: TemporalHead, device: torch.device):
        super().__init__(name, class_names, config)
        self.device = device
        self.module = module.to(device).eval()

    def _run(self, fn, *arrays: np.ndarray) -> np.ndarray:
        tensors = [torch.from_numpy(a).to(self.device) for a in arrays]
        with torch.no_grad(), autocast(self.device):
            return fn(*tensors).float().cpu().numpy()

    def _embed(self, x: np.ndarray) -> np.ndarray:
        return self._run(self.module, x)

    def _logits(self, x: np.ndarray, text: np.ndarray) -> np.ndarray:
        return self._run(self.module.logits, x, text)

    def state_dict(self) -> Dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.module.state_dict().items()}


def make_method(head: str, class_names: List[str], config: Dict[str, Any],
                state: Optional[Dict[str, torch.Tensor]], device: torch.device) -> Method:
    """Rebuild a method from what a checkpoint holds; raises KeyError/RuntimeError on mismatched weights."""
    if head in BASELINES:
        return BaselineMethod(head, class_names, config)
    if head == "linear":
        return LinearMethod(head, class_names, config, state["weight"].numpy(), state["bias"].numpy())
    if head in _MODULES:
        module = build_module(config)
        module.load_state_dict(state)
        return HeadMethod(head, class_names, config, module, device)
    raise KeyError(f"unknown head {head!r}")
