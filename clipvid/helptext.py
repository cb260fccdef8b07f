"""--help layout shared by every command: wrapped prose, then verbatim examples at the end."""
import argparse
from typing import Sequence


class HelpFormatter(argparse.HelpFormatter):
    """Wraps each line of a description or epilog on its own (argparse would merge them all), and
    keeps paragraphs with indented lines (the examples) exactly as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for para in text.strip("\n").split("\n\n"):
            lines = para.splitlines()
            if any(line.startswith(" ") for line in lines):
                out.append("\n".join(indent + line for line in lines))
            else:
                out.append("\n".join(super(HelpFormatter, self)._fill_text(line, width, indent) for line in lines))
        return "\n\n".join(out)


def add_examples(ap: argparse.ArgumentParser, examples: Sequence[str]) -> argparse.ArgumentParser:
    """End `ap`'s --help with an 'examples:' block (two or three real command lines)."""
    ap.formatter_class = HelpFormatter
    block = "examples:\n" + "\n".join(f"  {e}" for e in examples)
    ap.epilog = f"{ap.epilog.rstrip()}\n\n{block}" if ap.epilog else block
    return ap
