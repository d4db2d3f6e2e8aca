import os

import numpy as np
import pandas as pd
import pytest
import torch

from arena_pref.data import read_rows
from arena_pref.encode import encode_rows, special_tokens, with_swapped_copies
from arena_pref.side_stats import SIDE_STATS, side_stats
from arena_pref.text import ASSISTANT_MARKER, USER_MARKER
from conftest import tiny_row, write_csv


def _rows(tmp_path, rows):
    frame, _ = read_rows(write_csv(tmp_path / "train.csv", rows), labelled=True)
    return frame


def _ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_short_single_turn_side_is_cls_user_prompt_assistant_answer_sep(tmp_path, tiny_tokenizer):
    rows = _rows(tmp_path, [tiny_row("1", ["What is the sea?"], ["The sea is wide."], ["Paris."], 0)])
    pairs = encode_rows(rows, tiny_tokenizer, max_tokens_per_side=128, prompt_share=0.25, head_share=0.5)
    cls, sep = tiny_tokenizer.cls_token_id, tiny_tokenizer.sep_token_id
    expected_a = [cls] + _ids(tiny_tokenizer, USER_MARKER + "What is the sea?") + \
        _ids(tiny_tokenizer, ASSISTANT_MARKER + "The sea is wide.") + [sep]
    assert list(pairs.loc[0, "a_ids"]) == expected_a
    expected_b = [cls] + _ids(tiny_tokenizer, USER_MARKER + "What is the sea?") + \
        _ids(tiny_tokenizer, ASSISTANT_MARKER + "Paris.") + [sep]
    assert list(pairs.loc[0, "b_ids"]) == expected_b
    assert pairs.loc[0, "id"] == "1" and pairs.loc[0, "label"] == 0 and not pairs.loc[0, "swapped"]


def test_long_multi_turn_sides_fit_the_budget_and_keep_the_last_turn(tmp_path, tiny_tokenizer):
    long_answer = "The sea is wide, the sea is deep. " * 60
    rows = _rows(tmp_path, [tiny_row("1", ["First question?", "Last question?"], [long_answer, "Final answer."],
                                     ["Short.", None], 2)])
    pairs = encode_rows(rows, tiny_tokenizer, max_tokens_per_side=48, prompt_share=0.25, head_share=0.5)
    a = list(pairs.loc[0, "a_ids"])
    assert len(a) == 48
    assert a[0] == tiny_tokenizer.cls_token_id and a[-1] == tiny_tokenizer.sep_token_id
    final = _ids(tiny_tokenizer, ASSISTANT_MARKER + "Final answer.")
    assert a[-1 - len(final):-1] == final  # the latest answer turn survives whole
    assert len(pairs.loc[0, "b_ids"]) <= 48


def test_special_tokens_of_deberta_tokenizer(tiny_tokenizer):
    assert special_tokens(tiny_tokenizer) == ([tiny_tokenizer.cls_token_id], [tiny_tokenizer.sep_token_id])


def test_swapped_copies_exchange_sides_and_labels(tmp_path, tiny_tokenizer):
    rows = _rows(tmp_path, [tiny_row("1", ["q"], ["a"], ["b"], 0), tiny_row("2", ["q2"], ["c"], ["d"], 2)])
    pairs = encode_rows(rows, tiny_tokenizer, 64, 0.25, 0.5)
    both = with_swapped_copies(pairs)
    assert len(both) == 4
    assert both["swapped"].tolist() == [False, False, True, True]
    assert both["label"].tolist() == [0, 2, 1, 2]
    assert list(both.loc[2, "a_ids"]) == list(pairs.loc[0, "b_ids"])
    assert list(both.loc[2, "b_ids"]) == list(pairs.loc[0, "a_ids"])
    assert both["id"].tolist() == ["1", "2", "1", "2"]


def test_every_row_in_is_a_row_out(tmp_path, tiny_tokenizer):
    from conftest import fixture_train_rows
    rows = _rows(tmp_path, fixture_train_rows(24))
    pairs = encode_rows(rows, tiny_tokenizer, 64, 0.25, 0.5)
    assert pairs["id"].tolist() == rows["id"].tolist()
    assert isinstance(pairs, pd.DataFrame) and pairs["a_ids"].map(len).max() <= 64


def test_side_stats_are_scaled_log_lengths_of_all_answer_turns():
    # One entry per name in SIDE_STATS (the model's width counts them): log chars, log lines.
    assert SIDE_STATS == ("log_chars", "log_lines") and side_stats(["x"]).shape == (len(SIDE_STATS),)
    np.testing.assert_allclose(side_stats(["ab\ncd", "", "e"]), np.log1p([6, 3]) / 10, rtol=1e-6)
    np.testing.assert_array_equal(side_stats([""]), [0.0, 0.0])


def test_swapped_copies_exchange_side_stats(tmp_path, tiny_tokenizer):
    rows = _rows(tmp_path, [tiny_row("1", ["q"], ["a much longer answer"], ["b"], 0)])
    both = with_swapped_copies(encode_rows(rows, tiny_tokenizer, 64, 0.25, 0.5))
    np.testing.assert_array_equal(both.loc[1, "a_stats"], both.loc[0, "b_stats"])
    np.testing.assert_array_equal(both.loc[1, "b_stats"], both.loc[0, "a_stats"])
    assert both.loc[0, "a_stats"][0] > both.loc[0, "b_stats"][0]


def test_backbone_loads_with_the_attention_dropout_asked_for(tiny_backbone_dir):
    from arena_pref.backbone import load_pretrained_backbone
    assert load_pretrained_backbone(str(tiny_backbone_dir), "main", 0.0).config.attention_probs_dropout_prob == 0.0
    assert load_pretrained_backbone(str(tiny_backbone_dir), "main", 0.2).config.attention_probs_dropout_prob == 0.2


@pytest.mark.parametrize("saved_dtype", [torch.float16, torch.bfloat16])
def test_a_backbone_saved_in_half_precision_loads_fp32_master_weights(tmp_path, tiny_backbone_dir, saved_dtype):
    from arena_pref.backbone import load_pretrained_backbone
    original = load_pretrained_backbone(str(tiny_backbone_dir), "main", 0.0)
    original.to(saved_dtype).save_pretrained(tmp_path / "half")
    loaded = load_pretrained_backbone(str(tmp_path / "half"), "main", 0.0)
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}
    # The values are the saved half-precision ones, widened.
    expected = original.embeddings.word_embeddings.weight.to(saved_dtype).float()
    assert torch.equal(loaded.embeddings.word_embeddings.weight, expected)


def test_missing_local_backbone_names_the_param(tmp_path):
    from arena_pref.backbone import BackboneError, load_tokenizer
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackboneError, match="model.backbone="):
        load_tokenizer(str(tmp_path / "empty"), "main")


def test_unreachable_hub_names_the_offline_command(tmp_path):
    """A hub id that cannot be fetched (offline mode, empty cache) stops with what to run instead."""
    import subprocess
    import sys

    code = ("from arena_pref.backbone import BackboneError, load_tokenizer\n"
            "try:\n    load_tokenizer('microsoft/deberta-v3-xsmall', 'main')\n"
            "except BackboneError as err:\n    print(err)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    message = done.stdout
    assert "model.backbone='microsoft/deberta-v3-xsmall'" in message
    assert "cannot load the tokenizer from the Hugging Face hub" in message
    assert "bash scripts/offline.sh" in message


def test_sides_longer_than_absolute_positions_are_refused_before_training():
    from transformers import BertConfig, DebertaV2Config

    from arena_pref.backbone import check_fits_positions
    from arena_pref.errors import InputError

    bert = BertConfig(max_position_embeddings=64)
    check_fits_positions(bert, 64)
    with pytest.raises(InputError, match=r"sides of 65 tokens but the backbone has 64 positions; set "
                                         r"featurize.max_tokens_per_side <= 64"):
        check_fits_positions(bert, 65)
    # DeBERTa-v3 reads positions relatively: any length fits; with absolute positions it does not.
    check_fits_positions(DebertaV2Config(max_position_embeddings=64, position_biased_input=False), 1000)
    with pytest.raises(InputError):
        check_fits_positions(DebertaV2Config(max_position_embeddings=64, position_biased_input=True), 65)
