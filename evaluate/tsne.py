"""t-SNE that cannot take the report down: validated input, exact duplicates merged, run in a child process."""
import concurrent.futures as futures
import multiprocessing
from typing import Any, Callable, Optional, Tuple

import numpy as np

TSNE_SEED = 0
MIN_POINTS = 5          # below this many distinct embeddings a 2-D layout says nothing
CHILD_TIMEOUT = 600.0   # seconds; a t-SNE of the 1000-video sample takes well under a minute


def run_isolated(fn: Callable[..., Any], *args: Any, timeout: float = CHILD_TIMEOUT) -> Tuple[Any, Optional[str]]:
    """(fn(*args), None) computed in a fresh child process, or (None, reason) when the child failed.

    A native crash (SIGSEGV in compiled code, an abort) kills only the child; the caller gets a
    one-line reason instead of dying with the signal. `fn` must be importable by name (spawned child).
    """
    ctx = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools and locks
    pool = futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx)
    future = pool.submit(fn, *args)
    children = list((getattr(pool, "_processes", None) or {}).values())
    try:
        return future.result(timeout=timeout), None
    except futures.process.BrokenProcessPool:
        children = children or list((getattr(pool, "_processes", None) or {}).values())
        for proc in children:
            proc.join(30)  # the exit status (the signal) is known only once the child is reaped
        codes = [proc.exitcode for proc in children]
        signal = next((-c for c in codes if isinstance(c, int) and c < 0), None)
        return None, ("the t-SNE process was killed by signal %d" % signal if signal
                      else "the t-SNE process died unexpectedly")
    except futures.TimeoutError:
        for proc in children:
            proc.kill()  # only the child this call started
        return None, f"t-SNE took longer than {timeout:.0f} s"
    except Exception as exc:  # noqa: BLE001 - any error inside t-SNE becomes a note in the report
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        return None, f"t-SNE failed: {type(exc).__name__}: {first}"
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def fit_tsne(emb: np.ndarray, seed: int = TSNE_SEED) -> np.ndarray:
    """2-D Barnes-Hut t-SNE [n, 2] of distinct, finite rows [n, D]; runs in the child process."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits
    n = len(emb)
    perplexity = float(min(30, max(2, (n - 1) / 3)))  # must stay below n
    # One thread: OpenMP Barnes-Hut ran 4-20x slower on two shared cores than on one.
    with threadpool_limits(1):
        return TSNE(2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(emb)


def distinct_rows(emb: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(unique rows [u, D], inverse [n]) of emb, exact float32 equality: duplicates share one point."""
    x = np.ascontiguousarray(np.asarray(emb, np.float32))
    unique, inverse = np.unique(x, axis=0, return_inverse=True)
    return unique, inverse.reshape(-1)


def safe_tsne(emb: np.ndarray, seed: int = TSNE_SEED,
              runner: Callable[..., Tuple[Any, Optional[str]]] = run_isolated) -> Tuple[Optional[np.ndarray], str]:
    """(xy [n, 2] or None, note). Rows that are not finite are not drawn (NaN in xy), exact duplicates
    are laid out once and drawn on one spot, and a crash in t-SNE is reported instead of raised."""
    emb = np.asarray(emb, np.float32)
    if emb.ndim != 2 or not len(emb):
        return None, "no video embeddings to draw"
    finite = np.isfinite(emb).all(axis=1)
    notes = []
    if not finite.all():
        notes.append(f"{int((~finite).sum())} videos with non-finite embeddings left out")
    unique, inverse = distinct_rows(emb[finite])
    if len(unique) < len(inverse):
        notes.append(f"{len(inverse) - len(unique)} videos duplicate another video's embedding exactly "
                     f"and are drawn on the same spot")
    if len(unique) < MIN_POINTS:
        return None, "; ".join(notes + [f"only {len(unique)} distinct video embeddings "
                                        f"(t-SNE needs at least {MIN_POINTS})"])
    layout, error = runner(fit_tsne, unique, seed)
    if error is not None:
        return None, "; ".join(notes + [error])
    xy = np.full((len(emb), 2), np.nan)
    xy[finite] = np.asarray(layout)[inverse]
    return xy, "; ".join(notes)
