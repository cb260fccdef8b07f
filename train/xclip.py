"""X-CLIP-style head: multi-frame integration transformer plus video-conditioned class prompts."""
from typing import Any, Dict

import torch
import torch.nn.functional as F
from torch import nn

from train.heads import FrameEncoder, TemporalHead, zero_linear


class XCLIPHead(TemporalHead):
    """Frame tokens exchange information in a transformer (the multi-frame integration transformer),
    whose per-token corrections are averaged into the video embedding; each class text embedding then
    attends over the video's tokens and is nudged towards it before the cosine, so the same class
    name reads differently for different videos (video-conditioned prompts)."""

    def __init__(self, config: Dict[str, Any]):
        super().__init__(config)
        d, w = config["dim"], config["width"]
        self.mit = FrameEncoder(config)
        self.tok_out = zero_linear(w, d)       # per-token residual in CLIP space, zero at init
        self.q = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, w))
        self.kv = nn.Linear(w, w)
        self.attn = nn.MultiheadAttention(w, config["heads"], dropout=config["dropout"], batch_first=True)
        self.mlp = nn.Sequential(nn.LayerNorm(w), nn.Linear(w, 2 * w), nn.GELU(), nn.Linear(2 * w, w))
        self.prompt_out = zero_linear(w, d)    # text residual, zero at init

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        return self.tok_out(self.mit(x)).mean(dim=1)  # [B, D]

    def logits(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        hidden = self.mit(x)                                      # [B, T, W]
        video = x.mean(dim=1) + self.tok_out(hidden).mean(dim=1)  # [B, D], as forward()
        q = self.q(text).unsqueeze(0).expand(len(x), -1, -1)      # [B, C, W]
        kv = self.kv(hidden)                                      # [B, T, W]
        a, _ = self.attn(q, kv, kv, need_weights=False)           # [B, C, W]
        a = a + self.mlp(a)
        prompts = text.unsqueeze(0) + self.prompt_out(a)          # [B, C, D]
        cos = torch.einsum("bd,bcd->bc", F.normalize(video, dim=-1), F.normalize(prompts, dim=-1))
        return self.scale() * cos                                 # [B, C]
