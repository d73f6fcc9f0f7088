"""`rationalrewards experiment ...`: the experiments that reproduce the paper's claims, their flags generated from
their settings dataclasses. Every settings flag is optional on the command line: what is not given keeps the
settings' default, or the `--smoke` run's (a minutes-long run of every stage whose figures mean nothing)."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from rationalrewards.cli._options import command, flag, json_flag, params_from, split

app = typer.Typer(
    help="Experiments that reproduce the paper's claims in the sketch world, with models our code trains.",
    no_args_is_help=True,
)

Out = Annotated[Path, typer.Option("--out", help="Output directory (a rerun into it continues a stopped run).")]
Smoke = Annotated[bool, typer.Option("--smoke", help="A minutes-long run of every stage (figures mean nothing).")]
Docs = Annotated[
    Path | None, typer.Option("--docs", help="Also copy the report and figures into this folder (e.g. docs).")
]


def _settings_params(settings: type) -> list[inspect.Parameter]:
    """The settings' fields as optional flags, each help ending with the settings' default."""
    params = params_from(settings, defaults={f.name: None for f in dataclasses.fields(settings)})
    for param, item in zip(
        params, [f for f in dataclasses.fields(settings) if f.metadata.get("cli") is not False], strict=True
    ):
        default = item.default if item.default is not dataclasses.MISSING else None
        for info in getattr(param.annotation, "__metadata__", ()):
            if getattr(info, "help", None):
                info.help += f" [default: {list(default) if isinstance(default, tuple) else default}]"
    return params


def _settings(settings: Any, smoke: bool, given: dict[str, object]) -> Any:
    return settings.smoke(**given) if smoke else settings(**given)


def _show_report(out: Path, results: dict[str, object]) -> None:
    del results
    print((out / "report.md").read_text())
    print(f"report: {out / 'report.md'}")


def _experiment(
    name: str,
    settings: type,
    run: Callable[..., dict[str, object]],
    doc: str,
    extra: list[inspect.Parameter],
    show: Callable[[Path, dict[str, object]], None] = _show_report,
) -> None:
    """Register `experiment NAME`: `run(out, settings, docs=..., **extra flags)` under --out/--smoke/--docs/--json;
    `show` prints the result for people."""
    from rationalrewards.cli._flags import emit, stdout_for_json

    def body(out: Path, smoke: bool, docs: Path | None, as_json: bool, **flags: object) -> None:
        knobs, rest = split(flags, settings)
        given = {name: value for name, value in knobs.items() if value is not None}
        with stdout_for_json(as_json):  # the trainers print their logs to stdout; --json keeps stdout to one object
            results = run(out, given, smoke=smoke, docs=docs, **rest)
        emit(results) if as_json else show(out, results)

    params = [
        flag("out", Out, ...),
        *_settings_params(settings),
        *extra,
        flag("smoke", Smoke, False),
        flag("docs", Docs, None),
        json_flag(),
    ]
    command(app, name, body, params, doc)


def _parrot_ablation(
    out: Path, given: dict[str, object], *, smoke: bool, docs: Path | None, jobs: int
) -> dict[str, object]:
    from rationalrewards.experiments.parrot_ablation import copy_to_docs, run_ablation
    from rationalrewards.experiments.settings import AblationSettings

    results = run_ablation(out, _settings(AblationSettings, smoke, given), jobs=jobs)
    if docs is not None:
        copy_to_docs(out, docs)
    return results


def _reward_hacking(
    out: Path, given: dict[str, object], *, smoke: bool, docs: Path | None, seed_count: int | None
) -> dict[str, object]:
    from rationalrewards.experiments.reward_hacking import copy_to_docs, run_reward_hacking
    from rationalrewards.experiments.settings import HackingSettings

    if seed_count is not None:
        if "seeds" in given:
            raise ValueError("give --seeds N or --seed S (repeated), not both")
        given["seeds"] = tuple(range(seed_count))
    results = run_reward_hacking(out, _settings(HackingSettings, smoke, given))
    if docs is not None:
        copy_to_docs(out, docs)
    return results


def _train_generator(out: Path, given: dict[str, object], *, smoke: bool, docs: Path | None) -> dict[str, object]:
    from rationalrewards.experiments.settings import GeneratorSettings
    from rationalrewards.experiments.sketch_generator import train_sketch_generator

    if docs is not None:
        raise ValueError(
            "train-sketch-generator keeps its figures beside its pipeline (report.json); --docs is not used"
        )
    return train_sketch_generator(out, _settings(GeneratorSettings, smoke, given))


def _show_generator(out: Path, report: dict[str, Any]) -> None:
    for name, figures in report["evaluation"].items():
        print(
            f"{name}: colour {figures['color_accuracy']:.3f}, count {figures['count_accuracy']:.3f}, "
            f"both {figures['accuracy']:.3f} over {figures['images']} images"
        )
    print(f"pipeline: {report['pipeline']}  ({report['steps']} steps, {report['train_minutes']} min)")


def _register() -> None:
    from rationalrewards.experiments.settings import AblationSettings, GeneratorSettings, HackingSettings

    jobs = flag(
        "jobs",
        Annotated[
            int,
            typer.Option(
                "--jobs",
                min=1,
                help="Students trained and scored at once after the first, sharing the CPU's cores (the figures do "
                "not depend on it).",
            ),
        ],
        1,
    )
    seed_count = flag(
        "seed_count",
        Annotated[int | None, typer.Option("--seeds", min=1, help="Number of RL seeds (0 .. N-1), instead of --seed.")],
        None,
    )
    _experiment(
        "parrot-ablation",
        AblationSettings,
        _parrot_ablation,
        "PARROT vs direct distillation (the paper's Table 1 in miniature): students reading perception transcripts, "
        "evaluated on held-out pairs, then used as the critic of GCR.",
        [jobs],
    )
    _experiment(
        "reward-hacking",
        HackingSettings,
        _reward_hacking,
        "RL the 32-pixel sketch generator with a critique reward and with two scalar rewards (one exploitable, one a "
        "learned Bradley-Terry model); held-out colour and count accuracy read from pixels; GCR beside RL. A rerun "
        "into the same --out with the same settings continues where a stopped run ended.",
        [seed_count],
    )
    _experiment(
        "train-sketch-generator",
        GeneratorSettings,
        _train_generator,
        "Train the 32-pixel sketch generator (a tiny text-to-image flow-matching pipeline) on small-world renders, "
        "then judge its images with the pixel perception. Resumes from the output's checkpoint if one is there.",
        [],
        show=_show_generator,
    )


_register()
