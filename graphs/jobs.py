"""Importable entry points behind `rationalrewards refine`, `rationalrewards demo` and `rationalrewards report`."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.factory import generator_from_spec, refiner_from_spec, reward_model_from_spec
from graphs.gcr_config import GCRConfig
from graphs.runner import GCRRunner


@dataclass(frozen=True)
class RefineJob:
    rows: list[dict[str, Any]]
    out: Path
    generator: str = "sketch"
    critic: str = "sketch"
    critic_model: str | None = None
    refiner: str = "critic"
    refiner_model: str | None = None
    preset: str = "paper"
    rounds: int | None = None
    candidates: int | None = None
    threshold: float | None = None
    concurrency: int = 8
    device: str = "cpu"
    progress: bool = True

    def config(self) -> GCRConfig:
        return GCRConfig.preset(self.preset, max_rounds=self.rounds, candidates=self.candidates, threshold=self.threshold)  # type: ignore[arg-type]


def refine_job(job: RefineJob) -> dict[str, Any]:
    config = job.config()
    critic_options: dict[str, Any] = {}
    if job.critic.startswith(("http://", "https://")):
        critic_options = {"concurrency": max(job.concurrency, 8), "on_server_error": "abstain"}
    runner = GCRRunner(
        job.out,
        generator=generator_from_spec(job.generator, job.out / "images", device=job.device),
        critic=reward_model_from_spec(job.critic, model=job.critic_model, **critic_options),
        refiner=refiner_from_spec(job.refiner, model=job.refiner_model),
        config=config,
        concurrency=job.concurrency,
        progress=job.progress,
    )
    summary = asyncio.run(runner.run(job.rows))
    summary["report"] = str(job.out / "report.html")
    return summary


def demo_job(out: Path, progress: bool = True) -> dict[str, Any]:
    """The README's main job: the built-in sketch suite through the `paper` and `deep` presets."""
    from agents.sketch.suites import demo_suite

    rows = demo_suite()
    started = time.perf_counter()
    results = {}
    for preset in ("paper", "deep"):
        results[preset] = refine_job(RefineJob(rows=rows, out=out / preset, preset=preset, progress=progress))
    keys = ("n", "reward_initial", "reward_final", "accuracy_initial", "accuracy_final", "generations", "critique_calls", "report")
    summary = {preset: {k: s.get(k) for k in keys} | {"per_tag": s.get("per_tag")} for preset, s in results.items()}
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary


def demo_table(summary: dict[str, Any]) -> str:
    lines = ["Generate-Critique-Refine on the built-in sketch suite (sketch generator, sketch oracle critic)", "",
             f"{'preset':<7} {'prompts':>7} {'reward first':>13} {'reward kept':>12} {'accuracy first':>15} {'accuracy kept':>14} {'images':>7}"]
    for preset in ("paper", "deep"):
        s = summary[preset]
        lines.append(f"{preset:<7} {s['n']:>7} {s['reward_initial']:>13.3f} {s['reward_final']:>12.3f} "
                     f"{s['accuracy_initial']:>15.3f} {s['accuracy_final']:>14.3f} {s['generations']:>7}")
    lines.append("")
    lines += [f"report ({preset}): {summary[preset]['report']}" for preset in ("paper", "deep")]
    lines.append(f"({summary['seconds']} s; accuracy is GenEval-style ground truth from the scene graphs, mean over tags)")
    return "\n".join(lines)
