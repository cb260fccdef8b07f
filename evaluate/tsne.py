"""t-SNE that cannot take the report down: validated input, exact duplicates merged, run in a child process."""
import multiprocessing
from typing import Any, Callable, Optional, Tuple

import numpy as np

TSNE_SEED = 0
MIN_POINTS = 5          # below this many distinct embeddings a 2-D layout says nothing
CHILD_TIMEOUT = 600.0   # seconds; a t-SNE of the 1000-video sample takes well under a minute


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:200]}".rstrip(": ")


def _child(conn: Any, fn: Callable[..., Any], args: tuple) -> None:
    """Runs in the child: send (True, result) or (False, one-line error) back to the parent."""
    try:
        conn.send((True, fn(*args)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent as a note
        conn.send((False, _first_line(exc)))
    finally:
        conn.close()


def run_isolated(fn: Callable[..., Any], *args: Any, timeout: float = CHILD_TIMEOUT) -> Tuple[Any, Optional[str]]:
    """(fn(*args), None) computed in a fresh child process, or (None, reason) when the child failed.

    A native crash (SIGSEGV in compiled code, an abort) kills only the child; the caller gets a
    one-line reason instead of dying with the signal. `fn` must be importable by name (spawned child).
    """
    ctx = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools and locks
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, args), daemon=True)
    proc.start()
    send.close()   # the child holds the only sending end: its death means end-of-file here
    try:
        if not receive.poll(timeout):
            proc.kill()
            return None, f"t-SNE took longer than {timeout:.0f} s"
        ok, value = receive.recv()
    except EOFError:   # the child died before answering; its exit status names the signal
        proc.join(30)
        code = proc.exitcode
        return None, (f"the t-SNE process was killed by signal {-code}" if isinstance(code, int) and code < 0
                      else "the t-SNE process died unexpectedly")
    finally:
        receive.close()
        proc.join(30)
    return (value, None) if ok else (None, f"t-SNE failed: {value}")


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
