"""The `rationalrewards` command line: a thin typer layer over importable functions. Nothing imports this module.

Every command takes `--json` (one JSON object on stdout; logs go to stderr). Typed errors exit with code 2 and a
one-line message, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rationalrewards.rewardmodel.errors import RewardModelError

app = typer.Typer(
    name="rationalrewards",
    help="Reasoning reward models for image generation: critique and compare images, run Generate-Critique-Refine "
    "(refine, demo, report), make critic training data with PARROT, serve a critic, and use the sketch world.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
CriticOption = Annotated[
    str,
    typer.Option(
        "--critic",
        help="'sketch' (the sketch world's oracle; needs the image's .scene.json sidecar), 'fake', "
        "an http(s):// OpenAI-compatible URL, or a local model directory.",
    ),
]
ModelOption = Annotated[Optional[str], typer.Option("--model", help="Served model name (default: the server's first).")]


@app.callback()
def _main(
    log_json: Annotated[bool, typer.Option("--log-json", help="Log JSON lines to stderr.")] = False,
    log_level: Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")] = "WARNING",
) -> None:
    from rationalrewards.rewardmodel.logs import configure_logging

    configure_logging(json=log_json, level=log_level)


def _friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (RewardModelError, ValueError, OSError) as e:
            err.print(f"[bold red]error:[/] {escape(str(e))}")  # messages may hold brackets: not rich markup
            raise typer.Exit(2) from e

    return wrapper


def _emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")


def _exit_if_abstained(result: dict[str, Any]) -> None:
    """An abstention is an answer, not a crash: say why on stderr and exit 1 (2 is for bad input)."""
    if result["kind"] == "abstention":
        err.print(f"[yellow]the critic abstained ({result['reason']}):[/] {escape(str(result['detail']))}")
        raise typer.Exit(1)


def _score_table(title: str, rows: list[tuple[str, str, str]]) -> Table:
    table = Table(title=title, show_lines=False)
    table.add_column("aspect")
    table.add_column("score", justify="right")
    table.add_column("justification", overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


@app.command()
@_friendly_errors
def critique(
    image: Annotated[Path, typer.Argument(help="The generated (or edited) image.")],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="The request the image was made for.")],
    source: Annotated[
        Optional[Path], typer.Option("--source", help="Source image: makes this an edit critique.")
    ] = None,
    critic: CriticOption = "sketch",
    model: ModelOption = None,
    refine: Annotated[bool, typer.Option(help="Ask for the refinement section.")] = True,
    policy: Annotated[str, typer.Option(help="Reward policy: paper, edit_rl_release or all.")] = "paper",
    as_json: JsonFlag = False,
) -> None:
    """Critique one image: per-aspect justifications and 1-4 scores, a reward, and a refined request."""
    from rationalrewards.agents.api import critique_image
    from rationalrewards.rewardmodel.scoring import check_policy

    result = critique_image(
        image, prompt, source=source, critic=critic, model=model, refine=refine, policy=check_policy(policy)
    )
    if as_json:
        _emit(result)
        return
    _exit_if_abstained(result)
    rows = [(a, "N/A" if s is None else f"{s:g}", result["justifications"][a]) for a, s in result["scores"].items()]
    Console().print(_score_table(f"critique of {image.name}", rows))
    Console().print(f"reward ({policy}): {result['reward']:.3f}")
    if result["refined_request"]:
        Console().print(f"refined request: {result['refined_request']}")


@app.command()
@_friendly_errors
def compare(
    image_a: Annotated[Path, typer.Argument(help="Image A.")],
    image_b: Annotated[Path, typer.Argument(help="Image B.")],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="The request both images were made for.")],
    source: Annotated[
        Optional[Path], typer.Option("--source", help="Source image: makes this an edit comparison.")
    ] = None,
    critic: CriticOption = "sketch",
    model: ModelOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Compare two images for one request; the summed per-aspect scores decide the preferred one."""
    from rationalrewards.agents.api import compare_images

    result = compare_images(image_a, image_b, prompt, source=source, critic=critic, model=model)
    if as_json:
        _emit(result)
        return
    _exit_if_abstained(result)
    table = Table(title="pairwise judgement")
    for column in ("aspect", "A", "B"):
        table.add_column(column)
    for aspect in result["scores_a"]:
        a, b = result["scores_a"][aspect], result["scores_b"][aspect]
        table.add_row(aspect, "N/A" if a is None else f"{a:g}", "N/A" if b is None else f"{b:g}")
    Console().print(table)
    Console().print(f"preferred: {result['preferred']}")


@app.command()
@_friendly_errors
def serve(
    checkpoint: Annotated[str, typer.Argument(help="Checkpoint directory or hub id for vLLM.")],
    name: Annotated[str, typer.Option("--served-model-name", help="Name clients send as `model`.")] = "rationalrewards",
    port: Annotated[int, typer.Option(help="Port (the release used 6868).")] = 6868,
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    data_parallel: Annotated[int, typer.Option("--data-parallel", help="vLLM data-parallel replicas.")] = 1,
    tensor_parallel: Annotated[int, typer.Option("--tensor-parallel", help="vLLM tensor-parallel size.")] = 1,
    log_file: Annotated[Path, typer.Option(help="Where the server's output goes.")] = Path("vllm-serve.log"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the command instead of running it.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Serve a critic with `vllm serve` and the paper's flags (GPU machines; needs the `serve` extra with vLLM)."""
    from rationalrewards.rewardmodel.serve import ServeConfig, command_line, launch

    config = ServeConfig(
        checkpoint=checkpoint,
        served_model_name=name,
        port=port,
        host=host,
        data_parallel_size=data_parallel,
        tensor_parallel_size=tensor_parallel,
    )
    if dry_run:
        _emit({"command": command_line(config), "base_url": config.base_url}) if as_json else print(
            command_line(config)
        )
        return
    server = launch(config, log_file)
    err.print(f"serving {checkpoint} as {name!r} at {config.base_url} (log: {log_file}); Ctrl-C stops it")
    try:
        server.process.wait()
    except KeyboardInterrupt:
        server.stop()


@app.command()
@_friendly_errors
def tiny(
    directory: Annotated[Path, typer.Argument(help="Where to save the model directory.")],
    family: Annotated[str, typer.Option(help="qwen2_vl, qwen2_5_vl or qwen3_vl.")] = "qwen2_vl",
    seed: Annotated[int, typer.Option(help="Weight seed.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Build a tiny random Qwen-VL critic from config (for testing pipelines offline; its critiques are noise)."""
    from rationalrewards.rewardmodel.tiny import FAMILIES, save_tiny_vlm

    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    path = save_tiny_vlm(directory, family, seed)  # type: ignore[arg-type]
    _emit({"directory": str(path), "family": family}) if as_json else print(f"saved a tiny {family} critic to {path}")


@app.command()
@_friendly_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="Directory for the two runs and their reports.")] = Path(
        "demo_out"
    ),
    as_json: JsonFlag = False,
) -> None:
    """The main job on the embedded default: the built-in sketch suite through the paper and deep GCR presets.

    With --json: both presets under "paper" and "deep"; the top-level figures (n, reward_initial, reward_final,
    accuracy_initial, accuracy_final, per_tag, report) are the deep run's."""
    from rationalrewards.graphs.jobs import demo_job, demo_table

    summary = demo_job(out, progress=not as_json)
    _emit(summary) if as_json else print(demo_table(summary))


@app.command()
@_friendly_errors
def refine(
    prompt: Annotated[Optional[str], typer.Argument(help="One prompt (or use --suite).")] = None,
    suite: Annotated[
        Optional[Path],
        typer.Option("--suite", help="JSONL suite: one prompt per line (GenEval fields = ground truth)."),
    ] = None,
    source: Annotated[
        Optional[Path], typer.Option("--source", help="Source image: PROMPT is then an edit instruction.")
    ] = None,
    generator: Annotated[str, typer.Option(help="'sketch' or a local diffusers pipeline directory.")] = "sketch",
    critic: CriticOption = "sketch",
    model: ModelOption = None,
    refiner: Annotated[
        str, typer.Option(help="'critic' (the critique's refined request), 'llm:<URL>' or 'llm:<DIR>'.")
    ] = "critic",
    refiner_model: Annotated[
        Optional[str], typer.Option("--refiner-model", help="Model name for an llm:<URL> refiner.")
    ] = None,
    preset: Annotated[
        str, typer.Option(help="paper (the published protocol) or deep (rounds, best-of-N, re-scoring).")
    ] = "paper",
    rounds: Annotated[Optional[int], typer.Option(help="Generation rounds, the first included.")] = None,
    candidates: Annotated[Optional[int], typer.Option(help="Images per round (best-of-N).")] = None,
    threshold: Annotated[
        Optional[float], typer.Option(help="Every active aspect at or above this passes (1-4).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Base seed for a single prompt.")] = 0,
    concurrency: Annotated[int, typer.Option(help="Prompts in flight at once.")] = 8,
    device: Annotated[str, typer.Option(help="Device for a diffusers generator (cpu, cuda, cuda:1).")] = "cpu",
    grader: Annotated[
        str, typer.Option(help="Ground truth: auto (sketch grader for the sketch generator), sketch or none.")
    ] = "auto",
    out: Annotated[Path, typer.Option("--out", help="Run directory (rerun the same command to resume).")] = Path(
        "runs/refine"
    ),
    force_new: Annotated[
        bool,
        typer.Option(
            "--force-new", help="If --out holds a run with other inputs, move it into archive/ and start afresh."
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Generate, critique and refine: one prompt or a suite, with a resumable run directory and an HTML report."""
    from rationalrewards.agents.suite import SuiteRow, read_suite
    from rationalrewards.graphs.jobs import RefineJob, refine_job

    if (prompt is None) == (suite is None):
        raise ValueError("give either a PROMPT or --suite FILE")
    if suite is not None:
        rows = read_suite(suite)
    else:
        source_path = str(source.resolve()) if source is not None else None
        rows = [SuiteRow(prompt=prompt or "", seed=seed, source_image=source_path)]
    job = RefineJob(
        rows=rows,
        out=out,
        generator=generator,
        critic=critic,
        critic_model=model,
        refiner=refiner,
        refiner_model=refiner_model,
        preset=preset,
        rounds=rounds,
        candidates=candidates,
        threshold=threshold,
        concurrency=concurrency,
        device=device,
        grader=grader,
        progress=not as_json,
        force_new=force_new,
    )
    summary = refine_job(job)
    if as_json:
        _emit(summary)
        return
    print(
        f"{summary['finished']}/{summary['n']} prompts finished ({summary['failed']} failed); "
        f"reward {summary['reward_initial']} -> {summary['reward_final']}"
    )
    if "accuracy_initial" in summary:
        print(f"ground-truth accuracy {summary['accuracy_initial']} -> {summary['accuracy_final']}")
    print(f"report: {summary['report']}")


@app.command()
@_friendly_errors
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `refine` or `demo`.")],
    as_json: JsonFlag = False,
) -> None:
    """Re-render a run's HTML report from its results."""
    from rationalrewards.graphs.report import write_report

    if not (run_dir / "run.json").exists():
        raise ValueError(f"{run_dir} is not a run directory (no run.json)")
    path = write_report(run_dir)
    _emit({"report": str(path)}) if as_json else print(f"wrote {path}")


@app.command()
@_friendly_errors
def parrot(
    out: Annotated[Path, typer.Option("--out", help="Output directory (rerun the same command to resume).")],
    pairs: Annotated[
        Optional[Path], typer.Option("--pairs", help="Preference pairs: JSONL, Parquet or a saved datasets directory.")
    ] = None,
    teacher: Annotated[
        str, typer.Option(help="'sketch', an http(s):// OpenAI-compatible URL, or a local VLM directory.")
    ] = "sketch",
    teacher_model: Annotated[
        Optional[str], typer.Option("--teacher-model", help="Served model name of an HTTP teacher.")
    ] = None,
    filter_: Annotated[str, typer.Option("--filter", help="repredict (the paper), scores, or both.")] = "repredict",
    text_only_filter: Annotated[
        bool, typer.Option("--text-only-filter", help="Re-predict from the rationale alone, without images.")
    ] = False,
    retries: Annotated[int, typer.Option(help="New anchored samples after a rejection (0 in the paper).")] = 0,
    swap: Annotated[bool, typer.Option("--swap-augment", help="Also run every pair with A and B swapped.")] = False,
    concurrency: Annotated[int, typer.Option(help="Pairs in flight against the teacher.")] = 16,
    world: Annotated[
        Optional[str], typer.Option("--world", help="'sketch': make ground-truth preference pairs first.")
    ] = None,
    pairs_count: Annotated[
        int, typer.Option("--pairs-count", help="Prompts (one pair each) for --world sketch.")
    ] = 200,
    teacher_noise: Annotated[float, typer.Option("--teacher-noise", help="Sketch teacher's hallucination rate.")] = 0.0,
    perception_noise: Annotated[
        float, typer.Option("--perception-noise", help="Sketch teacher's perception noise.")
    ] = 0.0,
    label_noise: Annotated[float, typer.Option("--label-noise", help="Flip this share of sketch-world labels.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the sketch world's pairs and teacher.")] = 0,
    force_new: Annotated[
        bool,
        typer.Option(
            "--force-new", help="If --out holds a run with other inputs, move it into archive/ and start afresh."
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """PARROT: explain known preferences with a teacher, keep the rationales that predict the label, export SFT data."""
    from rationalrewards.graphs.jobs import ParrotJob, parrot_job

    job = ParrotJob(
        out=out,
        pairs=pairs,
        teacher=teacher,
        teacher_model=teacher_model,
        filter=filter_,
        repredict_with_images=not text_only_filter,
        retries=retries,
        swap_augment=swap,
        concurrency=concurrency,
        progress=not as_json,
        world=world,
        pairs_count=pairs_count,
        teacher_noise=teacher_noise,
        perception_noise=perception_noise,
        label_noise=label_noise,
        seed=seed,
        force_new=force_new,
    )
    card = parrot_job(job)
    if as_json:
        _emit(card)
        return
    print(
        f"kept {card['kept']} of {card['finished']} pairs (survival {card['survival_rate']}); rejected by reason: {card['rejected_by_reason']}"
    )
    print(
        f"{card['pairwise_rows']} pairwise and {card['pointwise_rows']} pointwise SFT rows in {out}; card: {out / 'card.md'}"
    )
    if "audit" in card:
        print(f"audit against the scene graphs: {card['audit']}")


@app.command("eval")
@_friendly_errors
def eval_(
    pairs: Annotated[
        Optional[Path], typer.Option("--pairs", help="Preference pairs: JSONL, Parquet or a saved datasets directory.")
    ] = None,
    critic: CriticOption = "sketch",
    model: ModelOption = None,
    tolerance: Annotated[
        float, typer.Option(help="Summed-score margin below which a pair counts as a predicted tie.")
    ] = 0.0,
    concurrency: Annotated[int, typer.Option(help="Requests in flight to an HTTP critic.")] = 16,
    world: Annotated[
        Optional[str], typer.Option("--world", help="'sketch': make ground-truth preference pairs first.")
    ] = None,
    pairs_count: Annotated[
        int, typer.Option("--pairs-count", help="Prompts (one pair each) for --world sketch.")
    ] = 200,
    out: Annotated[Path, typer.Option("--out", help="Where --world sketch writes its pairs.")] = Path("runs/eval"),
    as_json: JsonFlag = False,
) -> None:
    """Pairwise preference accuracy of a critic: summed scores decide; ties and abstentions are counted apart."""
    from rationalrewards.graphs.jobs import eval_job

    result = eval_job(
        pairs,
        critic=critic,
        model=model,
        tolerance=tolerance,
        concurrency=concurrency,
        world=world,
        pairs_count=pairs_count,
        out=out,
    )
    if as_json:
        _emit(result)
        return
    accuracy = "-" if result["accuracy"] is None else f"{result['accuracy']:.3f}"
    print(
        f"accuracy {accuracy} on {result['judged']} judged pairs ({result['n']} pairs, {result['abstentions']} abstentions, "
        f"{result['predicted_ties']} predicted ties, {result['label_ties']} tie labels, {result['bad_rows']} bad rows)"
    )


sketch_app = typer.Typer(
    help="The sketch world: read prompts, render images with ground truth, make suites.", no_args_is_help=True
)
app.add_typer(sketch_app, name="sketch")


@sketch_app.command("parse")
@_friendly_errors
def sketch_parse(
    prompt: Annotated[str, typer.Argument(help="A text-to-image prompt.")],
    as_json: JsonFlag = False,
) -> None:
    """Print the exact spec of a prompt in the GenEval metadata schema."""
    from rationalrewards.agents.sketch.spec import read_prompt

    reading = read_prompt(prompt)
    spec = reading.spec.model_dump()
    if as_json:
        _emit(spec)
        return
    print(json.dumps(spec, indent=1))
    for note in reading.notes:
        err.print(f"note: {note}")


@sketch_app.command("render")
@_friendly_errors
def sketch_render(
    prompt: Annotated[str, typer.Argument(help="A text-to-image prompt, or an edit instruction with --source.")],
    seed: Annotated[int, typer.Option(help="Seed: same prompt and seed, same image.")] = 0,
    out: Annotated[
        Path, typer.Option("--out", help="PNG path; the scene graph goes beside it as <stem>.scene.json.")
    ] = Path("sketch.png"),
    size: Annotated[int, typer.Option(help="Square image size in pixels.")] = 256,
    source: Annotated[
        Optional[Path], typer.Option("--source", help="A sketch image to edit (with its sidecar).")
    ] = None,
    perfect: Annotated[bool, typer.Option("--perfect", help="No misreading and no artifacts.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Render a prompt in the sketch world and write the image with its scene-graph sidecar."""
    import tempfile

    from rationalrewards.agents.sketch.failures import FailureModel
    from rationalrewards.agents.sketch.generator import SketchGenerator
    from rationalrewards.rewardmodel.images import image_ref_from_path

    with tempfile.TemporaryDirectory() as tmp:
        generator = SketchGenerator(tmp, size=size, failures=FailureModel.perfect() if perfect else None)
        made = generator.generate_one(prompt, seed, image_ref_from_path(source) if source else None)
        image_path, sidecar = generator.save_as(made, out)
    payload = {"image": str(image_path), "sidecar": str(sidecar), "seed": seed, "notes": made.metadata.get("notes", [])}
    if as_json:
        _emit(payload)
        return
    print(f"wrote {image_path} and {sidecar}")
    for note in payload["notes"]:
        print(f"generator: {note}")


@sketch_app.command("suite")
@_friendly_errors
def sketch_suite(
    out: Annotated[Path, typer.Option("--out", help="JSONL file to write.")],
    n: Annotated[int, typer.Option("--n", help="Number of prompts.")] = 300,
    seed: Annotated[int, typer.Option(help="Suite seed.")] = 0,
    kind: Annotated[str, typer.Option(help="t2i (GenEval phrasing, 7 tags), paraphrase, edit, or demo.")] = "t2i",
    as_json: JsonFlag = False,
) -> None:
    """Write a prompt suite (GenEval schema; the spec fields are the ground truth)."""
    from rationalrewards.agents.sketch import suites
    from rationalrewards.agents.suite import write_jsonl

    makers = {"t2i": suites.make_suite, "paraphrase": suites.paraphrase_suite, "edit": suites.make_edit_suite}
    if kind == "demo":
        rows = suites.demo_suite()
    elif kind in makers:
        rows = makers[kind](n, seed)
    else:
        raise ValueError(f"unknown suite kind {kind!r}; choose t2i, paraphrase, edit or demo")
    write_jsonl(rows, out)
    _emit({"out": str(out), "n": len(rows), "kind": kind}) if as_json else print(f"wrote {len(rows)} prompts to {out}")


@sketch_app.command("sheet")
@_friendly_errors
def sketch_sheet(
    out: Annotated[Path, typer.Option("--out", help="PNG path of the contact sheet.")] = Path("docs/sketch_world.png"),
    as_json: JsonFlag = False,
) -> None:
    """Render the demo suite as a contact sheet with specs, generator errors and ground-truth verdicts."""
    import tempfile

    from rationalrewards.agents.sketch.sheet import contact_sheet
    from rationalrewards.agents.sketch.suites import DEMO_SUITE

    with tempfile.TemporaryDirectory() as tmp:
        path = contact_sheet(list(DEMO_SUITE), out, workdir=tmp)
    _emit({"out": str(path)}) if as_json else print(f"wrote {path}")


if __name__ == "__main__":
    app()
