"""The CPU demo of the reward-model layer: render images, critique them with two real backends, write a report.

Until the sketch world and the GCR loop land, this is the most useful end-to-end run that needs no GPU and no
download: it renders three images with Pillow, critiques each with (1) a tiny random Qwen2-VL running in-process
(real model code, random weights: it is expected to abstain, and the demo shows that it does so honestly instead of
inventing a score) and (2) the deterministic fake critic through the real text format and parser, then compares two
of the images pairwise and writes `report.md` and `results.json`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rewardmodel.images import image_ref_from_pil
from rewardmodel.schemas import Abstention, CompareRequest, Critique, CritiqueRequest
from rewardmodel.scoring import reward_or_none, run_sync

PROMPT_BALLS = "a red ball to the left of a blue box"
PROMPT_SIGN = "a wooden sign that says 'OPEN'"


def _draw(kind: str) -> Any:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (256, 256), (235, 235, 235))
    draw = ImageDraw.Draw(image)
    if kind == "balls":
        draw.ellipse((30, 100, 100, 170), fill="red")
        draw.rectangle((160, 100, 230, 170), fill="blue")
    elif kind == "balls_swapped":
        draw.ellipse((160, 100, 230, 170), fill="blue")
        draw.rectangle((30, 100, 100, 170), fill="red")
    else:
        draw.rectangle((60, 90, 196, 150), fill=(150, 100, 50))
        draw.rectangle((122, 150, 134, 220), fill=(110, 70, 30))
        draw.text((100, 112), "OPNE", fill="white", font_size=24)
    return image


def run_demo(out: str | Path, progress: bool = True) -> dict[str, Any]:
    from rich.progress import Progress

    from rewardmodel.backends.local import TransformersRewardModel
    from rewardmodel.testing import FakeRewardModel
    from rewardmodel.tiny import save_tiny_vlm

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    out = Path(out)
    started = time.perf_counter()
    images = {name: image_ref_from_pil(_draw(name), out / "images") for name in ("balls", "balls_swapped", "sign")}
    prompts = {"balls": PROMPT_BALLS, "balls_swapped": PROMPT_BALLS, "sign": PROMPT_SIGN}
    requests = [CritiqueRequest(prompt=prompts[n], image=images[n]) for n in images]
    critics = {"tiny-qwen2-vl (in-process, random weights)": None, "fake critic (deterministic)": FakeRewardModel()}
    results: dict[str, list[Critique | Abstention]] = {}
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("critiquing", total=len(critics))
        for name, critic in critics.items():
            if critic is None:
                critic = TransformersRewardModel(save_tiny_vlm(out / "tiny-critic"), max_new_tokens=64, temperature=0.0)
            results[name] = run_sync(critic.critique(requests))
            bar.advance(task)
    pair = run_sync(
        FakeRewardModel().compare([CompareRequest(prompt=PROMPT_BALLS, image_a=images["balls"], image_b=images["balls_swapped"])])
    )[0]

    rows = []
    for critic_name, critic_results in results.items():
        for image_name, result in zip(images, critic_results, strict=True):
            row: dict[str, Any] = {"critic": critic_name, "image": image_name, "prompt": prompts[image_name]}
            if isinstance(result, Abstention):
                row |= {"outcome": f"abstained ({result.reason})", "reward": None, "raw_text": result.raw_text[:120]}
            else:
                row |= {"outcome": "critique", "scores": result.scores, "reward": reward_or_none(result),
                        "refined_request": result.refined_request}
            rows.append(row)
    abstentions = sum(1 for r in rows if r["reward"] is None)
    summary = {
        "out": str(out),
        "images": len(images),
        "critiques": len(rows),
        "abstentions": abstentions,
        "pairwise_preferred": pair.preferred if not isinstance(pair, Abstention) else None,
        "seconds": round(time.perf_counter() - started, 2),
        "rows": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    (out / "report.md").write_text(_report(summary, images))
    summary["text"] = (
        f"Rendered {len(images)} images and critiqued each with {len(critics)} critics on the CPU in {summary['seconds']} s.\n"
        f"{len(rows) - abstentions} critiques parsed into typed scores; {abstentions} honest abstentions "
        "(the tiny random Qwen2-VL writes noise, so it abstains instead of scoring).\n"
        f"Pairwise (fake critic; its scores are a hash, not a judgement) preferred image "
        f"{summary['pairwise_preferred']} for {PROMPT_BALLS!r}.\n"
        f"Report: {out / 'report.md'}  Data: {out / 'results.json'}"
    )
    return summary


def _report(summary: dict[str, Any], images: dict[str, Any]) -> str:
    lines = [
        "# rationalrewards demo: critiques on the CPU",
        "",
        "Each image was critiqued by a tiny random Qwen2-VL running in-process (real model code, random weights) and "
        "by the deterministic fake critic (real text format, real parser; its scores are a hash of prompt and image, "
        "so they show the data path, not a judgement). A critic that cannot produce a readable "
        "critique abstains; no score is ever invented.",
        "",
        "| image | critic | outcome | scores | reward |",
        "|---|---|---|---|---|",
    ]
    for row in summary["rows"]:
        image = Path(images[row["image"]].uri).relative_to(Path(summary["out"]).resolve())
        scores = ", ".join(f"{k}={'N/A' if v is None else v}" for k, v in row.get("scores", {}).items())
        reward = "-" if row["reward"] is None else f"{row['reward']:.3f}"
        lines.append(f"| ![{row['image']}]({image}) | {row['critic']} | {row['outcome']} | {scores} | {reward} |")
    lines += ["", f"Pairwise preference (fake critic, balls vs swapped balls): **{summary['pairwise_preferred']}**", ""]
    return "\n".join(lines)
