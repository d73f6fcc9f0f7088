"""The `rationalrewards` command line: a thin typer layer over importable functions. Nothing imports this module.

Every command takes `--json` (one JSON object on stdout; logs go to stderr). Typed errors exit with code 2 and a
one-line message, never a traceback.
"""

from __future__ import annotations

import inspect
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

from rationalrewards.cli.options import command, options_from
from rationalrewards.graphs.job_configs import MAX_TOKENS_HELP, PROMPTS_HELP
from rationalrewards.rewardmodel.errors import RewardModelError
from rationalrewards.rewardmodel.redact import redact

app = typer.Typer(
    name="rationalrewards",
    help="Reasoning reward models for image generation: critique and compare images, run Generate-Critique-Refine "
    "(refine, demo, report), make critic training data with PARROT, serve a critic, and use the sketch world.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True, soft_wrap=True)  # one line per message: no hard wraps mid-sentence (grep, CI logs)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
CriticOption = Annotated[
    str,
    typer.Option(
        "--critic",
        help="'sketch' (the sketch world's oracle; needs the image's .scene.json sidecar), 'sketch-pixels' (a "
        "critic that reads 32-pixel sketch images' pixels; text-to-image only), 'fake', an http(s):// "
        "OpenAI-compatible URL, or a local model directory.",
    ),
]
ModelOption = Annotated[Optional[str], typer.Option("--model", help="Served model name (default: the server's first).")]
TimeoutOption = Annotated[
    Optional[float],
    typer.Option(help="Seconds for the whole request to an HTTP critic, retries included (default 300)."),
]
MaxPixelsOption = Annotated[
    Optional[int],
    typer.Option(help="Largest image read, in pixels (default 64,000,000; $RATIONALREWARDS_MAX_IMAGE_PIXELS)."),
]
PromptOption = Annotated[str, typer.Option("--prompt", "-p", help="The request the image(s) were made for.")]
PromptsOption = Annotated[str, typer.Option("--prompts", help=PROMPTS_HELP)]
MaxTokensOption = Annotated[Optional[int], typer.Option("--max-tokens", help=MAX_TOKENS_HELP)]
SourceOption = Annotated[
    Optional[Path], typer.Option("--source", help="Source image: makes this an edit (critique or comparison).")
]


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    """A command parameter that is not a config field (inputs, output switches)."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


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
            err.print(f"[bold red]error:[/] {escape(redact(str(e)))}")  # brackets are not rich markup here
            raise typer.Exit(2) from e

    return wrapper


def _emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")


def _exit_if_failed(failed: int, total: int, what: str, run_dir: str) -> None:
    """A batch job with failed items exits 1 and says how many (they are retried when the same command runs again)."""
    if failed:
        err.print(
            f"[yellow]{failed} of {total} {what} failed[/] (see {escape(str(run_dir))}/failures.jsonl; rerun the "
            "same command to retry them)"
        )
        raise typer.Exit(1)


def _image_path(path: Path) -> Path:
    """An --out that names an image file: a directory or an unknown extension is refused up front, by name."""
    if path.is_dir() or not path.suffix:
        raise ValueError(
            f"--out {path} is a directory or has no extension: give an image file path such as {path / 'sheet.png'}"
        )
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise ValueError(f"--out {path} has the extension {path.suffix!r}: use .png, .jpg or .webp")
    return path


def _finish(result: dict[str, Any], as_json: bool) -> bool:
    """One exit rule for single critiques and comparisons, with or without --json: an abstention is an answer, not a
    crash, so it is printed (as JSON with --json), explained on stderr, and the command exits 1 (2 is for bad input).
    True when the caller should go on to print its table."""
    if as_json:
        _emit(result)
    if result["kind"] == "abstention":
        err.print(f"[yellow]the critic abstained ({result['reason']}):[/] {escape(redact(str(result['detail'])))}")
        raise typer.Exit(1)
    return not as_json


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
    prompt: PromptOption,
    source: SourceOption = None,
    critic: CriticOption = "sketch",
    model: ModelOption = None,
    refine: Annotated[bool, typer.Option(help="Ask for the refinement section.")] = True,
    policy: Annotated[str, typer.Option(help="Reward policy: paper, edit_rl_release or all.")] = "paper",
    prompts: PromptsOption = "auto",
    max_tokens: MaxTokensOption = None,
    timeout: TimeoutOption = None,
    max_image_pixels: MaxPixelsOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Critique one image: per-aspect justifications and 1-4 scores, a reward, and a refined request. Exits 1 when the
    critic abstains (the abstention is printed, as JSON with --json), 2 on bad input."""
    from rationalrewards.agents.api import critique_image
    from rationalrewards.rewardmodel.images import set_max_image_pixels
    from rationalrewards.rewardmodel.scoring import check_policy

    set_max_image_pixels(max_image_pixels)
    result = critique_image(
        image,
        prompt,
        source=source,
        critic=critic,
        model=model,
        refine=refine,
        policy=check_policy(policy),
        prompts=prompts,
        max_tokens=max_tokens,
        timeout=timeout,
    )
    if not _finish(result, as_json):
        return
    rows = [(a, "N/A" if s is None else f"{s:g}", result["justifications"][a]) for a, s in result["scores"].items()]
    Console().print(_score_table(f"critique of {image.name}", rows))
    reward = "none (no aspect the policy scores)" if result["reward"] is None else f"{result['reward']:.3f}"
    Console().print(f"reward ({policy}): {reward}")
    if result["refined_request"]:
        cut = " [yellow](cut off at --max-tokens; may be partial)[/]" if result["truncated"] else ""
        Console().print(f"refined request: {escape(result['refined_request'])}{cut}")
    for warning in result["warnings"]:
        err.print(f"[yellow]warning:[/] {escape(warning)}")


@app.command()
@_friendly_errors
def compare(
    image_a: Annotated[Path, typer.Argument(help="Image A.")],
    image_b: Annotated[Path, typer.Argument(help="Image B.")],
    prompt: PromptOption,
    source: SourceOption = None,
    critic: CriticOption = "sketch",
    model: ModelOption = None,
    prompts: PromptsOption = "auto",
    max_tokens: MaxTokensOption = None,
    timeout: TimeoutOption = None,
    max_image_pixels: MaxPixelsOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Compare two images for one request; the summed per-aspect scores decide the preferred one. Exits 1 when the
    critic abstains, 2 on bad input."""
    from rationalrewards.agents.api import compare_images
    from rationalrewards.rewardmodel.images import set_max_image_pixels

    set_max_image_pixels(max_image_pixels)
    result = compare_images(
        image_a,
        image_b,
        prompt,
        source=source,
        critic=critic,
        model=model,
        prompts=prompts,
        max_tokens=max_tokens,
        timeout=timeout,
    )
    if not _finish(result, as_json):
        return
    table = Table(title="pairwise judgement")
    for column in ("aspect", "A", "B"):
        table.add_column(column)
    for aspect in result["scores_a"]:
        a, b = result["scores_a"][aspect], result["scores_b"][aspect]
        table.add_row(aspect, "N/A" if a is None else f"{a:g}", "N/A" if b is None else f"{b:g}")
    Console().print(table)
    Console().print(f"preferred: {result['preferred']}")


def _serve(log_file: Path, dry_run: bool, as_json: bool, **flags: Any) -> None:
    from rationalrewards.rewardmodel.serve import ServeConfig, command_line, launch

    config = ServeConfig(**flags)
    if dry_run:
        _emit({"command": command_line(config), "base_url": config.base_url}) if as_json else print(
            command_line(config)
        )
        return
    server = launch(config, log_file)
    err.print(
        f"serving {config.checkpoint} as {config.served_model_name!r} at {config.base_url} (log: {log_file}); "
        "Ctrl-C stops it"
    )
    try:
        server.process.wait()
    except KeyboardInterrupt:
        server.stop()


def _register_serve() -> None:
    from rationalrewards.rewardmodel.serve import ServeConfig

    extra = [
        _option(
            "log_file", Annotated[Path, typer.Option(help="Where the server's output goes.")], Path("vllm-serve.log")
        ),
        _option(
            "dry_run",
            Annotated[bool, typer.Option("--dry-run", help="Print the command instead of running it.")],
            False,
        ),
        _option("as_json", JsonFlag, False),
    ]
    command(
        app,
        "serve",
        _serve,
        [*options_from(ServeConfig), *extra],
        "Serve a critic with `vllm serve` and the paper's flags (GPU machines; needs the `serve` extra with vLLM).",
        _friendly_errors,
    )


_register_serve()


@app.command()
@_friendly_errors
def merge(
    run_dirs: Annotated[list[Path], typer.Argument(help="The shards' run directories (refine or parrot).")],
    out: Annotated[Path, typer.Option("--out", help="The merged run directory.")],
    as_json: JsonFlag = False,
) -> None:
    """Join the run directories of one job's shards (`--shard i/N`) into one run directory, summary and report."""
    from rationalrewards.graphs.merge import merge_runs

    summary = merge_runs(run_dirs, out)
    if as_json:
        _emit(summary)
    else:
        print(f"merged {summary['merged']} shards ({summary['finished']} items, {summary['failed']} failed) into {out}")


@app.command("serve-generator")
@_friendly_errors
def serve_generator(
    pipeline: Annotated[str, typer.Argument(help="'sketch', or a local diffusers pipeline directory.")],
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8100,
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for other machines).")] = "127.0.0.1",
    work_dir: Annotated[Path, typer.Option(help="Where generated and uploaded images are kept.")] = Path(
        "generator-server"
    ),
    device: Annotated[str, typer.Option(help="Device for a diffusers pipeline (cpu, cuda, cuda:1).")] = "cpu",
    lora: Annotated[str | None, typer.Option(help="A LoRA directory for a diffusers pipeline.")] = None,
    latency: Annotated[
        float, typer.Option(help="Benchmarks: seconds per image, one call at a time (a stand-in for a busy GPU).")
    ] = 0.0,
) -> None:
    """Serve a generator over the OpenAI Images API (POST /v1/images/generations and /v1/images/edits, GET /v1/models,
    GET /health), with request batching; use it with `--generator http://HOST:PORT` (repeat for several servers)."""
    from rationalrewards.agents.factory import generator_from_spec
    from rationalrewards.agents.generator_server import serve

    if pipeline.startswith(("http://", "https://")):
        raise typer.BadParameter("serve-generator serves a local generator ('sketch' or a pipeline directory)")
    generator = generator_from_spec(pipeline, work_dir / "images", device=device, lora=lora)
    err.print(f"serving {generator.name} at http://{host}:{port}/v1 (images in {work_dir}); Ctrl-C stops it")
    serve(generator, work_dir, host=host, port=port, latency=latency)


@app.command()
@_friendly_errors
def tiny(
    directory: Annotated[Path, typer.Argument(help="Where to save the model directory.")],
    family: Annotated[str, typer.Option(help="qwen2_vl, qwen2_5_vl or qwen3_vl.")] = "qwen2_vl",
    seed: Annotated[int, typer.Option(help="Weight seed.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Build a tiny random Qwen-VL critic from config (for testing pipelines offline; its critiques are noise)."""
    from rationalrewards.rewardmodel.tiny import check_family, save_tiny_vlm

    path = save_tiny_vlm(directory, check_family(family), seed)
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


def _refine(
    prompt: str | None, suite: Path | None, source: Path | None, seed: int, as_json: bool, **flags: Any
) -> None:
    from rationalrewards.agents.suite import Suite, SuiteRow, read_suite
    from rationalrewards.graphs.jobs import RefineJob, refine_job

    if (prompt is None) == (suite is None):
        raise ValueError("give either a PROMPT or --suite FILE")
    if suite is not None:
        rows = read_suite(suite)
    else:
        rows = Suite([SuiteRow(prompt=prompt or "", seed=seed, source_image=str(source.resolve()) if source else None)])
    summary = refine_job(RefineJob(rows=rows, progress=not as_json, **flags))
    if as_json:
        _emit(summary)
    else:
        print(
            f"{summary['finished']}/{summary['n']} prompts finished ({summary['failed']} failed); "
            f"reward {summary['reward_initial']} -> {summary['reward_final']}"
        )
        if "accuracy_initial" in summary:
            print(f"ground-truth accuracy {summary['accuracy_initial']} -> {summary['accuracy_final']}")
        print(f"report: {summary['report']}")
    _exit_if_failed(summary["failed"], summary["n"], "prompts", summary["run_dir"])


def _register_refine() -> None:
    from rationalrewards.graphs.job_configs import RefineJob

    inputs = [
        _option(
            "prompt",
            Annotated[Optional[str], typer.Argument(metavar="PROMPT", help="One prompt (or use --suite).")],
            None,
        ),
        _option(
            "suite",
            Annotated[
                Optional[Path],
                typer.Option("--suite", help="JSONL suite: one prompt per line (GenEval fields = ground truth)."),
            ],
            None,
        ),
        _option(
            "source",
            Annotated[
                Optional[Path], typer.Option("--source", help="Source image: PROMPT is then an edit instruction.")
            ],
            None,
        ),
        _option("seed", Annotated[int, typer.Option(help="Base seed for a single prompt.")], 0),
    ]
    command(
        app,
        "refine",
        _refine,
        [*inputs, *options_from(RefineJob), _option("as_json", JsonFlag, False)],
        "Generate, critique and refine: one prompt or a suite, with a resumable run directory and an HTML report.",
        _friendly_errors,
    )


_register_refine()


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


def _parrot(as_json: bool, **flags: Any) -> None:
    from rationalrewards.graphs.jobs import ParrotJob, parrot_job

    card = parrot_job(ParrotJob(progress=not as_json, **flags))
    if as_json:
        _emit(card)
    else:
        print(
            f"kept {card['kept']} of {card['finished']} pairs (survival {card['survival_rate']}); "
            f"rejected by reason: {card['rejected_by_reason']}"
        )
        out = flags["out"]
        print(
            f"{card['pairwise_rows']} pairwise and {card['pointwise_rows']} pointwise SFT rows in {out}; "
            f"card: {out / 'card.md'}"
        )
        if "audit" in card:
            print(f"audit against the scene graphs: {card['audit']}")
    _exit_if_failed(card["failed"], card["valid_pairs"], "pairs", card["out"])


def _register_parrot() -> None:
    from rationalrewards.graphs.job_configs import ParrotJob

    as_json = inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=JsonFlag)
    command(
        app,
        "parrot",
        _parrot,
        [*options_from(ParrotJob), as_json],
        "PARROT: explain known preferences with a teacher, keep the rationales that predict the label, export SFT "
        "data.",
        _friendly_errors,
    )


_register_parrot()


def _eval(as_json: bool, **flags: Any) -> None:
    from rationalrewards.graphs.jobs import EvalJob, eval_job

    result = eval_job(EvalJob(**flags))
    if as_json:
        _emit(result)
        return
    accuracy = "-" if result["accuracy"] is None else f"{result['accuracy']:.3f}"
    if result["rules"] == "release":
        counted = f"{result['evaluated']} evaluated pairs ({result['n']} pairs, {result['skipped']} skipped"
    else:
        counted = (
            f"{result['judged']} judged pairs ({result['n']} pairs, {result['abstentions']} abstentions, "
            f"{result['label_ties']} tie labels"
        )
    print(
        f"accuracy {accuracy} on {counted}, {result['predicted_ties']} predicted ties, {result['bad_rows']} bad rows)"
    )
    print(f"rule: {result['rule']}")
    print(f"prompts: {result['prompts'] or 'none (the critic reads typed requests)'}; written to {result['out']}")


def _register_eval() -> None:
    from rationalrewards.graphs.job_configs import EvalJob

    command(
        app,
        "eval",
        _eval,
        [*options_from(EvalJob), _option("as_json", JsonFlag, False)],
        "Pairwise preference accuracy of a critic: summed scores decide. --rules ours (default) counts ties and "
        "abstentions apart; --rules release follows the release's accounting (2.5 for a missing score) so the figure "
        "can stand beside published ones. Writes eval.json and judgements.jsonl under --out.",
        _friendly_errors,
    )


_register_eval()


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
@_friendly_errors
def distill(ctx: typer.Context) -> None:
    """Distil a critic from PARROT rows (trl SFT on a Qwen-VL student; `distill --help` lists the flags), or merge a
    LoRA adapter into a full checkpoint: `distill merge ADAPTER --out DIR`."""
    from rationalrewards.cli.distill import run

    run(list(ctx.args))


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
@_friendly_errors
def rl(ctx: typer.Context) -> None:
    """Diffusion RL (DiffusionNFT or Flow-GRPO) of a pipeline's LoRA with a critique reward; `rl --help` lists the
    flags."""
    from rationalrewards.cli.rl import run

    run(list(ctx.args))


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
        image_path, sidecar = generator.save_as(made, _image_path(out))
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
        path = contact_sheet(list(DEMO_SUITE), _image_path(out), workdir=tmp)
    _emit({"out": str(path)}) if as_json else print(f"wrote {path}")


experiment_app = typer.Typer(
    help="Experiments that reproduce the paper's claims in the sketch world, with models our code trains.",
    no_args_is_help=True,
)
app.add_typer(experiment_app, name="experiment")


@experiment_app.command("parrot-ablation")
@_friendly_errors
def experiment_parrot_ablation(
    out: Annotated[Path, typer.Option("--out", help="Output directory (report.md, results.json, curves.png).")],
    budget_minutes: Annotated[
        float,
        typer.Option(
            "--budget-minutes",
            help="Training time of the first student, in minutes; every other student trains as many steps.",
        ),
    ] = 30.0,
    seed: Annotated[
        Optional[list[int]], typer.Option("--seed", help="Training seed; repeat for several (default: 0 and 1).")
    ] = None,
    train_prompts: Annotated[int, typer.Option("--train-prompts", help="Training prompts (one pair each).")] = 1200,
    held_out_prompts: Annotated[
        int, typer.Option("--held-out-prompts", help="Held-out prompts (one pair each; never seen in training).")
    ] = 400,
    teacher_noise: Annotated[
        float, typer.Option("--teacher-noise", help="The sketch teacher's hallucination rate and perception noise.")
    ] = 0.35,
    loop_prompts: Annotated[
        int, typer.Option("--loop-prompts", help="Held-out prompts through GCR per critic and preset.")
    ] = 32,
    pointwise_images: Annotated[
        int, typer.Option("--pointwise-images", help="Held-out images for the pointwise text-faithfulness score.")
    ] = 100,
    evaluations: Annotated[
        int, typer.Option("--evaluations", help="Held-out curve points during training, besides the final one.")
    ] = 2,
    curve_pairs: Annotated[int, typer.Option("--curve-pairs", help="Held-out pairs scored at each curve point.")] = 32,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            help="Students trained and scored at once after the first, sharing the CPU's cores (the figures do not "
            "depend on it).",
        ),
    ] = 1,
    student: Annotated[
        Optional[Path],
        typer.Option("--student", help="Base student directory (default: SmolLM2-135M-Instruct, exported offline)."),
    ] = None,
    smoke: Annotated[
        bool, typer.Option("--smoke", help="A minutes-long run of every stage (figures mean nothing).")
    ] = False,
    docs: Annotated[
        Optional[Path], typer.Option("--docs", help="Also copy the report and figure into this folder (e.g. docs).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """PARROT vs direct distillation (the paper's Table 1 in miniature): SmolLM2 students reading perception
    transcripts, evaluated on held-out pairs, then used as the critic of GCR."""
    from rationalrewards.training.experiments.parrot_ablation import AblationSettings, copy_to_docs, run_ablation

    knobs: dict[str, Any] = {"teacher_noise": teacher_noise, "student": str(student) if student else None}
    if seed:
        knobs["seeds"] = tuple(seed)
    if smoke:
        settings = AblationSettings.smoke(**knobs)
    else:
        knobs |= {
            "budget_minutes": budget_minutes,
            "train_prompts": train_prompts,
            "held_out_prompts": held_out_prompts,
            "loop_prompts": loop_prompts,
            "pointwise_images": pointwise_images,
            "evaluations": evaluations,
            "curve_pairs": curve_pairs,
        }
        settings = AblationSettings(**knobs)
    from rationalrewards.cli.dataclass_flags import stdout_for_json

    with stdout_for_json(as_json):  # the trainers print their logs to stdout; --json keeps stdout to one object
        results = run_ablation(out, settings, jobs=jobs)
    if docs is not None:
        copy_to_docs(out, docs)
    if as_json:
        _emit(results)
        return
    print((out / "report.md").read_text())
    print(f"report: {out / 'report.md'}")


@experiment_app.command("train-sketch-generator")
@_friendly_errors
def experiment_train_sketch_generator(
    out: Annotated[Path, typer.Option("--out", help="Output directory (pipeline/, report.json, held_out_sheet.png).")],
    budget_minutes: Annotated[
        float, typer.Option("--budget-minutes", help="Training time in minutes (the shipped checkpoint: 30).")
    ] = 30.0,
    seed: Annotated[int, typer.Option("--seed", help="Initialisation and data-order seed.")] = 0,
    threads: Annotated[int, typer.Option("--threads", help="CPU threads for training (torch).")] = 1,
    smoke: Annotated[bool, typer.Option("--smoke", help="A few steps of every stage (figures mean nothing).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Train the 32-pixel sketch generator (a tiny text-to-image flow-matching pipeline) on small-world renders, then
    judge its images with the pixel perception. Resumes from DIR's checkpoint if one is there."""
    from rationalrewards.training.experiments.sketch_generator import GeneratorSettings, train_sketch_generator

    knobs: dict[str, Any] = {"seed": seed, "threads": threads}
    settings = GeneratorSettings.smoke(**knobs) if smoke else GeneratorSettings(budget_minutes=budget_minutes, **knobs)
    report = train_sketch_generator(out, settings)
    if as_json:
        _emit(report)
        return
    for name, figures in report["evaluation"].items():
        print(
            f"{name}: colour {figures['color_accuracy']:.3f}, count {figures['count_accuracy']:.3f}, "
            f"both {figures['accuracy']:.3f} over {figures['images']} images"
        )
    print(f"pipeline: {report['pipeline']}  ({report['steps']} steps, {report['train_minutes']} min)")


@experiment_app.command("reward-hacking")
@_friendly_errors
def experiment_reward_hacking(
    out: Annotated[
        Path, typer.Option("--out", help="Output directory (report.md, results.json, curves.png, contact sheets).")
    ],
    generator: Annotated[
        Optional[Path],
        typer.Option("--generator", help="The base sketch generator's pipeline directory (default: the shipped one)."),
    ] = None,
    budget_minutes: Annotated[
        Optional[float],
        typer.Option(
            "--budget-minutes",
            help="RL time per arm and seed; a probe of the first run turns it into steps every run then takes.",
        ),
    ] = None,
    steps: Annotated[
        int, typer.Option("--steps", help="DiffusionNFT steps per arm and seed, when no --budget-minutes.")
    ] = 40,
    seeds: Annotated[
        Optional[int], typer.Option("--seeds", help="Number of RL seeds (0 .. N-1; default 3).", min=1)
    ] = None,
    seed: Annotated[
        Optional[list[int]], typer.Option("--seed", help="An RL seed; repeat for several (instead of --seeds).")
    ] = None,
    smoke: Annotated[bool, typer.Option("--smoke", help="A few steps of every stage (figures mean nothing).")] = False,
    docs: Annotated[
        Optional[Path],
        typer.Option("--docs", help="Also copy the report, curves and contact sheets into this folder (e.g. docs)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """RL the 32-pixel sketch generator with a critique reward and with two scalar rewards (one exploitable, one a
    learned Bradley-Terry model); held-out colour and count accuracy read from pixels; GCR beside RL. A rerun into
    the same --out with the same settings continues where a stopped run ended."""
    from rationalrewards.training.experiments.reward_hacking import HackingSettings, copy_to_docs, run_reward_hacking

    if seed and seeds is not None:
        raise typer.BadParameter("give --seeds N or --seed S (repeated), not both")
    knobs: dict[str, Any] = {"generator": str(generator) if generator else None, "budget_minutes": budget_minutes}
    if seed:
        knobs["seeds"] = tuple(seed)
    elif seeds is not None:
        knobs["seeds"] = tuple(range(seeds))
    settings = HackingSettings.smoke(**knobs) if smoke else HackingSettings(steps=steps, **knobs)
    from rationalrewards.cli.dataclass_flags import stdout_for_json

    with stdout_for_json(as_json):  # the trainers print their logs to stdout; --json keeps stdout to one object
        results = run_reward_hacking(out, settings)
    if docs is not None:
        copy_to_docs(out, docs)
    if as_json:
        _emit(results)
        return
    print((out / "report.md").read_text())
    print(f"report: {out / 'report.md'}")


if __name__ == "__main__":
    app()
