"""The artifact store's generation cache: (generator, prompt, seed, source) -> the image already made.

Images themselves are content-addressed PNGs written by the generator under the run directory; this index lets a
resumed or repeated thread reuse them instead of generating again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from rationalrewards.agents.generator import GeneratedImage
from rationalrewards.rewardmodel.images import content_candidates, content_path


class GenerationCache:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.hits = 0

    @staticmethod
    def key(generator: str, prompt: str, seed: int, source_sha256: str | None) -> str:
        return hashlib.sha256(json.dumps([generator, prompt, seed, source_sha256]).encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return content_path(self.directory, key, ".json")

    def get(self, key: str) -> GeneratedImage | None:
        path = next((p for p in content_candidates(self.directory, key, ".json") if p.exists()), None)
        if path is None:
            return None
        try:
            made = GeneratedImage.model_validate_json(path.read_text())
        except ValueError:
            return None  # a half-written entry from a crash: generate again
        if made.image.uri.startswith("data:") or Path(made.image.uri).exists():
            self.hits += 1
            return made
        return None

    def put(self, key: str, made: GeneratedImage) -> None:
        from rationalrewards.plumbing.files import atomic_write_text

        atomic_write_text(self._path(key), made.model_dump_json())
