"""The decoder-LLM cross-encoder: any Hugging Face causal LM reads the judge sequence (llm_text), a
3-way linear head reads its hidden state at the last real token; LoRA adapters (peft) are the only
trained backbone weights.

    logits (B, 3) = head(backbone(input_ids, attention_mask).last_hidden_state[b, last real token of b])

Sequences are padded on the right (collate.pad_right) for every family: causal attention keeps real
tokens blind to the pads after them, and the pooled position is read from the attention mask, so the
tokenizer's own padding side does not matter. A tokenizer without a pad token pads with <eos>.

Checkpoints hold the trainable weights only (adapters + head): `best.safetensors` with the settings
in its metadata; the base model is reloaded from llm.backbone.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save
from torch import nn
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer

from .backbone import _load
from .checkpoint import save_atomic
from .collate import SequenceColumns, sorted_batches
from .infer import PairPredictions, _softmax64
from .labels import N_CLASSES
from .loop import ModelIO
from .params import LlmParams
from .precision import Precision, autocast
from .swap import swap_probs

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
SAFETENSORS_METADATA_KEY = "arena_pref"


def _source(backbone: str) -> tuple[str, dict]:
    """(directory or hub id, extra from_pretrained kwargs): a .gguf file loads as its directory + gguf_file
    (transformers dequantizes it; needs the `gguf` package)."""
    path = Path(backbone)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise FileNotFoundError(f"llm.backbone={backbone!r}: no such GGUF file")
        return str(path.parent), {"gguf_file": path.name}
    return backbone, {}


def load_llm_tokenizer(backbone: str, revision: str):
    """The backbone's tokenizer, padding on the right, with a pad token (<eos> when it has none)."""
    name, extra = _source(backbone)
    tokenizer = _load(lambda n, **kw: AutoTokenizer.from_pretrained(n, **extra, **kw), name, revision, "tokenizer",
                      key="llm.backbone")
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token_id is None:
            raise ValueError(f"llm.backbone={backbone!r}: the tokenizer has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer


def quantization_config(kind: str, device: torch.device, compute_dtype: torch.dtype):
    """BitsAndBytesConfig for llm.quantization (None for "none"); 4/8-bit loading needs CUDA and the
    optional bitsandbytes package, which requirements.txt leaves out."""
    if kind == "none":
        return None
    if device.type != "cuda":
        raise ValueError(f"llm.quantization={kind} needs a CUDA device (bitsandbytes); on CPU use none")
    try:
        import bitsandbytes  # noqa: F401  (only checks that it is installed)
    except ImportError as err:
        raise RuntimeError(f"llm.quantization={kind} needs the optional package bitsandbytes: "
                           "pip install bitsandbytes (CUDA only), or set llm.quantization=none") from err
    from transformers import BitsAndBytesConfig
    if kind == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype)


def load_llm_backbone(m: LlmParams, device: torch.device, precision: Precision) -> nn.Module:
    """The pretrained decoder (no LM head) in llm.base_dtype, quantized when asked, frozen."""
    if m.base_dtype != "fp32" and precision.autocast_dtype is None:
        raise ValueError(f"llm.base_dtype={m.base_dtype} needs autocast: set llm.precision to bf16 or fp16 (or auto "
                         "on CUDA), or llm.base_dtype=fp32")
    name, extra = _source(m.backbone)
    quantization = quantization_config(m.quantization, device, precision.autocast_dtype or torch.float32)
    if quantization is not None:
        extra = extra | {"quantization_config": quantization, "device_map": {"": device.index or 0}}
    model = _load(lambda n, **kw: AutoModel.from_pretrained(n, dtype=DTYPES[m.base_dtype], **extra, **kw),
                  name, m.revision, "model weights", key="llm.backbone")
    if quantization is not None:
        from peft import prepare_model_for_kbit_training
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=m.gradient_checkpointing)
    model.config.use_cache = False  # no generation: a KV cache would only cost memory
    return model


class LlmPairClassifier(nn.Module):
    """Backbone (LoRA-wrapped decoder) + linear 3-way head on the last real token; forward(input_ids,
    attention_mask) of right-padded (B, L) batches -> logits (B, 3), class order (A wins, B wins, tie)."""

    def __init__(self, backbone: nn.Module, hidden_size: int):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(hidden_size, N_CLASSES)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        last = attention_mask.sum(dim=1) - 1  # right padding: the last real token of each row
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        return self.head(pooled.to(self.head.weight.dtype))


def with_lora(backbone: nn.Module, m: LlmParams, seed: int) -> LlmPairClassifier:
    """Wrap `backbone` with fresh LoRA adapters (llm.lora_*) and add a head, both drawn from `seed` and
    kept in fp32 (master weights: AdamW updates on fp16 weights round away, GradScaler refuses fp16 grads)."""
    from peft import LoraConfig, get_peft_model
    torch.manual_seed(seed)
    config = LoraConfig(r=m.lora_r, lora_alpha=m.lora_alpha, lora_dropout=m.lora_dropout,
                        target_modules=list(m.lora_target_modules), bias="none")
    wrapped = get_peft_model(backbone, config)
    if m.gradient_checkpointing:
        # use_reentrant=False: gradients reach the adapters although the embeddings' outputs need none.
        wrapped.get_base_model().gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = LlmPairClassifier(wrapped, backbone.config.hidden_size)
    for parameter in model.parameters():
        if parameter.requires_grad:
            parameter.data = parameter.data.float()
    return model


def build_llm_classifier(m: LlmParams, seed: int, device: torch.device, precision: Precision) -> LlmPairClassifier:
    """The model the llm stage trains: pretrained backbone, fresh adapters and head."""
    return with_lora(load_llm_backbone(m, device, precision), m, seed)


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapters' and head's weights by parameter name (everything that trains, nothing frozen)."""
    return {name: p.detach().cpu().contiguous() for name, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Put `trainable_state` weights back; names must match the model's trainable parameters exactly."""
    expected = {name for name, p in model.named_parameters() if p.requires_grad}
    if set(state) != expected:
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        raise ValueError(f"adapter weights do not fit this model (other llm.lora_* or backbone?): missing "
                         f"{missing[:3]}, unexpected {unexpected[:3]}")
    model.load_state_dict(state, strict=False)


def save_adapters(payload: dict, path: str | Path) -> None:
    """Write the best checkpoint as safetensors: payload["model"] (trainable_state) as tensors, the other
    (JSON-serialisable) payload entries as metadata. Atomic, like every checkpoint."""
    metadata = {SAFETENSORS_METADATA_KEY: json.dumps({k: v for k, v in payload.items() if k != "model"})}
    save_atomic(payload["model"], path, lambda state, f: f.write(save(state, metadata=metadata)))


def load_adapters(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(trainable_state, metadata) of a `save_adapters` file; safetensors runs no code on load."""
    from safetensors import safe_open
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no adapter checkpoint; run the llm stage first (dvc repro llm)")
    with safe_open(str(path), framework="pt") as f:
        metadata = json.loads((f.metadata() or {}).get(SAFETENSORS_METADATA_KEY, "{}"))
    return load_file(str(path)), metadata


@torch.no_grad()
def predict_sequences(model: nn.Module, columns: SequenceColumns, batch_size: int, device: torch.device,
                      precision: Precision, pad_token_id: int, desc: str = "predict",
                      show_progress: bool = True) -> np.ndarray:
    """(n, 3) float64 probabilities of every sequence, longest batch first, in input order."""
    model.eval()
    probs = np.zeros((len(columns), N_CLASSES), dtype=np.float64)
    for index in tqdm(sorted_batches(columns.lengths(), batch_size), desc=desc, unit="batch",
                      disable=not show_progress, leave=False):
        batch = {k: v.to(device) for k, v in columns.batch(index, pad_token_id, precision.pad_to_multiple_of).items()}
        with autocast(precision, device):
            logits = model(**batch)
        probs[index] = _softmax64(logits.float())
    return probs


def predict_judged(model: nn.Module, pairs: pd.DataFrame, batch_size: int, device: torch.device,
                   precision: Precision, pad_token_id: int, tta: bool, show_progress: bool = True) -> PairPredictions:
    """Predictions of encoded pairs (llm_text.encode_judge_rows): forward reads (A, B); with `tta`
    swapped_back reads (B, A), its A and B columns exchanged back (tie kept); without, it is forward."""
    forward = predict_sequences(model, SequenceColumns(pairs, "ids"), batch_size, device, precision, pad_token_id,
                                "predict", show_progress)
    if not tta:
        return PairPredictions(forward=forward, swapped_back=forward)
    swapped = predict_sequences(model, SequenceColumns(pairs, "swapped_ids"), batch_size, device, precision,
                                pad_token_id, "predict swapped", show_progress)
    return PairPredictions(forward=forward, swapped_back=swap_probs(swapped))


def _forward_probs(model, pairs, batch_size, device, precision, pad_token_id, desc, show_progress) -> np.ndarray:
    return predict_sequences(model, SequenceColumns(pairs, "ids"), batch_size, device, precision, pad_token_id, desc,
                             show_progress)


LLM_IO = ModelIO(columns=SequenceColumns, forward_probs=_forward_probs,
                 payload=lambda model: {"model": trainable_state(model)},
                 load=lambda model, checkpoint: load_trainable_state(model, checkpoint["model"]),
                 save_best=save_adapters)
