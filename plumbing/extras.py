"""Optional dependencies: which extra brings a module, so a missing one is reported in one line that says what to
install (never a traceback ending in an install hint)."""

from __future__ import annotations

# top-level module -> the extra of `pip install 'rationalrewards[EXTRA]'` that installs it
EXTRAS = {
    "torch": "torch",
    "transformers": "torch",
    "accelerate": "torch",
    "safetensors": "torch",
    "tokenizers": "torch",
    "gguf": "torch",
    "diffusers": "train",
    "peft": "train",
    "trl": "train",
    "datasets": "train",
    "tensorboard": "train",
    "vllm": "serve",
    "psycopg": "postgres",
    "psycopg_pool": "postgres",
    "ray": "ray",
    "mcp": "integrations",
    "pydantic_ai": "integrations",
    "agents": "integrations",  # the OpenAI Agents SDK's module
    "gradio": "ui",
    "rapidocr_onnxruntime": "ocr",
}
_NESTED = {"langgraph.checkpoint.postgres": "postgres", "opentelemetry.sdk": "otel", "opentelemetry.exporter": "otel"}


def extra_of(module: str) -> str | None:
    """The extra that installs `module` (a dotted name), or None when no extra does."""
    for prefix, extra in _NESTED.items():
        if module == prefix or module.startswith(prefix + "."):
            return extra
    return EXTRAS.get(module.split(".")[0])


def extra_for(error: ImportError) -> str:
    """A one-line message for an import that failed: the module, and the extra to install when one brings it."""
    module = error.name or ""
    extra = extra_of(module)
    if extra is None:
        return f"cannot import {module or 'a module'}: {error}"
    nested = next((prefix for prefix in _NESTED if module == prefix or module.startswith(prefix + ".")), None)
    return f"{nested or module.split('.')[0]} is not installed: pip install 'rationalrewards[{extra}]'"


__all__ = ["EXTRAS", "extra_for", "extra_of"]
