"""The `rationalrewards` command line: a thin typer layer over importable functions. Nothing imports this module.

Every command's flags come from a config dataclass (`cli/_options.py`); every command takes `--json` (one JSON
object on stdout; logs go to stderr). `main()` is the one error boundary: bad input, a missing file, a refused
request or a missing optional dependency ends in one `error:` line and exit code 2, never a traceback.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rationalrewards.cli._configs import (
    CompareCommand,
    CritiqueCommand,
    DemoCommand,
    McpCommand,
    MergeCommand,
    RefineInputs,
    ReportCommand,
    ServeGeneratorCommand,
    ServeRefinerCommand,
    ServeRewardCommand,
    TinyCommand,
    UiCommand,
)
from rationalrewards.cli._flags import emit
from rationalrewards.cli._options import config_command, flag
from rationalrewards.plumbing.redact import redact
from rationalrewards.rewardmodel.errors import RewardModelError
from rationalrewards.rewardmodel.serve import ServeConfig
from rationalrewards.runtime.job_configs import EvalJob, ParrotJob, RefineJob

app = typer.Typer(
    name="rationalrewards",
    help="Reasoning reward models for image generation: critique and compare images, run Generate-Critique-Refine "
    "(refine, demo, report), make critic training data with PARROT, distil critics, RL generators, serve a critic, "
    "and use the sketch world.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True, soft_wrap=True)  # one line per message: no hard wraps mid-sentence (grep, CI logs)


@app.callback()
def _main(
    log_json: bool = typer.Option(False, "--log-json", help="Log JSON lines to stderr."),
    log_level: str = typer.Option("WARNING", "--log-level", help="DEBUG, INFO, WARNING or ERROR."),
) -> None:
    from rationalrewards.plumbing.logs import configure_logging

    configure_logging(json=log_json, level=log_level)


def _exit_if_failed(failed: int, total: int, what: str, run_dir: str) -> None:
    """A batch job with failed items exits 1 and says how many (they are retried when the same command runs again)."""
    if failed:
        err.print(
            f"[yellow]{failed} of {total} {what} failed[/] (see {escape(str(run_dir))}/failures.jsonl; rerun the "
            "same command to retry them)"
        )
        raise typer.Exit(1)


def _finish(result: dict[str, object], as_json: bool) -> bool:
    """One exit rule for single critiques and comparisons, with or without --json: an abstention is an answer, not a
    crash, so it is printed (as JSON with --json), explained on stderr, and the command exits 1 (2 is for bad input).
    True when the caller should go on to print its table."""
    if as_json:
        emit(result)
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


def _judge_options(config: CritiqueCommand | CompareCommand) -> dict[str, Any]:
    from rationalrewards.rewardmodel.images import set_max_image_pixels

    set_max_image_pixels(config.max_image_pixels)
    return {
        "source": config.source,
        "critic": config.critic,
        "model": config.model,
        "prompts": config.prompts,
        "max_tokens": config.max_tokens,
        "samples": config.samples,
        "timeout": config.timeout,
    }


def _critique(config: CritiqueCommand, as_json: bool) -> None:
    from rationalrewards.agents.api import critique_image

    options = _judge_options(config)
    result = critique_image(config.image, config.prompt, refine=config.refine, policy=config.policy, **options)
    if not _finish(result, as_json):
        return
    rows = [(a, "N/A" if s is None else f"{s:g}", result["justifications"][a]) for a, s in result["scores"].items()]
    Console().print(_score_table(f"critique of {config.image.name}", rows))
    reward = "none (no aspect the policy scores)" if result["reward"] is None else f"{result['reward']:.3f}"
    Console().print(f"reward ({config.policy}): {reward}")
    if result["refined_request"]:
        cut = " [yellow](cut off at --max-tokens; may be partial)[/]" if result["truncated"] else ""
        Console().print(f"refined request: {escape(result['refined_request'])}{cut}")
    for warning in result["warnings"]:
        err.print(f"[yellow]warning:[/] {escape(warning)}")


def _compare(config: CompareCommand, as_json: bool) -> None:
    from rationalrewards.agents.api import compare_images

    result = compare_images(config.image_a, config.image_b, config.prompt, **_judge_options(config))
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


def _serve(config: ServeConfig, log_file: Path, dry_run: bool, as_json: bool) -> None:
    from rationalrewards.rewardmodel.serve import command_line, launch

    if dry_run:
        emit({"command": command_line(config), "base_url": config.base_url}) if as_json else print(command_line(config))
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


def _merge(config: MergeCommand, as_json: bool) -> None:
    from rationalrewards.runtime.merge import merge_runs

    summary = merge_runs(list(config.run_dirs), config.out, partial=config.partial, force_new=config.force_new)
    if as_json:
        emit(summary)
    else:
        print(
            f"merged {summary['merged']} shards ({summary['finished']} items, {summary['failed']} failed) into "
            f"{config.out}"
        )
        for missing in summary["missing"] or []:  # type: ignore[attr-defined]  # a list of strings
            err.print(f"[yellow]partial:[/] {escape(str(missing))}")


def _serve_generator(config: ServeGeneratorCommand) -> None:

    from rationalrewards.agents.factory import generator_from_spec
    from rationalrewards.agents.generator_server import serve
    from rationalrewards.agents.specs import HttpBackend, parse_spec
    from rationalrewards.plumbing.serving import server_api_key

    spec = parse_spec(config.pipeline, "generator")
    if isinstance(spec, HttpBackend):
        raise ValueError("serve-generator serves a local generator (a world's, or a pipeline directory)")
    api_key = server_api_key(config.api_key, config.host)
    limits = config.edge_limits()
    generator = generator_from_spec(spec, config.work_dir / "images", device=config.device, lora=config.lora)
    auth = "an API key" if api_key else "no key (loopback only)"
    err.print(
        f"serving {generator.name} at http://{config.host}:{config.port}/v1 with {auth} (images in "
        f"{config.work_dir}); Ctrl-C stops it"
    )
    serve(
        generator, config.work_dir, host=config.host, port=config.port, latency=config.latency, api_key=api_key,
        limits=limits,
    )  # fmt: skip


def _serve_refiner(config: ServeRefinerCommand) -> None:

    from rationalrewards.agents.factory import generator_from_spec, reward_model_from_spec
    from rationalrewards.agents.specs import HttpBackend, WorldBackend, parse_spec
    from rationalrewards.graphs.gcr import GCRContext
    from rationalrewards.graphs.gcr_config import GCRConfig
    from rationalrewards.plumbing.serving import server_api_key
    from rationalrewards.runtime.refiner_server import RefinerService, serve_refiner

    api_key = server_api_key(config.api_key, config.host)
    images = config.work_dir / "images"
    critic_spec = parse_spec(config.critic, "critic")
    options: dict[str, object] = {"samples": config.samples}
    if isinstance(critic_spec, WorldBackend):  # a world's critic finds the images it made (and inline ones) by content
        options["image_dirs"] = [images]
    elif isinstance(critic_spec, HttpBackend):
        options |= {"concurrency": max(8, config.max_in_flight), "on_server_error": "abstain"}
    critic = reward_model_from_spec(
        critic_spec, model=config.model, prompts=config.prompts, max_tokens=config.max_tokens, **options
    )
    generator = generator_from_spec(config.generator, images, device=config.device, lora=config.lora)
    context = GCRContext(generator=generator, critic=critic, trace=config.trace)
    service = RefinerService(
        context, GCRConfig.preset(config.preset), config.work_dir, max_in_flight=config.max_in_flight,
        queue=config.queue,
    )  # fmt: skip
    auth = "an API key" if api_key else "no key (loopback only)"
    err.print(
        f"refining with {generator.name} and {critic_spec.text} ({config.preset}) at "
        f"http://{config.host}:{config.port}/v1 with {auth}; Ctrl-C stops it"
    )
    limits = config.edge_limits()
    serve_refiner(service, host=config.host, port=config.port, api_key=api_key, limits=limits)


def _serve_reward(config: ServeRewardCommand) -> None:

    from rationalrewards.agents.factory import reward_model_from_spec
    from rationalrewards.agents.reward_server import RewardService, serve_reward
    from rationalrewards.agents.specs import HttpBackend, WorldBackend, parse_spec
    from rationalrewards.plumbing.serving import server_api_key

    api_key = server_api_key(config.api_key, config.host)
    spec = parse_spec(config.critic, "critic")
    options: dict[str, Any] = {"samples": config.samples}
    if isinstance(spec, WorldBackend):
        options["image_dirs"] = [config.image_dir] if config.image_dir else []
    elif isinstance(spec, HttpBackend):
        options |= {"concurrency": config.concurrency, "on_server_error": "abstain"}
    critic = reward_model_from_spec(
        spec, model=config.model, prompts=config.prompts, max_tokens=config.max_tokens, **options
    )
    service = RewardService(critic, policy=config.policy, fallback=config.fallback)
    auth = "an API key" if api_key else "no key (loopback only)"
    err.print(f"rewards from {spec.text} at http://{config.host}:{config.port}/compute with {auth}; Ctrl-C stops it")
    limits = config.edge_limits()
    serve_reward(service, host=config.host, port=config.port, api_key=api_key, limits=limits)


def _ui(config: UiCommand) -> None:
    from rationalrewards.integrations.ui import build_app
    from rationalrewards.plumbing.serving import is_loopback

    if not is_loopback(config.host):
        raise ValueError("the page has no login: it listens on loopback only (use an SSH tunnel to reach it)")
    err.print(f"the page is at http://{config.host}:{config.port}; Ctrl-C stops it")
    build_app(config.work_dir).queue().launch(server_name=config.host, server_port=config.port, inbrowser=False)


def _mcp(config: McpCommand) -> None:

    from rationalrewards.agents.factory import generator_from_spec, reward_model_from_spec
    from rationalrewards.agents.specs import WorldBackend, parse_spec
    from rationalrewards.integrations.mcp_server import API_KEY_ENV, build_mcp_server, serve_http
    from rationalrewards.integrations.tools import LoopBackends
    from rationalrewards.plumbing.serving import server_api_key

    api_key = server_api_key(config.api_key, config.host if config.transport == "http" else None, API_KEY_ENV)
    spec = parse_spec(config.critic, "critic")
    # A world's critic finds the images it made (data URLs included) by content under the work directory.
    options = {"image_dirs": [config.work_dir]} if isinstance(spec, WorldBackend) else {}
    critic = reward_model_from_spec(
        spec, model=config.model, prompts=config.prompts, max_tokens=config.max_tokens, **options
    )
    backends = None
    if config.generator is not None:
        backends = LoopBackends(generator_from_spec(config.generator, config.work_dir), critic)
    server = build_mcp_server(critic, backends, policy=config.policy)
    tools = "critique_image, compare_images" + (", refine_image" if backends else "")
    if config.transport == "stdio":
        err.print(f"MCP server on stdio ({tools}); the client speaks on stdin/stdout")
        server.run("stdio")
        return
    err.print(f"MCP server at http://{config.host}:{config.port}/mcp ({tools}); Ctrl-C stops it")
    serve_http(server, config.host, config.port, api_key)


def _tiny(config: TinyCommand, as_json: bool) -> None:
    from rationalrewards.rewardmodel.tiny import save_tiny_vlm

    path = save_tiny_vlm(config.directory, config.family, config.seed)
    emit({"directory": str(path), "family": config.family}) if as_json else print(
        f"saved a tiny {config.family} critic to {path}"
    )


def _demo(config: DemoCommand, as_json: bool) -> None:
    from rationalrewards.runtime.jobs import demo_job, demo_table

    summary = demo_job(config.out, progress=not as_json)
    emit(summary) if as_json else print(demo_table(summary))


def _refine(inputs: RefineInputs, job: RefineJob, as_json: bool) -> None:
    from rationalrewards.agents.suite import Suite, SuiteRow, read_suite
    from rationalrewards.runtime.jobs import refine_job

    if inputs.suite is not None:
        rows = read_suite(inputs.suite)
    else:
        source = str(inputs.source.resolve()) if inputs.source else None
        rows = Suite([SuiteRow(prompt=inputs.prompt or "", seed=inputs.seed, source_image=source)])
    summary = refine_job(dataclasses.replace(job, rows=rows, progress=not as_json))
    if as_json:
        emit(summary)
    else:
        print(
            f"{summary['finished']}/{summary['n']} prompts finished ({summary['failed']} failed); "
            f"reward {summary['reward_initial']} -> {summary['reward_final']}"
        )
        if "accuracy_initial" in summary:
            print(f"ground-truth accuracy {summary['accuracy_initial']} -> {summary['accuracy_final']}")
        print(f"report: {summary['report']}")
    _exit_if_failed(summary["failed"], summary["n"], "prompts", summary["run_dir"])


def _report(config: ReportCommand, as_json: bool) -> None:
    from rationalrewards.runtime.report import write_report

    if not (config.run_dir / "run.json").exists():
        raise ValueError(f"{config.run_dir} is not a run directory (no run.json)")
    path = write_report(config.run_dir)
    emit({"report": str(path)}) if as_json else print(f"wrote {path}")


def _parrot(job: ParrotJob, as_json: bool) -> None:
    from rationalrewards.runtime.jobs import parrot_job

    card = parrot_job(dataclasses.replace(job, progress=not as_json))
    if as_json:
        emit(card)
    else:
        print(
            f"kept {card['kept']} of {card['finished']} pairs (survival {card['survival_rate']}); "
            f"rejected by reason: {card['rejected_by_reason']}"
        )
        out = job.out
        print(
            f"{card['pairwise_rows']} pairwise and {card['pointwise_rows']} pointwise SFT rows in {out}; "
            f"card: {out / 'card.md'}"
        )
        if "audit" in card:
            print(f"audit against the scene graphs: {card['audit']}")
    _exit_if_failed(card["failed"], card["valid_pairs"], "pairs", card["out"])


def _eval(job: EvalJob, as_json: bool) -> None:
    from rationalrewards.runtime.jobs import eval_job

    result = eval_job(dataclasses.replace(job, progress=not as_json))
    if as_json:
        emit(result)
        return

    def pct(value: object) -> str:
        return "-" if value is None else f"{100 * float(value):.1f}%"  # type: ignore[arg-type]

    interval = result.get("accuracy_decisive_ci95")
    shown = f" (95% {100 * interval[0]:.1f}-{100 * interval[1]:.1f}%)" if interval else ""  # type: ignore[index]
    print(
        f"{result['bench']}: {result['n']} pairs, {result['judged']} judged, {result['abstentions']} abstentions, "
        f"{result['label_ties']} tie labels, {result['predicted_ties']} predicted ties, {result['bad_rows']} bad rows"
    )
    print(
        f"accuracy (ours) {pct(result['accuracy_ours'])}; decisive pairs {pct(result['accuracy_decisive'])}{shown}; "
        f"release's accounting {pct(result['release_accuracy'])} ({result['release_evaluated']} evaluated)"
    )
    if result.get("exact_ranking_accuracy") is not None:
        print(f"exact ranking: {pct(result['exact_ranking_accuracy'])} of {result['groups']} groups")
    categories: dict[str, Any] = result.get("categories") or {}  # type: ignore[assignment]
    for name, figures in categories.items():
        print(
            f"  {name}: {figures['n']} pairs, accuracy {pct(figures['accuracy'])}, "
            f"release {pct(figures['release_accuracy'])}"
        )
    print(f"headline ({result['rules']}): {pct(result['accuracy'])}; rule: {result['rule']}")
    print(f"prompts: {result['prompts'] or 'none (the critic reads typed requests)'}; written to {result['out']} "
          "(eval.json, judgements.jsonl, report.html)")  # fmt: skip


def _register() -> None:
    """Every command, its flags generated from its config dataclasses."""
    config_command(
        app,
        "critique",
        [CritiqueCommand],
        _critique,
        "Critique one image: per-aspect justifications and 1-4 scores, a reward, and a refined request. Exits 1 when "
        "the critic abstains (the abstention is printed, as JSON with --json), 2 on bad input.",
    )
    config_command(
        app,
        "compare",
        [CompareCommand],
        _compare,
        "Compare two images for one request; the summed per-aspect scores decide the preferred one. Exits 1 when the "
        "critic abstains, 2 on bad input.",
    )
    config_command(
        app,
        "refine",
        [RefineInputs, RefineJob],
        _refine,
        "Generate, critique and refine: one prompt or a suite, with a resumable run directory and an HTML report.",
    )
    config_command(app, "demo", [DemoCommand], _demo, DEMO_HELP)
    config_command(app, "report", [ReportCommand], _report, "Re-render a run's HTML report.")
    config_command(
        app,
        "parrot",
        [ParrotJob],
        _parrot,
        "PARROT: explain known preferences with a teacher, keep the rationales that predict the label, export SFT "
        "data.",
    )
    config_command(
        app,
        "eval",
        [EvalJob],
        _eval,
        "Pairwise preference accuracy of a critic: summed scores decide. --rules ours (default) counts ties and "
        "abstentions apart; --rules release follows the release's accounting (2.5 for a missing score) so the figure "
        "can stand beside published ones. Writes eval.json and judgements.jsonl under --out.",
    )
    config_command(
        app,
        "merge",
        [MergeCommand],
        _merge,
        "Join the run directories of one job's shards (`--shard i/N`) into one run directory, summary and report.",
    )
    config_command(
        app,
        "serve",
        [ServeConfig],
        _serve,
        "Serve a critic with `vllm serve` and the paper's flags (GPU machines; needs the `serve` extra with vLLM).",
        [
            flag(
                "log_file",
                Annotated[Path, typer.Option(help="Where the server's output goes.")],
                Path("vllm-serve.log"),
            ),
            flag(
                "dry_run",
                Annotated[bool, typer.Option("--dry-run", help="Print the command instead of running it.")],
                False,
            ),
        ],
    )
    config_command(
        app,
        "serve-generator",
        [ServeGeneratorCommand],
        _serve_generator,
        "Serve a generator over the OpenAI Images API (POST /v1/images/generations and /v1/images/edits, GET "
        "/v1/models, GET /health), with request batching; use it with `--generator http://HOST:PORT` (repeat for "
        "several servers).",
        json=False,
    )
    config_command(
        app,
        "serve-refiner",
        [ServeRefinerCommand],
        _serve_refiner,
        "Serve Generate-Critique-Refine over the OpenAI Images API: an application's unchanged images.generate / "
        "images.edit call gets the refined image, with the critique, scores and rounds in extra fields "
        "(`rationalrewards`, `revised_prompt`) that a plain client ignores.",
        json=False,
    )
    config_command(
        app,
        "serve-reward",
        [ServeRewardCommand],
        _serve_reward,
        "Serve a critic as the remote reward RL frameworks call (POST /compute with prompts and base64 images, "
        'answering {"rewards": [...]}; GET /health): our parsing and abstention, with a mask and per-aspect scores '
        "beside the rewards.",
        json=False,
    )
    config_command(
        app,
        "ui",
        [UiCommand],
        _ui,
        "An interactive page (pip install 'rationalrewards[ui]'): type a prompt, pick generator, critic and preset, "
        "and watch each round appear with its images, scores, justifications and refined prompt; or critique an "
        "uploaded image. Runs on the sketch world with no set-up.",
        json=False,
    )
    config_command(
        app,
        "mcp",
        [McpCommand],
        _mcp,
        "Serve the critic (and with --generator the refine loop) as MCP tools over stdio or streamable HTTP: "
        "critique_image, compare_images, refine_image; images as file paths, file:// URIs or data: URLs.",
        json=False,
    )
    config_command(
        app,
        "tiny",
        [TinyCommand],
        _tiny,
        "Build a tiny random Qwen-VL critic from config (for testing pipelines offline; its critiques are noise).",
    )


DEMO_HELP = (
    "The main job on the embedded default: the built-in sketch suite through the paper and deep GCR presets. With "
    '--json: both presets under "paper" and "deep"; the top-level figures (n, reward_initial, reward_final, '
    "accuracy_initial, accuracy_final, per_tag, report) are the deep run's."
)


def _mount() -> None:
    """The commands kept in their own modules (distillation, RL, experiments) and every world's own commands."""
    from rationalrewards.agents.world import world_named, world_names
    from rationalrewards.cli import _distill, _experiments, _rl

    app.add_typer(_distill.app, name="distill")
    _rl.register(app)
    app.add_typer(_experiments.app, name="experiment")
    for name in world_names():
        commands = world_named(name).commands()
        if commands is not None:
            app.add_typer(commands, name=name)


_register()
_mount()

# What a user's mistake looks like at the boundary: bad input, a file, a refused request, a missing extra.
_USER_ERRORS = (RewardModelError, ValueError, OSError, ImportError)


def _missing_extra(error: ImportError) -> str:
    """One line naming the extra that brings a missing optional dependency."""
    from rationalrewards.plumbing.extras import extra_for

    return extra_for(error)


def _parser_complaint(error: Exception) -> bool:
    """A complaint of the argument parser (a bad flag, a missing argument, a value not among the choices). Told by
    class name: typer ships its own copy of click, whose exception classes are private to it."""
    return any(cls.__name__ == "ClickException" for cls in type(error).__mro__)


def main() -> None:
    """The console script: the app behind one error boundary (the parser's own complaints included)."""
    try:
        code = app(prog_name="rationalrewards", standalone_mode=False)
    except typer.Abort:
        err.print("[yellow]interrupted[/]")
        sys.exit(130)
    except _USER_ERRORS as e:
        message = _missing_extra(e) if isinstance(e, ImportError) else str(e)
        err.print(f"[bold red]error:[/] {escape(redact(message))}")  # brackets are not rich markup here
        sys.exit(2)
    except Exception as e:
        if not _parser_complaint(e):
            raise
        context = getattr(e, "ctx", None)
        if type(e).__name__ == "NoArgsIsHelpError":  # a bare group: its help, as the parser would show it
            print(e.format_message())  # type: ignore[attr-defined]  # every click exception has it
            sys.exit(2)
        hint = f" (see `{context.command_path} --help`)" if context is not None else ""
        message = e.format_message().replace("Value error, ", "")  # type: ignore[attr-defined]  # pydantic's prefix
        err.print(f"[bold red]error:[/] {escape(redact(message))}{escape(hint)}")
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/] (rerun the same command to resume a run)")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
