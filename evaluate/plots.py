"""Report figures as PNG bytes (matplotlib Agg, fixed seeds, no display needed)."""
import io
from typing import Dict, List, Optional, Sequence

import matplotlib
matplotlib.use("Agg")  # reports are made on servers with no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

TSNE_MAX_VIDEOS = 1000  # t-SNE is slow (~13 s for 1000 on one core); a sample this size shows the structure
LABEL_LIMIT = 40        # above this many classes, tick labels would overlap into a black bar


def plain(text: str) -> str:
    """User text made safe for matplotlib: a `$` would otherwise start mathtext (and can crash it)."""
    return str(text).replace("\\", "\\\\").replace("$", r"\$")


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def frames_curve(curves: Dict[str, Dict[str, List[float]]]) -> bytes:
    """Top-1 against frames used, one line per head; x on a log2 scale."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, c in curves.items():
        ax.plot(c["frames"], [100 * a for a in c["top1"]], marker="o", label=plain(name))
    ax.set_xscale("log", base=2)
    ks = sorted({k for c in curves.values() for k in c["frames"]})
    ax.set_xticks(ks, [str(k) for k in ks])  # plain frame counts read better than powers of two
    ax.minorticks_off()
    ax.set_xlabel("frames used (evenly spaced subset of the cached N)")
    ax.set_ylabel("test top-1 (%)")
    ax.set_title("Accuracy against number of frames")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=8, loc="best")
    return _png(fig)


def fewshot_curve(few: Dict[str, object]) -> bytes:
    """Test top-1 against K labelled videos per class: mean over the draws, a band of ± one sd."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, c in few["curves"].items():
        mean, sd = 100 * np.array(c["mean"]), 100 * np.array(c["sd"])
        line, = ax.plot(c["shots"], mean, marker="o", label=plain(name))
        ax.fill_between(c["shots"], mean - sd, mean + sd, color=line.get_color(), alpha=0.15)
    ax.set_xscale("log", base=2)
    ax.set_xticks(few["shots"], [str(k) for k in few["shots"]])
    ax.minorticks_off()
    ax.set_xlabel("labelled training videos per class (K)")
    ax.set_ylabel("test top-1 (%)")
    ax.set_title(f"Few-shot: mean ± sd over {len(few['draws'])} draws")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _png(fig)


def confusion(cm: np.ndarray, names: Sequence[str], title: str) -> bytes:
    """Row-normalised confusion matrix (rows: true class)."""
    cm = np.asarray(cm, np.float64)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    size = min(12, 3 + 0.35 * len(names))
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    if len(names) <= LABEL_LIMIT:
        ticks = np.arange(len(names))
        ax.set_xticks(ticks, [plain(n) for n in names], rotation=90, fontsize=7)
        ax.set_yticks(ticks, [plain(n) for n in names], fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(plain(title))
    return _png(fig)


def per_class(acc: np.ndarray, names: Sequence[str], title: str) -> bytes:
    """Horizontal bars of per-class accuracy (classes with no test videos left out)."""
    keep = [i for i in range(len(names)) if np.isfinite(acc[i])]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.22 * len(keep) + 1)))
    ax.barh(np.arange(len(keep)), [100 * acc[i] for i in keep], color="#4878a8")
    if len(keep) <= 2 * LABEL_LIMIT:
        ax.set_yticks(np.arange(len(keep)), [plain(names[i]) for i in keep], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("test accuracy (%)")
    ax.set_title(plain(title))
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def tsne_pair(layouts: Sequence[np.ndarray], labels: np.ndarray, names: Sequence[str],
              titles: Sequence[str], marked: Optional[np.ndarray] = None) -> bytes:
    """Side-by-side 2-D layouts ([V, 2] each, NaN rows not drawn) of the same videos, coloured by class.

    `marked` [V] bool: videos drawn with a black ring (the test split), the rest plain.
    """
    fig, axes = plt.subplots(1, len(layouts), figsize=(6 * len(layouts), 5.5), squeeze=False)
    cmap = plt.get_cmap("tab20" if len(names) > 10 else "tab10")
    colours = np.array([cmap(int(l) % cmap.N) for l in labels]).reshape(-1, 4)
    ring = np.zeros(len(labels), bool) if marked is None else np.asarray(marked, bool)
    for ax, xy, title in zip(axes[0], layouts, titles):
        for sel, edge in ((~ring, "none"), (ring, "black")):
            ax.scatter(xy[sel, 0], xy[sel, 1], c=colours[sel], s=14, alpha=0.85, edgecolors=edge, linewidths=0.6)
        ax.set_title(plain(title))
        ax.set_xticks([])
        ax.set_yticks([])
    present = sorted(set(int(l) for l in labels))
    if len(present) <= LABEL_LIMIT:
        handles = [plt.Line2D([], [], marker="o", ls="", color=cmap(c % cmap.N), label=plain(names[c]))
                   for c in present]
        if ring.any():
            handles.append(plt.Line2D([], [], marker="o", ls="", color="white", markeredgecolor="black",
                                      label="ringed: test split"))
        fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), fontsize=7, frameon=False)
        fig.subplots_adjust(bottom=0.08 + 0.03 * ((len(handles) + 5) // 6))
    return _png(fig)


def sample_for_tsne(n: int, limit: int = TSNE_MAX_VIDEOS) -> np.ndarray:
    """Row indices to plot: all of them, or a fixed-seed sample of `limit`."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, limit, replace=False))


def training_curves(histories: Dict[str, List[dict]]) -> Optional[bytes]:
    """Train/val loss and val top-1 per epoch for each trained head; None when no run has a history."""
    histories = {k: v for k, v in histories.items() if v}
    if not histories:
        return None
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.2))
    colours = plt.get_cmap("tab10")
    for i, (name, hist) in enumerate(histories.items()):
        epochs = [h.get("epoch", j) for j, h in enumerate(hist)]
        col = colours(i % 10)
        for key, style in (("train_loss", "-"), ("val_loss", "--")):
            vals = [h.get(key) for h in hist]
            if any(v is not None for v in vals):
                ax_loss.plot(epochs, [np.nan if v is None else v for v in vals], style, color=col,
                             label=f"{plain(name)} {key.split('_')[0]}")
        vals = [h.get("val_top1") for h in hist]
        ax_acc.plot(epochs, [np.nan if v is None else 100 * v for v in vals], "-o", ms=3, color=col,
                    label=plain(name))
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("Loss (solid: train, dashed: validation)")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("validation top-1 (%)")
    ax_acc.set_title("Validation accuracy")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _png(fig)
