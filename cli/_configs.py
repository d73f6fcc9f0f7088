"""Configs of the commands that are only a command line (`critique`, `compare`, `serve-generator`, ...): one frozen
dataclass each, help in field metadata, flags generated from them (`cli/_options.py`). The jobs' own configs live
beside the jobs (`runtime/job_configs.py`, `rewardmodel/serve.py`, `training/*_config.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rationalrewards.graphs.gcr_config import Preset

if TYPE_CHECKING:
    from rationalrewards.plumbing.serving import EdgeLimits
from rationalrewards.plumbing.choices import check_choices
from rationalrewards.rewardmodel.prompts import PromptChoice
from rationalrewards.rewardmodel.scoring import RewardPolicy
from rationalrewards.rewardmodel.tiny import Family
from rationalrewards.runtime.job_configs import CRITIC_HELP, MAX_TOKENS_HELP, PROMPTS_HELP, SAMPLES_HELP

_PROMPT = {"help": "The request the image(s) were made for.", "flag": ("--prompt", "-p")}
_SOURCE = {"help": "Source image: makes this an edit (critique or comparison)."}
_MODEL = {"help": "Served model name (default: the server's first)."}
_TIMEOUT = {"help": "Seconds for the whole request to an HTTP critic, retries included (default 300)."}
_MAX_PIXELS = {"help": "Largest image read, in pixels (default 64,000,000; $RATIONALREWARDS_MAX_IMAGE_PIXELS)."}


@dataclass(frozen=True, kw_only=True)
class JudgeCommand:
    """What `critique` and `compare` share: the critic and how it is asked."""

    prompt: str = field(metadata=_PROMPT)
    source: Path | None = field(default=None, metadata=_SOURCE)
    critic: str = field(default="sketch", metadata={"help": CRITIC_HELP})
    model: str | None = field(default=None, metadata=_MODEL)
    prompts: PromptChoice = field(default="auto", metadata={"help": PROMPTS_HELP})
    max_tokens: int | None = field(default=None, metadata={"help": MAX_TOKENS_HELP})
    samples: int = field(default=1, metadata={"help": SAMPLES_HELP})
    timeout: float | None = field(default=None, metadata=_TIMEOUT)
    max_image_pixels: int | None = field(default=None, metadata=_MAX_PIXELS)

    def __post_init__(self) -> None:
        check_choices(self)


@dataclass(frozen=True, kw_only=True)
class CritiqueCommand(JudgeCommand):
    image: Path = field(metadata={"help": "The generated (or edited) image.", "argument": True})
    refine: bool = field(default=True, metadata={"help": "Ask for the refinement section."})
    policy: RewardPolicy = field(default="paper", metadata={"help": "How aspect scores make one reward."})


@dataclass(frozen=True, kw_only=True)
class CompareCommand(JudgeCommand):
    image_a: Path = field(metadata={"help": "Image A.", "argument": True})
    image_b: Path = field(metadata={"help": "Image B.", "argument": True})


@dataclass(frozen=True, kw_only=True)
class ServerEdge:
    """What every server command takes at its edge (`plumbing/serving.py`): where it listens and who may call it.
    A subclass gives its own `port` (and may change the `request_timeout` default)."""

    host: str = field(default="127.0.0.1", metadata={"help": "Interface to listen on (0.0.0.0 for other machines)."})
    api_key: str | None = field(
        default=None,
        metadata={
            "help": "Clients must send Authorization: Bearer KEY (better: $RATIONALREWARDS_SERVE_API_KEY, which ps "
            "does not show). Required to bind beyond loopback."
        },
    )
    max_connections: int = field(default=512, metadata={"help": "Connections at once; the stalest idle one goes."})
    request_timeout: float = field(default=30.0, metadata={"help": "Seconds a client has to send one request."})

    def __post_init__(self) -> None:
        port = int(getattr(self, "port", 0))
        if not 0 < port < 65536:
            raise ValueError(f"--port must be in 1..65535, got {port}")

    def edge_limits(self) -> EdgeLimits:
        from rationalrewards.plumbing.serving import EdgeLimits

        return EdgeLimits(max_connections=self.max_connections, request_timeout=self.request_timeout)


@dataclass(frozen=True)
class ServeGeneratorCommand(ServerEdge):
    pipeline: str = field(
        metadata={
            "help": "A world's generator (sketch, sketch-flow), or a local diffusers pipeline directory.",
            "argument": True,
        }
    )
    port: int = field(default=8100, metadata={"help": "Port to listen on."})
    work_dir: Path = field(
        default=Path("generator-server"), metadata={"help": "Where generated and uploaded images are kept."}
    )
    device: str = field(default="cpu", metadata={"help": "Device for a diffusers pipeline (cpu, cuda, cuda:1)."})
    lora: str | None = field(default=None, metadata={"help": "A LoRA directory for a diffusers pipeline."})
    latency: float = field(
        default=0.0, metadata={"help": "Benchmarks: seconds per image, one call at a time (a stand-in for a busy GPU)."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.latency < 0:
            raise ValueError("--latency is seconds per image, 0 or more")


@dataclass(frozen=True)
class TinyCommand:
    directory: Path = field(metadata={"help": "Where to save the model directory.", "argument": True})
    family: Family = field(default="qwen2_vl", metadata={"help": "The Qwen-VL family to build."})
    seed: int = field(default=0, metadata={"help": "Weight seed."})

    def __post_init__(self) -> None:
        check_choices(self)


@dataclass(frozen=True)
class DemoCommand:
    out: Path = field(default=Path("demo_out"), metadata={"help": "Directory for the two runs and their reports."})


@dataclass(frozen=True)
class ReportCommand:
    run_dir: Path = field(metadata={"help": "A run directory written by `refine` or `demo`.", "argument": True})


@dataclass(frozen=True)
class MergeCommand:
    run_dirs: tuple[Path, ...] = field(
        metadata={"help": "The shards' run directories (refine or parrot).", "argument": True}
    )
    out: Path = field(metadata={"help": "The merged run directory (built beside it, then moved into place)."})
    partial: bool = field(
        default=False,
        metadata={"help": "Merge the shards there are, complete or not; the summary lists what is missing."},
    )
    force_new: bool = field(
        default=False, metadata={"help": "Replace a non-empty --out (the old one is moved aside, never deleted)."}
    )


@dataclass(frozen=True)
class RefineInputs:
    """What a `refine` run reads (the rest of its flags are `RefineJob`'s)."""

    prompt: str | None = field(default=None, metadata={"help": "One prompt (or use --suite).", "argument": True})
    suite: Path | None = field(
        default=None,
        metadata={"help": "JSONL suite: one prompt per line (GenEval fields = ground truth)."},
    )
    source: Path | None = field(default=None, metadata={"help": "Source image: PROMPT is then an edit instruction."})
    seed: int = field(default=0, metadata={"help": "Base seed for a single prompt."})

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.suite is None):
            raise ValueError("give either a PROMPT or --suite FILE")


@dataclass(frozen=True, kw_only=True)
class ServeRefinerCommand(ServerEdge):
    generator: str = field(
        default="sketch",
        metadata={
            "help": "The generator spec, as `refine --generator` (sketch, a pipeline directory, served URLs, py:)."
        },
    )
    critic: str = field(default="sketch", metadata={"help": CRITIC_HELP, "repeat": True})
    preset: Preset = field(
        default="deep", metadata={"help": "GCR preset for every request (a request may name its own)."}
    )
    model: str | None = field(default=None, metadata=_MODEL)
    prompts: PromptChoice = field(default="auto", metadata={"help": PROMPTS_HELP})
    max_tokens: int | None = field(default=None, metadata={"help": MAX_TOKENS_HELP})
    samples: int = field(default=1, metadata={"help": SAMPLES_HELP})
    port: int = field(default=8200, metadata={"help": "Port to listen on."})
    work_dir: Path = field(default=Path("refiner-server"), metadata={"help": "Where images (and uploads) are kept."})
    device: str = field(default="cpu", metadata={"help": "Device for a diffusers pipeline (cpu, cuda, cuda:1)."})
    lora: str | None = field(default=None, metadata={"help": "A LoRA directory for a diffusers pipeline."})
    max_in_flight: int = field(default=32, metadata={"help": "Images refined at once."})
    queue: int = field(default=64, metadata={"help": "Images waiting beyond those; more are answered 429."})
    trace: Path | None = field(default=None, metadata={"help": "Also write every node of every run to this JSONL."})

    def __post_init__(self) -> None:
        check_choices(self)
        super().__post_init__()


@dataclass(frozen=True, kw_only=True)
class ServeRewardCommand(ServerEdge):
    critic: str = field(default="sketch", metadata={"help": CRITIC_HELP, "repeat": True})
    model: str | None = field(default=None, metadata=_MODEL)
    prompts: PromptChoice = field(default="auto", metadata={"help": PROMPTS_HELP})
    max_tokens: int | None = field(default=None, metadata={"help": MAX_TOKENS_HELP})
    samples: int = field(default=1, metadata={"help": SAMPLES_HELP})
    policy: RewardPolicy = field(default="paper", metadata={"help": "How aspect scores make one reward."})
    fallback: float | None = field(
        default=None,
        metadata={
            "help": "The reward an abstained sample gets in `rewards` (its mask is 0): default the mean of the "
            "request's scored samples (0.5 when none scored)."
        },
    )
    image_dir: Path | None = field(
        default=None, metadata={"help": "A world critic: where it finds the images it made, by content."}
    )
    concurrency: int = field(default=32, metadata={"help": "Requests in flight to an HTTP critic."})
    port: int = field(default=8300, metadata={"help": "Port to listen on."})
    request_timeout: float = field(default=60.0, metadata={"help": "Seconds a client has to send one request."})

    def __post_init__(self) -> None:
        check_choices(self)
        super().__post_init__()


@dataclass(frozen=True, kw_only=True)
class UiCommand:
    port: int = field(default=7860, metadata={"help": "Port to listen on."})
    host: str = field(default="127.0.0.1", metadata={"help": "Interface to listen on (loopback: this machine only)."})
    work_dir: Path = field(default=Path("ui-images"), metadata={"help": "Where generated images are kept."})

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"--port must be in 1..65535, got {self.port}")


@dataclass(frozen=True, kw_only=True)
class McpCommand:
    critic: str = field(default="sketch", metadata={"help": CRITIC_HELP})
    generator: str | None = field(
        default=None,
        metadata={
            "help": "A generator spec (as `refine --generator`) to also offer the refine_image tool; none: critique "
            "and compare only."
        },
    )
    transport: Literal["stdio", "http"] = field(
        default="stdio",
        metadata={"help": "stdio (the client starts this command) or http (streamable HTTP at http://HOST:PORT/mcp)."},
    )
    host: str = field(default="127.0.0.1", metadata={"help": "HTTP: the interface to listen on."})
    port: int = field(default=8765, metadata={"help": "HTTP: the port to listen on."})
    api_key: str | None = field(
        default=None,
        metadata={
            "help": "HTTP: clients must send Authorization: Bearer KEY (better: $RATIONALREWARDS_MCP_API_KEY). "
            "Required to listen beyond loopback."
        },
    )
    work_dir: Path = field(default=Path("mcp-images"), metadata={"help": "Where refine_image keeps its images."})
    model: str | None = field(default=None, metadata=_MODEL)
    prompts: PromptChoice = field(default="auto", metadata={"help": PROMPTS_HELP})
    max_tokens: int | None = field(default=None, metadata={"help": MAX_TOKENS_HELP})
    policy: RewardPolicy = field(default="paper", metadata={"help": "How aspect scores make one reward."})

    def __post_init__(self) -> None:
        check_choices(self)
