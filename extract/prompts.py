"""Prompt templates for class text embeddings (ensembled, as CLIP is evaluated on action data)."""
from typing import List

# Each template turns a class name into a sentence; the class embedding is the normalised mean.
TEMPLATES: List[str] = [
    "a video of {}.",
    "a photo of {}.",
    "a video of a person {}.",
    "a clip showing {}.",
    "footage of {}.",
    "a frame from a video of {}.",
    "an example of {}.",
    "a demonstration of {}.",
]


def fill(template: str, name: str) -> str:
    """Put a class name into a template; names with braces are taken literally."""
    return template.replace("{}", name)
