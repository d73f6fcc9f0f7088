"""The sketch world's own commands (`rationalrewards sketch ...`), mounted by the command line through the world
interface. Errors are raised as ValueError; the command line's boundary turns them into one `error:` line."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Literal

import typer

app = typer.Typer(
    help="The sketch world: read prompts, render images with ground truth, make suites.", no_args_is_help=True
)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def _emit(payload: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")


def _image_path(path: Path) -> Path:
    """An --out that names an image file: a directory or an unknown extension is refused up front, by name."""
    if path.is_dir() or not path.suffix:
        raise ValueError(
            f"--out {path} is a directory or has no extension: give an image file path such as {path / 'sheet.png'}"
        )
    if path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        raise ValueError(f"--out {path} has the extension {path.suffix!r}: use .png, .jpg or .webp")
    return path


@app.command("parse")
def parse(
    prompt: Annotated[str, typer.Argument(help="A text-to-image prompt.")],
    as_json: JsonFlag = False,
) -> None:
    """Print the exact spec of a prompt in the GenEval metadata schema."""
    from rationalrewards.sketch.spec import read_prompt

    reading = read_prompt(prompt)
    spec = reading.spec.model_dump()
    if as_json:
        _emit(spec)
        return
    print(json.dumps(spec, indent=1))
    for note in reading.notes:
        print(f"note: {note}", file=sys.stderr)


@app.command("render")
def render(
    prompt: Annotated[str, typer.Argument(help="A text-to-image prompt, or an edit instruction with --source.")],
    seed: Annotated[int, typer.Option(help="Seed: same prompt and seed, same image.")] = 0,
    out: Annotated[
        Path, typer.Option("--out", help="PNG path; the scene graph goes beside it as <stem>.scene.json.")
    ] = Path("sketch.png"),
    size: Annotated[int, typer.Option(help="Square image size in pixels.")] = 256,
    source: Annotated[Path | None, typer.Option("--source", help="A sketch image to edit (with its sidecar).")] = None,
    perfect: Annotated[bool, typer.Option("--perfect", help="No misreading and no artifacts.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Render a prompt in the sketch world and write the image with its scene-graph sidecar."""
    from rationalrewards.rewardmodel.images import image_ref_from_path
    from rationalrewards.sketch.failures import FailureModel
    from rationalrewards.sketch.generator import SketchGenerator

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


@app.command("suite")
def suite(
    out: Annotated[Path, typer.Option("--out", help="JSONL file to write.")],
    n: Annotated[int, typer.Option("--n", min=1, help="Number of prompts.")] = 300,
    seed: Annotated[int, typer.Option(help="Suite seed.")] = 0,
    kind: Annotated[
        Literal["t2i", "paraphrase", "edit", "demo"],
        typer.Option(help="t2i (GenEval phrasing, 7 tags), paraphrase, edit, or demo."),
    ] = "t2i",
    as_json: JsonFlag = False,
) -> None:
    """Write a prompt suite (GenEval schema; the spec fields are the ground truth)."""
    from rationalrewards.agents.suite import write_jsonl
    from rationalrewards.sketch.suites import suite_of_kind

    rows = suite_of_kind(kind, n, seed)
    write_jsonl(rows, out)
    _emit({"out": str(out), "n": len(rows), "kind": kind}) if as_json else print(f"wrote {len(rows)} prompts to {out}")


@app.command("sheet")
def sheet(
    out: Annotated[Path, typer.Option("--out", help="PNG path of the contact sheet.")] = Path("docs/sketch_world.png"),
    as_json: JsonFlag = False,
) -> None:
    """Render the demo suite as a contact sheet with specs, generator errors and ground-truth verdicts."""
    from rationalrewards.sketch.sheet import contact_sheet
    from rationalrewards.sketch.suites import DEMO_SUITE

    with tempfile.TemporaryDirectory() as tmp:
        path = contact_sheet(list(DEMO_SUITE), _image_path(out), workdir=tmp)
    _emit({"out": str(path)}) if as_json else print(f"wrote {path}")
