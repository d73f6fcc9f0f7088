"""Train the 32-pixel sketch generator (`sketch.flow.SketchFlowPipeline`) on small-world renders.

    rationalrewards experiment train-sketch-generator --out DIR [--budget-minutes M] [--seed S] [--json]

Data: every training prompt of the small world (`sketch.small_world`: 10 colours x 8 classes x counts 1-4,
colour-class pairs split into training and held out) drawn in `per_prompt` layouts, rendered once. Each step reads a
prompt in GenEval's phrasing or, with `explicit_share`, in the explicit phrasing a refined request uses ("an image of
exactly 3 cars colored red"), so the generator follows Generate-Critique-Refine's rewrites; `guidance_dropout` of the
prompts are empty (classifier-free guidance).

Training: rectified flow as SD3 trains it (noise levels from a logit-normal, velocity target eps - x0, mean squared
error), AdamW with warm-up, an exponential moving average of the weights (what is saved and sampled), for a time
budget. A checkpoint of the whole training state is written every `checkpoint_minutes` and training resumes from it,
so a killed run loses minutes, not the run.

Evaluation: held-out and training prompts drawn with fresh seeds and read by the pixel perception
(`sketch.pixels`): colour accuracy, count accuracy (by count asked), both together, the mean count drawn and
the foreground share. A contact sheet of held-out prompts shows what the numbers mean.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import structlog
import torch

from rationalrewards.experiments.settings import GeneratorSettings
from rationalrewards.sketch.small_world import SmallPrompt, render_small, small_scene, split_prompts

log = structlog.get_logger(__name__)

PIPELINE_DIR = "pipeline"
STATE_FILE = "train_state.pt"
QUALITY_SUFFIX = ", clean and sharp, every object fully inside the frame"  # what the oracle's refined request adds


def phrasings(prompt: SmallPrompt) -> tuple[str, str]:
    """(GenEval phrasing, explicit phrasing) of a small-world prompt."""
    from rationalrewards.sketch import parse_scene_spec, render_prompt

    return prompt.text, render_prompt(parse_scene_spec(prompt.text), explicit=True)


def vocabulary() -> list[str]:
    """Every word the small world's prompts use, in both phrasings and with the quality suffix."""
    from rationalrewards.sketch.flow import prompt_vocabulary
    from rationalrewards.sketch.small_world import all_prompts

    texts = [text for prompt in all_prompts() for text in phrasings(prompt)]
    return prompt_vocabulary([*texts, QUALITY_SUFFIX])


def render_dataset(prompts: list[SmallPrompt], per_prompt: int, seed: int) -> tuple[torch.Tensor, list[int]]:
    """(images as uint8 N x 3 x 32 x 32, the prompt index of each): `per_prompt` layouts per prompt."""
    from tqdm.auto import tqdm

    images, owners = [], []
    for index, prompt in enumerate(tqdm(prompts, desc="rendering", unit="prompt", leave=False)):
        for k in range(per_prompt):
            scene = small_scene(prompt, seed * 1_000_003 + k)
            images.append(np.asarray(render_small(scene)).transpose(2, 0, 1))
            owners.append(index)
    return torch.from_numpy(np.stack(images)), owners


class _Trainer:
    def __init__(self, out: Path, settings: GeneratorSettings) -> None:
        from rationalrewards.sketch.flow import build_sketch_flow_pipeline

        self.out, self.settings = out, settings
        torch.set_num_threads(settings.threads)
        self.train_prompts, self.held_prompts = split_prompts(settings.held_out_share, settings.split_seed)
        self.texts = [phrasings(p) for p in self.train_prompts]
        self.pipe = build_sketch_flow_pipeline(vocabulary(), seed=settings.seed)
        self.modules = torch.nn.ModuleDict({"unet": self.pipe.unet, "text_encoder": self.pipe.text_encoder})
        self.ema = {k: v.detach().clone() for k, v in self.modules.state_dict().items()}
        self.optimizer = torch.optim.AdamW(self.modules.parameters(), lr=settings.learning_rate, weight_decay=0.0)
        self.step, self.seconds = 0, 0.0
        self.losses: list[tuple[int, float]] = []
        self.rng = torch.Generator().manual_seed(settings.seed)
        self.choice = random.Random(f"generator-prompts:{settings.seed}")

    # -- state --
    def save_state(self) -> None:
        state = {
            "step": self.step,
            "seconds": self.seconds,
            "losses": self.losses,
            "modules": self.modules.state_dict(),
            "ema": self.ema,
            "optimizer": self.optimizer.state_dict(),
            "rng": self.rng.get_state(),
            "choice": self.choice.getstate(),
            "settings": asdict(self.settings),
        }
        partial = self.out / (STATE_FILE + ".partial")
        torch.save(state, partial)
        partial.replace(self.out / STATE_FILE)

    def resume(self) -> bool:
        path = self.out / STATE_FILE
        if not path.is_file():
            return False
        import pickle

        try:  # tensors, numbers and containers only: a planted file cannot run code when it is read
            state = torch.load(path, weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as e:
            raise ValueError(
                f"cannot resume from {path}: not a training state this code wrote ({type(e).__name__}); "
                "move it away to start afresh"
            ) from e
        self.modules.load_state_dict(state["modules"])
        self.ema = state["ema"]
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.set_state(state["rng"])
        self.choice.setstate(state["choice"])
        self.step, self.seconds, self.losses = state["step"], state["seconds"], state["losses"]
        log.info("generator.resumed", step=self.step, minutes=round(self.seconds / 60, 1))
        return True

    # -- training --
    def _prompt_text(self, index: int) -> str:
        s = self.settings
        if self.choice.random() < s.guidance_dropout:
            return ""
        geneval, explicit = self.texts[index]
        text = explicit if self.choice.random() < s.explicit_share else geneval
        return text + QUALITY_SUFFIX if self.choice.random() < s.quality_suffix_share else text

    def _lr(self) -> float:
        warm = min(1.0, (self.step + 1) / max(1, self.settings.warmup_steps))
        return self.settings.learning_rate * warm

    def _update_ema(self) -> None:
        decay = min(self.settings.ema_max_decay, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for key, value in self.modules.state_dict().items():
                if value.dtype.is_floating_point:
                    self.ema[key].mul_(decay).add_(value.detach(), alpha=1 - decay)
                else:
                    self.ema[key].copy_(value)

    def train_step(self, images: torch.Tensor, owners: list[int]) -> float:
        s = self.settings
        batch = torch.randint(len(images), (s.batch_size,), generator=self.rng)
        x0 = images[batch].float() / 127.5 - 1
        noise = torch.randn(x0.shape, generator=self.rng)
        sigma = torch.sigmoid(torch.randn(s.batch_size, generator=self.rng))  # logit-normal, as SD3 trains
        noisy = (1 - sigma)[:, None, None, None] * x0 + sigma[:, None, None, None] * noise
        states = self.pipe.encode_prompt([self._prompt_text(owners[int(i)]) for i in batch])
        loss = torch.nn.functional.mse_loss(self.pipe.velocity(noisy, sigma, states), noise - x0)
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.modules.parameters(), 1.0)
        self.optimizer.step()
        self.step += 1
        self._update_ema()
        return float(loss.detach())

    def train(self) -> None:
        from tqdm.auto import tqdm

        s = self.settings
        images, owners = render_dataset(self.train_prompts, s.per_prompt, s.seed)
        budget = s.budget_minutes * 60
        last_save = time.monotonic()
        bar = tqdm(total=round(budget), initial=round(self.seconds), desc="training", unit="s", leave=False)
        self.modules.train()
        while self.seconds < budget and (s.max_steps is None or self.step < s.max_steps):
            started = time.monotonic()
            loss = self.train_step(images, owners)
            spent = time.monotonic() - started
            self.seconds += spent
            bar.update(round(self.seconds) - bar.n)
            if self.step % 50 == 0 or self.step == 1:
                self.losses.append((self.step, round(loss, 5)))
                bar.set_postfix(step=self.step, loss=f"{loss:.4f}")
            if time.monotonic() - last_save > s.checkpoint_minutes * 60:
                self.save_state()
                last_save = time.monotonic()
        bar.close()
        self.save_state()

    def export(self) -> Path:
        """The moving-average weights as a diffusers pipeline directory (safetensors)."""
        self.modules.load_state_dict(self.ema)
        self.modules.eval()
        target = self.out / PIPELINE_DIR
        partial = self.out / (PIPELINE_DIR + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        self.pipe.save_pretrained(partial, safe_serialization=True)
        (partial / "small_world_split.json").write_text(
            json.dumps(
                {
                    "held_out_share": self.settings.held_out_share,
                    "split_seed": self.settings.split_seed,
                    "held_out": sorted({f"{p.color} {p.cls}" for p in self.held_prompts}),
                },
                indent=1,
            )
        )
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        return target


# ------------------------------------------------------------------ evaluation ----------------------------------------


def generate(
    pipe: Any, prompts: list[str], seeds: list[int], *, steps: int, guidance_scale: float, batch_size: int = 64
) -> list[object]:
    """Images for (prompt, seed) pairs, one generator per image, in batches."""
    images: list[object] = []
    for start in range(0, len(prompts), batch_size):
        chunk = slice(start, start + batch_size)
        generators = [torch.Generator().manual_seed(seed) for seed in seeds[chunk]]
        images += pipe(
            prompts[chunk], num_inference_steps=steps, guidance_scale=guidance_scale, generator=generators
        ).images
    return images


def judge_images(prompts: list[SmallPrompt], images: list[Any]) -> dict[str, object]:
    """Ground truth for generated images, read by the pixel perception: colour right (every object drawn in the
    asked colour), count right, both (each with its 95% bootstrap interval over images); per count asked; mean count
    drawn and foreground share."""
    from rationalrewards.experiments._common import bootstrap_interval
    from rationalrewards.sketch.pixels import perceive_pixels

    rows = []
    for prompt, image in zip(prompts, images, strict=True):
        seen = perceive_pixels(image)
        color_ok = bool(seen.blobs) and all(b.color == prompt.color for b in seen.blobs)
        count_ok = len(seen.blobs) == prompt.count
        rows.append((prompt.count, color_ok, count_ok, len(seen.blobs), sum(b.area for b in seen.blobs)))
    n = len(rows)

    def share(values: list[bool]) -> float:
        return round(sum(values) / max(1, len(values)), 4)

    def interval(values: list[bool]) -> list[float] | None:
        bounds = bootstrap_interval([int(v) for v in values])
        return None if bounds is None else [round(bounds[0], 4), round(bounds[1], 4)]

    canvas = images[0].size[0] * images[0].size[1] if images else 1
    colour, count, both = [r[1] for r in rows], [r[2] for r in rows], [r[1] and r[2] for r in rows]
    return {
        "images": n,
        "color_accuracy": share(colour),
        "color_accuracy_ci95": interval(colour),
        "count_accuracy": share(count),
        "count_accuracy_ci95": interval(count),
        "accuracy": share(both),
        "accuracy_ci95": interval(both),
        "count_accuracy_by_count": {
            str(c): share([r[2] for r in rows if r[0] == c]) for c in sorted({r[0] for r in rows})
        },
        "mean_count_asked": round(sum(r[0] for r in rows) / max(1, n), 3),
        "mean_count_drawn": round(sum(r[3] for r in rows) / max(1, n), 3),
        "foreground_share": round(sum(r[4] for r in rows) / max(1, n) / canvas, 4),
    }


def evaluate_generator(
    pipe: Any, prompts: list[SmallPrompt], *, seeds: int, steps: int, guidance_scale: float, seed_base: int = 10_000
) -> tuple[dict[str, object], list[Any]]:
    expanded = [p for p in prompts for _ in range(seeds)]
    seed_list = [seed_base + k for _ in prompts for k in range(seeds)]
    images = generate(pipe, [p.text for p in expanded], seed_list, steps=steps, guidance_scale=guidance_scale)
    return judge_images(expanded, images), images


def contact_sheet(images: list[Any], columns: int, path: Path, scale: int = 3) -> Path:
    """A grid of images, scaled up without smoothing (pixels stay pixels)."""
    from PIL import Image

    size = images[0].size[0]
    rows = math.ceil(len(images) / columns)
    sheet = Image.new("RGB", (columns * (size + 2), rows * (size + 2)), (255, 255, 255))
    for k, image in enumerate(images):
        sheet.paste(image, ((k % columns) * (size + 2), (k // columns) * (size + 2)))
    sheet = sheet.resize((sheet.width * scale, sheet.height * scale), Image.Resampling.NEAREST)
    sheet.save(path)
    return path


def train_sketch_generator(out: str | Path, settings: GeneratorSettings | None = None) -> dict[str, object]:
    """Train (or resume) into `out`, export `out/pipeline`, evaluate; writes `out/report.json` and
    `out/held_out_sheet.png`. Returns the report; the paths in it are relative to `out`, so a report that travels (the
    shipped weights' `training_report.json`) names no machine's folders."""
    settings = settings or GeneratorSettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    trainer = _Trainer(out, settings)
    trainer.resume()
    trainer.train()
    pipeline_dir = trainer.export()
    evaluation = {}
    sheet_images: list[Any] = []
    for name, prompts in (("held_out", trainer.held_prompts), ("train", trainer.train_prompts)):
        figures, images = evaluate_generator(
            trainer.pipe,
            prompts[: settings.eval_prompts],
            seeds=settings.eval_seeds,
            steps=settings.sample_steps,
            guidance_scale=settings.guidance_scale,
        )
        evaluation[name] = figures
        if name == "held_out":
            sheet_images = images
    sheet = contact_sheet(sheet_images[: 16 * 8], 16, out / "held_out_sheet.png")
    parameters = sum(p.numel() for p in trainer.modules.parameters())
    report = {
        "settings": asdict(settings),
        "pipeline": pipeline_dir.relative_to(out).as_posix(),
        "parameters": parameters,
        "steps": trainer.step,
        "train_minutes": round(trainer.seconds / 60, 2),
        "images_per_second": round(trainer.step * settings.batch_size / max(trainer.seconds, 1e-9), 1),
        "loss_curve": trainer.losses,
        "prompts": {"train": len(trainer.train_prompts), "held_out": len(trainer.held_prompts)},
        "evaluation": evaluation,
        "sheet": sheet.relative_to(out).as_posix(),
    }
    (out / "report.json").write_text(json.dumps(report, indent=1))
    return report


__all__ = [
    "GeneratorSettings",
    "evaluate_generator",
    "judge_images",
    "train_sketch_generator",
    "vocabulary",
]
