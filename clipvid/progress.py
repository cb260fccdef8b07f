"""Progress for every command: a tqdm bar on a terminal, a plain line every few seconds in a log."""
import os
import sys
import time
from typing import Any, Iterable, Iterator, Optional, TextIO

# Seconds between two plain lines when stderr is not a terminal (a log file, a pipe, CI).
INTERVAL = float(os.environ.get("CLIPVID_PROGRESS_INTERVAL", "5"))


def progress_enabled(quiet: bool = False) -> bool:
    """False under --quiet or TQDM_DISABLE=1 (tqdm's own switch, honoured for the plain lines too)."""
    return not quiet and os.environ.get("TQDM_DISABLE", "").strip().lower() in ("", "0", "false", "no")


def on_terminal(stream: Optional[TextIO] = None) -> bool:
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):   # closed or replaced stream
        return False


def _fmt_seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


class Progress:
    """Counts work done. On a terminal a tqdm bar; otherwise one plain line at most every INTERVAL
    seconds (and a closing line when the work took that long), so a log holds no redraws.

    `lines=False` keeps the bar on a terminal but prints nothing elsewhere (for inner loops whose
    outer loop reports, e.g. per-batch bars under a per-epoch line)."""

    def __init__(self, iterable: Optional[Iterable] = None, total: Optional[int] = None, desc: str = "",
                 unit: str = "it", quiet: bool = False, leave: bool = True, lines: bool = True,
                 stream: Optional[TextIO] = None) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)   # type: ignore[arg-type]
        self.total, self.desc, self.unit, self.leave = total, desc, unit, leave
        self.stream = stream if stream is not None else sys.stderr
        self.n = 0
        self.postfix: dict = {}
        self.start = self.last = time.monotonic()
        self.printed = False
        self.bar = None
        enabled = progress_enabled(quiet)
        if enabled and on_terminal(self.stream):
            from tqdm import tqdm
            self.bar = tqdm(total=total, desc=desc, unit=unit, leave=leave, file=self.stream,
                            dynamic_ncols=True)
        self.plain = enabled and self.bar is None and lines

    def __iter__(self) -> Iterator[Any]:
        assert self.iterable is not None, "Progress(iterable=...) to iterate"
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.plain and time.monotonic() - self.last >= INTERVAL and not (self.total and self.n >= self.total):
            self._line()   # the last one is close()'s

    def set_postfix(self, **values: Any) -> None:
        """Extra fields shown after the count (e.g. failed=2); shown with the next redraw or line."""
        values.pop("refresh", None)   # tqdm's keyword: never a field
        self.postfix.update(values)
        if self.bar is not None:
            self.bar.set_postfix(refresh=False, **values)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.plain and self.leave and (self.printed or time.monotonic() - self.start >= INTERVAL):
            self._line(final=True)
        self.plain = False

    def _line(self, final: bool = False) -> None:
        now = time.monotonic()
        elapsed = now - self.start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        count = f"{self.n}/{self.total}" if self.total else str(self.n)
        text = f"{self.desc}: {count} {self.unit}"
        if self.total and not final:
            text += f" ({100 * self.n / self.total:.0f}%)"
        text += f", {_fmt_seconds(elapsed)}, {rate:.2f} {self.unit}/s"
        if self.total and not final and rate > 0 and self.n < self.total:
            text += f", ~{_fmt_seconds((self.total - self.n) / rate)} left"
        if final:
            text += ", done"
        if self.postfix:
            text += " (" + ", ".join(f"{k} {v}" for k, v in self.postfix.items()) + ")"
        _write(self.stream, text)
        self.last, self.printed = now, True


def _write(stream: TextIO, text: str) -> None:
    try:
        stream.write(text + "\n")
        stream.flush()
    except (OSError, ValueError):   # a closed log or pipe must not stop the work
        pass


def progress(iterable: Optional[Iterable] = None, total: Optional[int] = None, desc: str = "",
             unit: str = "it", quiet: bool = False, **kw: Any) -> Progress:
    """The one progress display: `for x in progress(xs, desc=..., quiet=...)` or `with progress(total=...) as p`."""
    return Progress(iterable, total, desc, unit, quiet, **kw)


def epoch_line(desc: str, epoch: int, epochs: int, loss: float, val_top1: float, seconds: float,
               quiet: bool = False, stream: Optional[TextIO] = None) -> None:
    """One line per training epoch (epoch, loss, val top-1, seconds) where per-batch bars would
    only litter a log; on a terminal the bars show this already, so nothing is printed there."""
    stream = stream if stream is not None else sys.stderr
    if not progress_enabled(quiet) or on_terminal(stream):
        return
    top1 = "  -  " if val_top1 != val_top1 else f"{val_top1:.3f}"
    _write(stream, f"{desc} epoch {epoch}/{epochs}: loss {loss:.4f}, val top-1 {top1}, {seconds:.1f} s")
