"""The CLI (as users run it: a subprocess, JSON on stdout, clean errors) and the vLLM launcher."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import run_cli
from rationalrewards.rewardmodel import RewardServerError
from rationalrewards.rewardmodel.prompts import resolve_profile
from rationalrewards.rewardmodel.serve import ServeConfig, launch, vllm_command


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, check=check)


def test_critique_and_compare_json(png_file: Path) -> None:
    out = json.loads(_cli("critique", str(png_file), "--prompt", "a red ball", "--critic", "fake", "--json").stdout)
    assert out["kind"] == "critique" and set(out["scores"]) == {
        "text_faithfulness",
        "physical_quality",
        "text_rendering",
    }
    assert 0.0 <= out["reward"] <= 1.0
    edit = json.loads(
        _cli(
            "critique",
            str(png_file),
            "--prompt",
            "make it blue",
            "--source",
            str(png_file),
            "--critic",
            "fake",
            "--json",
        ).stdout
    )
    assert "image_faithfulness" in edit["scores"]
    pair = json.loads(
        _cli("compare", str(png_file), str(png_file), "--prompt", "a red ball", "--critic", "fake", "--json").stdout
    )
    assert pair["preferred"] == "tie"


@pytest.mark.slow
def test_bad_inputs_give_one_line_errors(tmp_path: Path, png_file: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    for args, message in [
        (("critique", str(notes), "--prompt", "x"), "not a readable image"),
        (("critique", str(tmp_path / "gone.png"), "--prompt", "x"), "not found"),
        (("critique", str(png_file), "--prompt", "  "), "prompt is empty"),
        (("critique", str(png_file), "--prompt", "x", "--critic", "nonsense"), "unknown critic"),
        (
            ("critique", str(png_file), "--prompt", "x", "--critic", "http://127.0.0.1:9", "--model", "m"),
            "connection failed",
        ),
    ]:
        result = _cli(*args, check=False)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
    foreign = _cli("critique", str(png_file), "--prompt", "a red ball", check=False)  # no sketch scene: it abstains
    assert foreign.returncode == 1 and "no scene-graph sidecar" in foreign.stderr and "Traceback" not in foreign.stderr


@pytest.mark.slow
def test_in_process_critic_abstains_with_exit_code_1(png_file: Path, tiny_vlm_dir: Path) -> None:
    # One rule with or without --json: an abstention is printed and the command exits 1 (2 is for bad input).
    result = _cli(
        "critique", str(png_file), "--prompt", "a red ball", "--critic", str(tiny_vlm_dir), "--json", check=False
    )
    out = json.loads(result.stdout)
    assert result.returncode == 1 and out["kind"] == "abstention" and out["reason"] in ("truncated", "parse_error")
    human = _cli("critique", str(png_file), "--prompt", "a red ball", "--critic", str(tiny_vlm_dir), check=False)
    assert human.returncode == 1 and "abstained" in human.stderr


def test_serve_dry_run_has_the_papers_flags() -> None:
    out = json.loads(
        _cli("serve", "/ckpt/RationalRewards-8B-T2I", "--data-parallel", "8", "--dry-run", "--json").stdout
    )
    assert out["command"].startswith("vllm serve /ckpt/RationalRewards-8B-T2I --served-model-name rationalrewards")
    for flag in (
        "--port 6868",
        "--max-model-len 40960",
        """--limit-mm-per-prompt '{"image": 16}'""",
        "--data-parallel-size 8",
    ):
        assert flag in out["command"]


def test_served_name_follows_the_checkpoints_declared_profile(tmp_path: Path) -> None:
    """A checkpoint trained on the house prompts is served under a name that `--prompts auto` reads as house; a
    release-format checkpoint (or one with no marker) keeps the release's name."""
    house, release = tmp_path / "house", tmp_path / "release"
    for directory, profile in ((house, "house"), (release, "release")):
        directory.mkdir()
        (directory / "rationalrewards.json").write_text(json.dumps({"prompt_profile": profile}))
    assert ServeConfig(checkpoint=str(house)).served_model_name == "house-critic"
    assert resolve_profile("auto", model_name="house-critic") == "house"
    assert ServeConfig(checkpoint=str(release)).served_model_name == "rationalrewards"
    assert ServeConfig(checkpoint="org/hub-id").served_model_name == "rationalrewards"
    assert ServeConfig(checkpoint=str(house), served_model_name="mine").served_model_name == "mine"


def test_launch_waits_for_health_and_stops(port: int, tmp_path: Path) -> None:
    config = ServeConfig(checkpoint="unused", port=port)
    # Any executable that speaks the API can stand in for vLLM on a machine without a GPU.
    server = launch(
        config,
        tmp_path / "serve.log",
        command=[sys.executable, "-m", "rationalrewards.rewardmodel.mock_server", "--port", str(port)],
        health_timeout=30,
    )
    try:
        import httpx

        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    finally:
        server.stop()
    assert server.process.poll() is not None


def test_launch_reports_early_exit_and_missing_vllm(port: int, tmp_path: Path) -> None:
    config = ServeConfig(checkpoint="unused", port=port)
    with pytest.raises(RewardServerError, match="exited with code 3"):
        launch(config, tmp_path / "serve.log", command=[sys.executable, "-c", "raise SystemExit(3)"], health_timeout=30)
    with pytest.raises(RewardServerError, match="optional GPU extra"):
        launch(ServeConfig(checkpoint="x", port=port, executable="vllm-not-installed-here"), tmp_path / "s.log")
    with pytest.raises(ValueError, match="port"):
        ServeConfig(checkpoint="x", port=0)
    assert "--tensor-parallel-size" in vllm_command(ServeConfig(checkpoint="x", tensor_parallel_size=2))
