"""The one place that decides which torch device clipvid runs on."""
import torch


def resolve_device(choice: str = "auto") -> torch.device:
    """'auto' picks CUDA when present, else CPU; 'cuda' without a GPU is an error."""
    choice = (choice or "auto").lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA GPU")
    if choice not in ("cpu",) and not choice.startswith("cuda"):
        raise ValueError(f"unknown --device {choice!r}; use auto, cpu or cuda")
    return torch.device(choice)
