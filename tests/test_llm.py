"""The decoder-LLM member: judge sequences token by token, the LoRA classifier on tiny random Llama and
Qwen2 models (right padding, swap TTA, adapter round trip), the loop with its checkpoints, and the
member's params and error messages. Nothing is downloaded."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from arena_pref.collate import pad_right
from arena_pref.llm_model import (LLM_IO, _source, build_llm_classifier, load_adapters, load_llm_tokenizer,
                                  load_trainable_state, predict_judged, quantization_config, save_adapters,
                                  trainable_state)
from arena_pref.llm_text import HEADER, JudgeLayout, Template, encode_judge_rows
from arena_pref.llm_train import judge_layout, loop_settings, with_swapped_judged
from arena_pref.loop import train
from arena_pref.params import LlmParams, ParamsError, parse_params
from arena_pref.precision import resolve_precision
from arena_pref.resume import FINISHED, checkpoint_state
from arena_pref.swap import swap_probs

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
FP32 = resolve_precision("fp32", CPU)
HEADER_TOKENS = HEADER.replace(",", " ,").replace(".", " .").split()
USER, ANSWER_A, ANSWER_B = ["###", "User", ":"], ["###", "Assistant", "A", ":"], ["###", "Assistant", "B", ":"]
FOOTER_TOKENS = ["###", "Verdict", "(", "A", ",", "B", "or", "tie", "):"]


def words(first: int, last: int) -> str:
    """'t{first} ... t{last}' (inclusive): one token each in the tiny Llama tokenizer."""
    return " ".join(f"t{i}" for i in range(first, last + 1))


def tokens(first: int, last: int) -> list[str]:
    return words(first, last).split()


def rows(*pairs: tuple[list[str], list[str], list[str]]) -> pd.DataFrame:
    """Clean rows (the prepare stage's schema) of (prompt turns, A turns, B turns)."""
    return pd.DataFrame({"id": [str(i) for i in range(len(pairs))], "fold": [i % 2 for i in range(len(pairs))],
                         "label": [i % 3 for i in range(len(pairs))], "prompt": [p for p, _, _ in pairs],
                         "response_a": [a for _, a, _ in pairs], "response_b": [b for _, _, b in pairs]})


def llm_params(backbone: Path, **overrides) -> LlmParams:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())["llm"]
    return LlmParams(**(raw | {"backbone": str(backbone), "lora_r": 4, "lora_alpha": 8.0, "lora_dropout": 0.0}
                        | overrides))


@pytest.fixture(scope="module")
def llama_tokenizer(tiny_llama_dir):
    return load_llm_tokenizer(str(tiny_llama_dir), "main")


def encoded_tokens(tokenizer, layout: JudgeLayout, *pairs) -> list[str]:
    ids = encode_judge_rows(rows(*pairs), tokenizer, layout)["ids"][0]
    assert len(ids) <= layout.max_tokens
    return tokenizer.convert_ids_to_tokens([int(i) for i in ids])


def layout_for(tokenizer, body_tokens: int, min_round_tokens: int = 80, head_share: float = 0.5) -> JudgeLayout:
    """A layout whose budget leaves exactly `body_tokens` for markers and turns."""
    return JudgeLayout(max_tokens=Template.of(tokenizer).fixed_length + body_tokens, prompt_share=0.2,
                       head_share=head_share, min_round_tokens=min_round_tokens)


# ---------------------------------------------------------------------------------------- judge sequences

def test_multi_turn_rounds_in_order_with_an_empty_answer(llama_tokenizer):
    got = encoded_tokens(llama_tokenizer, layout_for(llama_tokenizer, 200),
                         (["t1 t2", "t3"], ["t4", "t5 t6"], ["t7", ""]))
    assert got == (["<s>"] + HEADER_TOKENS + USER + ["t1", "t2"] + ANSWER_A + ["t4"] + ANSWER_B + ["t7"]
                   + USER + ["t3"] + ANSWER_A + ["t5", "t6"] + ANSWER_B + FOOTER_TOKENS)


def test_long_answer_is_cut_in_the_middle_or_on_the_left(llama_tokenizer):
    # 11 marker tokens + 20 for the turns: prompt 1, answers 19, all to A since B is empty.
    long_a = (["t150"], [words(0, 99)], [""])
    middle = encoded_tokens(llama_tokenizer, layout_for(llama_tokenizer, 31), long_a)
    body = USER + ["t150"] + ANSWER_A + tokens(0, 9) + tokens(91, 99) + ANSWER_B
    assert middle == ["<s>"] + HEADER_TOKENS + body + FOOTER_TOKENS
    left = encoded_tokens(llama_tokenizer, layout_for(llama_tokenizer, 31, head_share=0.0), long_a)
    assert left[1 + len(HEADER_TOKENS):-len(FOOTER_TOKENS)] == USER + ["t150"] + ANSWER_A + tokens(81, 99) + ANSWER_B
    assert judge_layout(llm_params(Path("x"), truncation="left")).head_share == 0.0


def test_two_long_answers_share_the_answer_budget(llama_tokenizer):
    got = encoded_tokens(llama_tokenizer, layout_for(llama_tokenizer, 31), (["t150"], [words(0, 99)], [words(100, 199)]))
    # answers 19: A's cap floor(9.5) = 9, B the other 10; each cut keeps ceil(half) from its start.
    assert got[1 + len(HEADER_TOKENS):-len(FOOTER_TOKENS)] == (
        USER + ["t150"] + ANSWER_A + tokens(0, 4) + tokens(96, 99) + ANSWER_B + tokens(100, 104) + tokens(195, 199))


def test_latest_round_first_and_earlier_rounds_need_min_round_tokens(llama_tokenizer):
    pair = (["t1", "t5"], ["t2 t3", words(10, 29)], ["t4", "t6"])
    latest = USER + ["t5"] + ANSWER_A + tokens(10, 29) + ANSWER_B + ["t6"]
    # Latest round: 11 markers + 22 tokens; then 11 markers + 3 tokens are left for the first round.
    kept = encoded_tokens(llama_tokenizer, layout_for(llama_tokenizer, 47, min_round_tokens=3), pair)
    # 3 tokens: prompt cap floor(0.6) = 0, answers 3: A cap 1, B takes its 1, A the remaining 2.
    assert kept[1 + len(HEADER_TOKENS):-len(FOOTER_TOKENS)] == (
        USER + ANSWER_A + ["t2", "t3"] + ANSWER_B + ["t4"] + latest)
    dropped = encoded_tokens(llama_tokenizer, layout_for(llama_tokenizer, 47, min_round_tokens=4), pair)
    assert dropped[1 + len(HEADER_TOKENS):-len(FOOTER_TOKENS)] == latest
    everything = encoded_tokens(llama_tokenizer, layout_for(llama_tokenizer, 48, min_round_tokens=4), pair)
    assert everything[1 + len(HEADER_TOKENS):-len(FOOTER_TOKENS)] == (
        USER + ["t1"] + ANSWER_A + ["t2", "t3"] + ANSWER_B + ["t4"] + latest)


def test_swapped_ids_are_the_pair_with_answers_exchanged(llama_tokenizer):
    layout = layout_for(llama_tokenizer, 40)
    pair = (["t1", "t2"], ["t3 t4", words(10, 60)], ["", "t5"])
    table = encode_judge_rows(rows(pair), llama_tokenizer, layout)
    exchanged = encode_judge_rows(rows((pair[0], pair[2], pair[1])), llama_tokenizer, layout)
    assert table["swapped_ids"][0].tolist() == exchanged["ids"][0].tolist()
    assert table["ids"][0].tolist() != table["swapped_ids"][0].tolist()


def test_too_small_a_budget_is_an_error(llama_tokenizer):
    with pytest.raises(ValueError, match="llm.max_tokens=.* leaves no room for a round"):
        encode_judge_rows(rows((["t1"], ["t2"], ["t3"])), llama_tokenizer, layout_for(llama_tokenizer, 10))


def test_family_prefix_and_pad_token(tiny_llama_dir, tiny_qwen2_dir):
    llama = load_llm_tokenizer(str(tiny_llama_dir), "main")
    assert Template.of(llama).prefix == [llama.bos_token_id]
    assert llama.pad_token_id == llama.eos_token_id  # the tokenizer had none: <eos> pads
    qwen = load_llm_tokenizer(str(tiny_qwen2_dir), "main")
    assert Template.of(qwen).prefix == []  # Qwen2 adds no <bos>
    assert qwen.pad_token == "<|endoftext|>" and qwen.padding_side == "right"


# ---------------------------------------------------------------------------------------- the classifier

def _model(backbone: Path, seed: int = 0, **overrides):
    model = build_llm_classifier(llm_params(backbone, **overrides), seed, CPU, FP32)
    # LoRA starts with B = 0 (adapters add nothing); random B makes the adapters change the logits.
    generator = torch.Generator().manual_seed(seed + 100)
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            parameter.data = torch.randn(parameter.shape, generator=generator) * 0.5
    return model.eval()


@pytest.fixture(params=["llama", "qwen2"])
def family(request, tiny_llama_dir, tiny_qwen2_dir):
    backbone = tiny_llama_dir if request.param == "llama" else tiny_qwen2_dir
    tokenizer = load_llm_tokenizer(str(backbone), "main")
    table = encode_judge_rows(rows((["t1 sea"], ["The sea is wide"], ["I'm sorry"]),
                                   (["What is the capital?"], [words(0, 30)], ["Paris"]),
                                   (["t2", "t3"], ["a", "b c"], ["d", ""])),
                              tokenizer, JudgeLayout(max_tokens=160, prompt_share=0.2, head_share=0.5,
                                                     min_round_tokens=4))
    return backbone, tokenizer, table


def test_right_padding_does_not_change_the_logits(family):
    backbone, tokenizer, table = family
    model = _model(backbone)
    short, long = list(table["ids"][0]), list(table["ids"][1])
    assert len(short) < len(long)
    with torch.no_grad():
        alone = model(**pad_right([short], tokenizer.pad_token_id))
        batched = model(**pad_right([long, short], tokenizer.pad_token_id, pad_to_multiple_of=8))
    torch.testing.assert_close(batched[1:], alone, atol=1e-5, rtol=1e-5)


def test_swap_tta_equals_scoring_the_swapped_pair(family):
    backbone, tokenizer, table = family
    model = _model(backbone)
    predictions = predict_judged(model, table, 2, CPU, FP32, tokenizer.pad_token_id, tta=True, show_progress=False)
    exchanged = table.assign(ids=table["swapped_ids"], swapped_ids=table["ids"])
    swapped_first = predict_judged(model, exchanged, 3, CPU, FP32, tokenizer.pad_token_id, tta=False,
                                   show_progress=False).forward
    np.testing.assert_allclose(predictions.swapped_back, swap_probs(swapped_first), atol=1e-6)
    np.testing.assert_allclose(predictions.tta, (predictions.forward + swap_probs(swapped_first)) / 2, atol=1e-6)
    assert not np.allclose(predictions.forward, predictions.swapped_back)  # the model does see the order
    plain = predict_judged(model, table, 2, CPU, FP32, tokenizer.pad_token_id, tta=False, show_progress=False)
    np.testing.assert_array_equal(plain.tta, predictions.forward)


def test_adapters_and_head_saved_reloaded_give_the_same_logits(family, tmp_path):
    backbone, tokenizer, table = family
    model = _model(backbone, seed=0)
    batch = pad_right(list(table["ids"]), tokenizer.pad_token_id)
    path = tmp_path / "best.safetensors"
    save_adapters({"model": trainable_state(model), "step": 3, "fingerprint": "abc"}, path)
    state, metadata = load_adapters(path)
    assert metadata == {"step": 3, "fingerprint": "abc"}
    assert state and all("lora_" in name or name.startswith("head.") for name in state)  # no frozen base weights
    other = _model(backbone, seed=1)
    with torch.no_grad():
        before = other(**batch)
        load_trainable_state(other, state)
        assert not torch.allclose(before, other(**batch))
        torch.testing.assert_close(other(**batch), model(**batch), atol=0.0, rtol=0.0)


def test_adapters_of_other_lora_settings_are_refused(tiny_llama_dir, tmp_path):
    state = trainable_state(_model(tiny_llama_dir, lora_target_modules=["q_proj", "v_proj"]))
    with pytest.raises(ValueError, match="adapter weights do not fit this model"):
        load_trainable_state(_model(tiny_llama_dir), state)
    with pytest.raises(FileNotFoundError, match="run the llm stage first"):
        load_adapters(tmp_path / "missing.safetensors")


def test_training_loop_writes_adapter_checkpoints_and_finishes(tiny_llama_dir, llama_tokenizer, tmp_path):
    table = encode_judge_rows(rows(*[([f"t{i}"], [words(i, i + i % 7)], [f"t{i + 1}"]) for i in range(12)]),
                              llama_tokenizer, layout_for(llama_tokenizer, 40))
    pairs = with_swapped_judged(table)
    assert pairs["swapped"].sum() == 12 and pairs["label"].tolist()[12:15] == [1, 0, 2]
    m = llm_params(tiny_llama_dir, epochs=1, batch_size=4, grad_accum_steps=2, eval_every_steps=0,
                   device="cpu", precision="fp32")
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    settings = loop_settings(parse_params(raw | {"llm": dataclasses.asdict(m)}))
    assert (settings.batch_size, settings.grad_accum_steps, settings.lr) == (4, 2, m.lr)
    model = build_llm_classifier(m, 0, CPU, FP32)
    train_pairs, valid_pairs = pairs[(pairs["fold"] == 1)], pairs[(pairs["fold"] == 0) & ~pairs["swapped"]]
    logged = []
    result = train(model, train_pairs, valid_pairs, settings, 0, CPU, FP32, llama_tokenizer.pad_token_id,
                   tmp_path / "best.safetensors", tmp_path / "last.pt", {"fingerprint": "f", "epochs": 1},
                   lambda step, metrics: logged.append((step, metrics)), io=LLM_IO)
    assert result.steps == 2 and np.isfinite(result.best_val_loss)  # 12 pairs / 4 = 3 micro-batches, windows of 2
    assert [step for step, metrics in logged if "val/loss" in metrics] == [2]
    state, metadata = load_adapters(tmp_path / "best.safetensors")
    assert metadata["step"] == 2 and set(state) == set(trainable_state(model))
    assert checkpoint_state(tmp_path / "last.pt", "f") == FINISHED


# ---------------------------------------------------------------------------------------- params and errors

def test_gguf_backbone_loads_from_its_directory(tmp_path):
    (tmp_path / "model.Q4.gguf").write_bytes(b"GGUF")
    assert _source(str(tmp_path / "model.Q4.gguf")) == (str(tmp_path), {"gguf_file": "model.Q4.gguf"})
    assert _source("Qwen/Qwen2.5-0.5B") == ("Qwen/Qwen2.5-0.5B", {})
    with pytest.raises(FileNotFoundError, match="no such GGUF file"):
        _source(str(tmp_path / "other.gguf"))


def test_quantization_needs_cuda_and_bitsandbytes():
    assert quantization_config("none", CPU, torch.float16) is None
    with pytest.raises(ValueError, match="llm.quantization=4bit needs a CUDA device"):
        quantization_config("4bit", CPU, torch.float16)
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="pip install bitsandbytes"):
            quantization_config("8bit", torch.device("cuda"), torch.float16)


def test_half_precision_base_weights_need_autocast(tiny_llama_dir):
    with pytest.raises(ValueError, match="llm.base_dtype=bf16 needs autocast"):
        build_llm_classifier(llm_params(tiny_llama_dir, base_dtype="bf16"), 0, CPU, FP32)


@pytest.mark.parametrize("key, value, message", [
    ("truncation", "right", "llm.truncation must be one of"),
    ("quantization", "2bit", "llm.quantization must be one of"),
    ("lora_target_modules", [], "llm.lora_target_modules must name at least one module"),
    ("max_tokens", 16, "llm.max_tokens must be >= 32"),
])
def test_bad_llm_params_are_refused(key, value, message):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["llm"][key] = value
    with pytest.raises(ParamsError, match=message):
        parse_params(raw)


def test_a_killed_run_resumes_to_the_same_adapters(tiny_llama_dir, llama_tokenizer, tmp_path):
    table = encode_judge_rows(rows(*[([f"t{i}"], [words(i, i + i % 5)], [f"t{i + 2}"]) for i in range(8)]),
                              llama_tokenizer, layout_for(llama_tokenizer, 40))
    pairs = with_swapped_judged(table)
    train_pairs, valid_pairs = pairs[pairs["fold"] == 1], pairs[(pairs["fold"] == 0) & ~pairs["swapped"]]
    m = llm_params(tiny_llama_dir, lora_dropout=0.1)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    settings = dataclasses.replace(loop_settings(parse_params(raw | {"llm": dataclasses.asdict(m)})), epochs=2,
                                   batch_size=2, grad_accum_steps=1, eval_every_steps=1)

    def run(directory: Path, log_metrics, resume_from=None):
        model = build_llm_classifier(m, 0, CPU, FP32)
        train(model, train_pairs, valid_pairs, settings, 0, CPU, FP32, llama_tokenizer.pad_token_id,
              directory / "best.safetensors", directory / "last.pt", {"fingerprint": "f", "epochs": 2},
              log_metrics, resume_from, io=LLM_IO)
        return trainable_state(model)

    uninterrupted = run(tmp_path / "a", lambda *_: None)

    def kill_at_step_3(step, metrics):
        if step == 3:
            raise KeyboardInterrupt  # after step 2's checkpoint, before step 3's
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", kill_at_step_3)
    last = checkpoint_state(tmp_path / "b" / "last.pt", "f")
    assert last["progress"]["step"] == 2
    resumed = run(tmp_path / "b", lambda *_: None, last)
    assert set(resumed) == set(uninterrupted)
    for name in uninterrupted:
        torch.testing.assert_close(resumed[name], uninterrupted[name], atol=0.0, rtol=0.0)


def test_gradient_checkpointing_gives_the_same_adapter_gradients(family):
    backbone, tokenizer, table = family
    batch = pad_right(list(table["ids"]), tokenizer.pad_token_id)
    target = torch.tensor([0, 1, 2])
    grads = []
    for checkpointing in (False, True):
        model = _model(backbone, gradient_checkpointing=checkpointing).train()
        assert model.backbone.get_base_model().is_gradient_checkpointing is checkpointing
        torch.nn.functional.cross_entropy(model(**batch), target).backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.requires_grad})
    assert all(g is not None for g in grads[1].values())
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, atol=1e-6, rtol=1e-5)
