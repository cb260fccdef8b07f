"""The one list of heads: each head's properties, how to build it from a config (and weights), and the
Method wrapping a torch head. Code elsewhere asks a head's properties, never tests its name."""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Type

import numpy as np
import torch

from clipvid.device import autocast
from train.baselines import POOLS, BaselineMethod
from train.heads import LSTMHead, TemporalHead, TransformerHead
from train.linear import LinearMethod
from train.method import Method
from train.xclip import XCLIPHead


@dataclass(frozen=True)
class HeadSpec:
    """What a head is: a training-free pool ("baseline"), a linear probe fitted on mean-pooled frames
    ("probe"), or a torch head trained for epochs ("trained")."""
    name: str
    kind: str
    module: Optional[Type[TemporalHead]] = None
    defaults: Mapping[str, Any] = field(default_factory=dict)   # a trained head's tuned settings
    former: Mapping[str, Any] = field(default_factory=dict)     # what a stored config lacking a key meant

    @property
    def learns(self) -> bool:
        """Fitted to labels: a seed changes it, and few-shot curves retrain it."""
        return self.kind != "baseline"

    @property
    def trains(self) -> bool:
        """Trained for epochs with a learning rate (both name its run folder)."""
        return self.kind == "trained"

    @property
    def cheap(self) -> bool:
        """Fitted in seconds, so several share one scoring pass."""
        return self.kind != "trained"

    @property
    def needs_pooled(self) -> bool:
        """Fitted on the training videos' mean-pooled frames."""
        return self.kind == "probe"

    @property
    def needs_stats(self) -> bool:
        """Needs the training frames' statistics (its input standardisation)."""
        return self.kind == "trained"


def _trained(name: str, module: Type[TemporalHead]) -> HeadSpec:
    return HeadSpec(name, "trained", module, dict(module.DEFAULTS), dict(module.FORMER))


# In the order reports list them: baselines first, as in the design.
HEADS: Dict[str, HeadSpec] = {
    **{name: HeadSpec(name, "baseline") for name in POOLS},       # midframe, meanpool, maxpool, vote
    "linear": HeadSpec("linear", "probe"),
    "lstm": _trained("lstm", LSTMHead),
    "transformer": _trained("transformer", TransformerHead),
    "xclip": _trained("xclip", XCLIPHead),
}
ALL_METHODS = tuple(HEADS)
BASELINES = tuple(n for n, h in HEADS.items() if h.kind == "baseline")
TRAINED = tuple(n for n, h in HEADS.items() if h.trains)
PROBE = "linear"   # the reference every few-shot table shows


def build_module(config: Dict[str, Any]) -> TemporalHead:
    """A fresh torch head for config["head"] (weights from the current torch seed)."""
    return HEADS[config["head"]].module(config)


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
    spec = HEADS.get(head)
    if spec is None:
        raise KeyError(f"unknown head {head!r}")
    if not spec.learns:
        return BaselineMethod(head, class_names, config)
    if spec.kind == "probe":
        return LinearMethod(head, class_names, config, state["weight"].numpy(), state["bias"].numpy())
    module = build_module(config)
    module.load_state_dict(state)
    return HeadMethod(head, class_names, config, module, device)
