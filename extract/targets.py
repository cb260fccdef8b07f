"""One cache of an extraction run: its backbone, file, settings, writer, the videos it still needs and its counts."""
import json
from dataclasses import dataclass, field
from typing import Dict, Optional

from cache.writer import CacheWriter
from clipvid.errors import CacheError
from extract import worker_tasks
from extract.sources import Source, prompt_name


@dataclass
class Target:
    """A run writes one Target per backbone (`--clip-model` repeated): each video decoded once for all."""
    spec: str
    out: str
    settings: dict
    summary: object = None                 # extract.pipeline.Summary
    writer: Optional[CacheWriter] = None
    todo: set = field(default_factory=set)   # ids this cache still needs

    def open(self, client, source: Source, common: tuple) -> CacheWriter:
        """Embed the class prompts with this backbone and the cache's templates, then open its writer."""
        texts = [prompt_name(c) for c in source.classes]
        templates = json.loads(self.settings["prompt_templates"])
        text_emb = client.submit(worker_tasks.text_task, self.spec, *common, texts, templates, pure=False).result()
        self.settings["dim"] = int(text_emb.shape[1])   # [C, D], also when there is no class
        self.writer = CacheWriter(self.out, self.settings)
        self.writer.set_classes(source.classes, text_emb)
        return self.writer

    def record(self, item, res: Dict[str, object], content: str = "") -> None:
        """Write one video's result (embeddings or failure) into this cache and count it."""
        summary = self.summary
        if "resource" in res:   # the GPU was full: nothing is wrong with the video, the next run tries it again
            summary.deferred[item.id] = res["resource"]
        elif "error" in res:
            self.writer.add_failure(item.id, res["error"])
            summary.failed[item.id] = " ".join(str(res["error"]).split())
        else:
            self.writer.add_video(item.id, res["emb"], res["t"], item.label, item.split, item.caption,
                                  res["n_distinct"], res["duration"], res["fps"], content,
                                  decoder=res.get("decoder", ""))
            summary.cached += 1
            way = res["strategy"] if res.get("decoder", "pyav") == "pyav" else f"{res['strategy']} (ffmpeg command line)"
            summary.strategies[way] = summary.strategies.get(way, 0) + 1

    def close_interrupted(self) -> None:
        """Commit every finished video of an interrupted run; a cache that cannot commit keeps its journal."""
        if self.writer is None:
            return
        try:
            self.writer.close()
        except CacheError:
            self.writer.abandon()
