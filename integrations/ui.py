"""`rationalrewards ui`: an interactive page (Gradio, the `[ui]` extra) to watch Generate-Critique-Refine work.

Why Gradio: it is what people who judge a critic by trying it already use (the peers' demo pages are Gradio), it
streams a Python generator's results to the page as they come, and it serves on loopback with no set-up. The page
holds no logic of its own: each run is the same GCR graph the CLI runs, streamed (`astream`), so every round
appears as soon as it is critiqued.

Tabs:
- Refine: a prompt (or, for an edit, an uploaded image or a source prompt to generate it from, and the instruction),
  a generator, a critic and a preset; each round's candidates appear with their reward, and the latest critique
  (scores, justifications, refined request) beside them.
- Critique: an uploaded image and its prompt, judged on its own.
It runs on the sketch world with no set-up: the sketch generator and oracle are the defaults. The sketch critic judges
only images the sketch generator made (it abstains on others, and says so).
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from rationalrewards.agents.critic_tool import critique_json
from rationalrewards.agents.factory import generator_from_spec, reward_model_from_spec
from rationalrewards.agents.specs import WorldBackend, parse_spec
from rationalrewards.graphs.gcr import GCRContext, build_gcr_graph
from rationalrewards.graphs.gcr_config import PRESETS, GCRConfig
from rationalrewards.graphs.state import GCRInput, critique_of, image_ref_dict
from rationalrewards.rewardmodel.errors import RewardModelError
from rationalrewards.rewardmodel.images import as_image_ref, load_pil
from rationalrewards.rewardmodel.schemas import CritiqueRequest, Task

GENERATORS = ("sketch", "sketch-flow")
CRITICS = ("sketch", "sketch-pixels", "fake")


@lru_cache(maxsize=8)
def backends(generator: str, critic: str, work_dir: str) -> GCRContext:
    """One set of backends per (generator, critic): runs share them, as a server's requests do."""
    images = Path(work_dir) / "images"
    spec = parse_spec(critic, "critic")
    options: dict[str, Any] = {"image_dirs": [images]} if isinstance(spec, WorldBackend) else {}
    return GCRContext(generator=generator_from_spec(generator, images), critic=reward_model_from_spec(spec, **options))


def critique_markdown(entry: dict[str, Any] | None) -> str:
    """A critique entry of the graph's state as Markdown: scores, justifications, refined request."""
    if not entry:
        return ""
    critique = critique_of(entry)
    if critique is None:
        abstention = entry.get("abstention") or {}
        return f"**The critic abstained** ({abstention.get('reason')}): {abstention.get('detail', '')}"
    lines = ["| aspect | score | why |", "|---|---|---|"]
    for aspect, assessment in critique.assessments.items():
        score = "N/A" if assessment.score is None else f"{assessment.score:g}"
        why = assessment.justification.replace("|", "/").replace("\n", " ")
        lines.append(f"| {aspect.value.replace('_', ' ')} | {score} | {why} |")
    reward = entry.get("reward")
    lines.append(
        f"\nreward **{reward:.3f}**" if isinstance(reward, float) else "\nno reward (nothing the policy scores)"
    )
    if critique.refined_request:
        lines.append(f"\n**refined request:** {critique.refined_request}")
    return "\n".join(lines)


def _order(candidate: dict[str, Any]) -> tuple[int, int]:
    return candidate["round"], candidate["candidate"]


def gallery(state: dict[str, Any]) -> list[tuple[str, str]]:
    """Every candidate so far as (image path, caption), in order, the kept one marked."""
    best = (state.get("best") or {}).get("key")
    shown = []
    for key, candidate in sorted(state.get("candidates", {}).items(), key=lambda kv: _order(kv[1])):
        entry = state.get("critiques", {}).get(key) or {}
        reward = entry.get("reward")
        scored = f"{reward:.2f}" if isinstance(reward, float) else "not scored"
        caption = f"round {candidate['round']} · {scored}"
        shown.append((candidate["image"]["uri"].removeprefix("file://"), caption + (" · kept" if key == best else "")))
    return shown


async def refine_stream(
    prompt: str,
    generator: str,
    critic: str,
    preset: str,
    seed: float,
    source_upload: str | None,
    source_prompt: str,
    work_dir: str,
) -> AsyncIterator[tuple[list[tuple[str, str]], str, str]]:
    """(gallery, latest critique, status) after every step of one GCR run."""
    if not prompt or not prompt.strip():
        yield [], "", "Type a prompt (for an edit: the instruction)."
        return
    shown: list[tuple[str, str]] = []
    latest = ""
    try:
        context = backends(generator, critic, work_dir)
        inputs = GCRInput(prompt=prompt.strip(), seed=int(seed or 0))
        if source_upload:
            inputs["source_image"] = image_ref_dict(as_image_ref(Path(source_upload)))
        elif source_prompt and source_prompt.strip():
            [made] = await context.generator.generate([source_prompt.strip()], [int(seed or 0)])
            inputs["source_image"] = image_ref_dict(made.image)
        graph = build_gcr_graph(GCRConfig.preset(preset))
        async for state in graph.astream(inputs, context=context, stream_mode="values"):
            critiques = state.get("critiques", {})
            if critiques:  # the kept image's critique once there is one, else the latest
                kept = (state.get("best") or {}).get("key")
                key = kept if kept in critiques else max(critiques, key=lambda k: _order(state["candidates"][k]))
                heading = "kept image" if key == kept else "latest"
                latest = f"### {heading}: round {state['candidates'][key]['round']}\n" + critique_markdown(
                    critiques[key]
                )
            stopped = f" · stopped: **{state['stop_reason']}**" if state.get("stop_reason") else ""
            shown = gallery(state)
            yield shown, latest, f"{len(state.get('rounds', []))} round(s) done{stopped}"
    except (ValueError, OSError, RewardModelError) as e:  # a backend spec, an upload, a request the world cannot read
        yield shown, latest, f"**Stopped:** {e}"


async def critique_upload(image: str | None, prompt: str, critic: str, work_dir: str) -> str:
    if not image or not prompt or not prompt.strip():
        return "Upload an image and type the request it was made for."
    context = backends(GENERATORS[0], critic, work_dir)
    ref = as_image_ref(Path(image))
    load_pil(ref)  # the intake's checks, with a clear message on a bad file
    [answer] = await context.critic.critique([CritiqueRequest(task=Task.t2i, prompt=prompt.strip(), image=ref)])
    shown = critique_json(answer)
    if shown.get("kind") == "abstention":
        return f"**The critic abstained** ({shown.get('reason')}): {shown.get('detail')}"
    entry = {"critique": answer.model_dump(mode="json"), "abstention": None, "reward": shown.get("reward")}
    return critique_markdown(entry)


def build_app(work_dir: str | Path | None = None) -> Any:
    """The Gradio Blocks app (call `.launch()`, or mount it)."""
    import gradio as gr

    work = str(work_dir or Path(tempfile.gettempdir()) / "rationalrewards-ui")
    with gr.Blocks(title="rationalrewards") as app:
        gr.Markdown(
            "# rationalrewards: Generate-Critique-Refine\nA critic writes a critique before it scores; the critique drives the next round."
        )
        with gr.Tab("Refine"):
            with gr.Row():
                prompt = gr.Textbox(
                    label="Prompt (for an edit: the instruction)", value="a photo of four clocks", scale=3
                )
                seed = gr.Number(label="Seed", value=1, precision=0, scale=1)
            with gr.Row():
                generator = gr.Dropdown(
                    list(GENERATORS), value=GENERATORS[0], label="Generator", allow_custom_value=True
                )
                critic = gr.Dropdown(
                    list(CRITICS), value=CRITICS[0], label="Critic (or a critic URL)", allow_custom_value=True
                )
                preset = gr.Radio(list(PRESETS), value="deep", label="Preset")
            with gr.Accordion("Edit an image instead", open=False):
                source_upload = gr.Image(type="filepath", label="Source image (upload)")
                source_prompt = gr.Textbox(label="...or generate the source from this prompt", value="")
            run = gr.Button("Refine", variant="primary", elem_id="refine")
            status = gr.Markdown(elem_id="status")
            with gr.Row():
                images = gr.Gallery(label="Rounds", columns=4, height=360, elem_id="rounds")
                critique = gr.Markdown(elem_id="critique")
            folder = gr.State(work)
            run.click(
                refine_stream,
                [prompt, generator, critic, preset, seed, source_upload, source_prompt, folder],
                [images, critique, status],
                api_name="refine",
            )
        with gr.Tab("Critique"):
            upload = gr.Image(type="filepath", label="Image")
            asked = gr.Textbox(label="The request it was made for")
            judge_with = gr.Dropdown(list(CRITICS), value=CRITICS[0], label="Critic", allow_custom_value=True)
            judged = gr.Markdown()
            gr.Button("Critique").click(
                critique_upload, [upload, asked, judge_with, folder], judged, api_name="critique"
            )
    return app


__all__ = ["build_app", "critique_markdown", "gallery", "refine_stream"]
