"""Launch a critic with `vllm serve` using the paper's flags (docs/method.md, "Transport facts") and wait until healthy.

vLLM is a GPU-only optional extra (`pip install rationalrewards[serve]`); building the command needs nothing, so it
is tested everywhere, and `launch` accepts any executable that speaks the same HTTP API.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from rationalrewards.rewardmodel.errors import RewardServerError


@dataclass(frozen=True)
class ServeConfig:
    """How to serve a critic; `rationalrewards serve` takes every field as a flag."""

    checkpoint: str = field(metadata={"help": "Checkpoint directory or hub id for vLLM.", "argument": True})
    served_model_name: str = field(
        default="",
        metadata={
            "help": "Name clients send as `model` (default: rationalrewards, or house-critic for a checkpoint whose "
            "rationalrewards.json declares the house prompts: clients with --prompts auto pick the profile by name)."
        },
    )
    host: str = field(default="127.0.0.1", metadata={"help": "Listen address."})
    port: int = field(default=6868, metadata={"help": "Port (the release used 6868)."})
    max_model_len: int = field(
        default=40960, metadata={"help": "Longest prompt + answer in tokens (the release: 40960)."}
    )
    max_images_per_prompt: int = field(default=16, metadata={"help": "Images per request (pairwise edits send 3)."})
    data_parallel_size: int = field(
        default=1, metadata={"help": "vLLM data-parallel replicas.", "flag": "--data-parallel"}
    )
    tensor_parallel_size: int = field(
        default=1, metadata={"help": "vLLM tensor-parallel size.", "flag": "--tensor-parallel"}
    )
    gpu_memory_utilization: float | None = field(default=None, metadata={"help": "vLLM's share of GPU memory."})
    extra_args: tuple[str, ...] = field(default_factory=tuple, metadata={"cli": False})
    executable: str = field(default="vllm", metadata={"cli": False})

    def __post_init__(self) -> None:
        if not self.served_model_name:
            object.__setattr__(self, "served_model_name", default_served_name(self.checkpoint))
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be in 1..65535, got {self.port}")
        if self.data_parallel_size < 1 or self.tensor_parallel_size < 1:
            raise ValueError("data_parallel_size and tensor_parallel_size must be at least 1")
        if self.max_images_per_prompt < 1:
            raise ValueError("max_images_per_prompt must be at least 1 (pairwise edit critiques send 3 images)")

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"


def default_served_name(checkpoint: str) -> str:
    """`rationalrewards` (clients under `--prompts auto` then send the released checkpoints' format), unless the
    checkpoint declares it was trained on the house prompts."""
    from rationalrewards.rewardmodel.prompts import declared_profile

    declared = declared_profile(checkpoint) if Path(checkpoint).is_dir() else None
    return "house-critic" if declared == "house" else "rationalrewards"


def vllm_command(config: ServeConfig) -> list[str]:
    """The `vllm serve` argv the released checkpoints were served with, plus parallelism and extra flags."""
    command = [
        config.executable,
        "serve",
        config.checkpoint,
        "--served-model-name",
        config.served_model_name,
        "--host",
        config.host,
        "--port",
        str(config.port),
        "--max-model-len",
        str(config.max_model_len),
        "--limit-mm-per-prompt",
        json.dumps({"image": config.max_images_per_prompt}),
    ]
    if config.data_parallel_size > 1:
        command += ["--data-parallel-size", str(config.data_parallel_size)]
    if config.tensor_parallel_size > 1:
        command += ["--tensor-parallel-size", str(config.tensor_parallel_size)]
    if config.gpu_memory_utilization is not None:
        command += ["--gpu-memory-utilization", str(config.gpu_memory_utilization)]
    return command + list(config.extra_args)


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    config: ServeConfig
    log_path: Path

    def stop(self, timeout: float = 30.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def launch(
    config: ServeConfig, log_path: str | Path, *, command: list[str] | None = None, health_timeout: float = 900.0
) -> ServerProcess:
    """Start the server, wait for `/health`, return the handle. The server's output goes to `log_path`."""
    argv = command or vllm_command(config)
    if shutil.which(argv[0]) is None and not Path(argv[0]).exists():
        raise RewardServerError(
            f"{argv[0]!r} not found; vLLM is an optional GPU extra: pip install 'rationalrewards[serve]'"
        )
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT)
    server = ServerProcess(process=process, config=config, log_path=log_path)
    from rationalrewards.rewardmodel.backends.openai_compat import OpenAICompatibleRewardModel  # aiohttp: only here

    client = OpenAICompatibleRewardModel(config.base_url, config.served_model_name)

    async def _wait() -> None:
        task = asyncio.create_task(client.wait_until_healthy(health_timeout))
        while not task.done():
            if process.poll() is not None:
                task.cancel()
                raise RewardServerError(
                    f"server exited with code {process.returncode} before it was healthy; see {log_path}"
                )
            await asyncio.sleep(0.2)
        await task

    try:
        asyncio.run(_wait())
    except BaseException:
        server.stop()
        raise
    return server


def command_line(config: ServeConfig) -> str:
    return shlex.join(vllm_command(config))
