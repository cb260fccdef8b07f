"""X-CLIP-style head on cached per-frame CLIP embeddings: what of X-CLIP survives, and what cannot.

X-CLIP (Ni et al., 2022) has three video-side parts. Here:

- Cross-frame communication transformer: NOT kept, and it cannot be. In X-CLIP every frame's ViT
  layers exchange a message token with the other frames, so patches of one frame attend to what
  happens in the others. The cache holds one CLS embedding per frame, computed by CLIP's frozen
  image encoder with no view of other frames; there are no patch tokens left to talk to each other.
- Multi-frame integration transformer (MIT): kept. A transformer with temporal position embeddings
  over the (time-pooled) frame embeddings, whose outputs are averaged and added as a residual to the
  mean-pooled frame embedding, as in X-CLIP.
- Video-specific prompting: kept in spirit. Each class text embedding cross-attends over the video's
  MIT tokens and is nudged towards the video before the cosine. X-CLIP's generator attends over the
  frames' visual tokens of the image encoder; here those are the MIT tokens of the frame CLS embeddings.

Not kept either: X-CLIP fine-tunes the image and text encoders end to end; here both are frozen (the
text side is the cached, prompt-ensembled class embedding), so only this head learns.
"""
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

    DEFAULTS = {"width": 64, "layers": 1, "heads": 4, "tokens": 16, "pos_init": 2.0, "dropout": 0.0,
                "lr": 2e-3, "weight_decay": 0.05, "ema": 0.9, "label_smoothing": 0.1}

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
