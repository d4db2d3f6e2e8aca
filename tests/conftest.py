"""Shared fixtures: a tiny DeBERTa-v2 backbone directory (random weights, SentencePiece tokenizer
trained here) and Kaggle-schema CSV writers. Nothing is downloaded."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sentencepiece as spm
import torch
import yaml
from transformers import AutoModel, AutoTokenizer, DebertaV2Config, DebertaV2Tokenizer

REPO_ROOT = Path(__file__).resolve().parents[1]

CORPUS = [
    "User: What is the capital of France? Assistant: The capital of France is Paris.",
    "User: Write a poem about the sea. Assistant: The sea is wide, the sea is deep, its waves roll on.",
    "User: Explain recursion. Assistant: A function that calls itself until a base case stops it.",
    "I'm sorry, but I cannot help with that request. As an AI language model I must decline.",
    "1. First item\n2. Second item\n**bold** and `code` with numbers 0 1 2 3 4 5 6 7 8 9.",
]


def tiny_row(row_id: str, prompt: list, a: list, b: list, label: int | None = 0) -> dict:
    """One Kaggle train.csv row (label 0/1/2 = A/B/tie; None for a test row)."""
    row = {"id": row_id, "model_a": "model-x", "model_b": "model-y", "prompt": json.dumps(prompt),
           "response_a": json.dumps(a), "response_b": json.dumps(b)}
    if label is not None:
        row |= {"winner_model_a": int(label == 0), "winner_model_b": int(label == 1), "winner_tie": int(label == 2)}
    return row


def write_csv(path: Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    columns = columns or list(rows[0])
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def fixture_train_rows(n: int = 24) -> list[dict]:
    """`n` varied labelled rows: multi-turn, null turns, identical answers, a refusal, a long answer."""
    rows = []
    for i in range(n):
        label = i % 3
        prompt = [f"Question number {i} about the sea?"] + (["And then what?"] if i % 4 == 0 else [])
        a = [f"The sea is wide {i}. " * (1 + i % 5)] + (["It rolls on."] if i % 4 == 0 else [])
        b = ["I'm sorry, but I cannot help."] + ([None] if i % 4 == 0 else [])
        if i % 7 == 0:
            b = list(a)
        if i % 11 == 0:
            a = ["word " * 400] + a[1:]
        rows.append(tiny_row(str(1000 + i), prompt, a, b, label))
    return rows


@pytest.fixture(scope="session")
def tiny_backbone_dir(tmp_path_factory) -> Path:
    """Directory with a 2-layer random DeBERTa-v2 model and a SentencePiece tokenizer trained on CORPUS."""
    root = tmp_path_factory.mktemp("tiny_deberta")
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(CORPUS * 20), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(root / "spm"), vocab_size=200, model_type="unigram",
        pad_id=0, unk_id=1, bos_id=2, eos_id=3, user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"],
        hard_vocab_limit=False, minloglevel=2)
    # Like the hub's deberta-v3 repos, the directory holds spm.model; loading it runs transformers'
    # SentencePiece -> tokenizers conversion, the path a real DeBERTa-v3 checkpoint takes.
    model_dir = root / "model"
    model_dir.mkdir()
    shutil.copy(root / "spm.model", model_dir / "spm.model")
    tokenizer = DebertaV2Tokenizer.from_pretrained(model_dir, pad_token="<pad>", unk_token="<unk>",
                                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    tokenizer.save_pretrained(model_dir)
    config = DebertaV2Config(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                             intermediate_size=64, max_position_embeddings=512, relative_attention=True,
                             position_buckets=64, pos_att_type=["p2c", "c2p"], position_biased_input=False,
                             pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)  # the same random backbone in every session, so a failure reproduces
    AutoModel.from_config(config).save_pretrained(model_dir)
    return model_dir


def _tiny_decoder_dir(root: Path, family: str) -> Path:
    """A 2-layer random decoder with a tokenizer built here.

    llama: a word-level tokenizer (one token per word or punctuation run, t0..t199 included, so tests
    spell expected sequences as token strings), <s> prefix, no pad token. qwen2: a real Qwen2Tokenizer
    (byte-level BPE trained on CORPUS; transformers picks that class from the config for this family),
    no prefix, <|endoftext|> as pad and eos.
    """
    import re

    from tokenizers import ByteLevelBPETokenizer, Tokenizer, models, pre_tokenizers, processors
    from transformers import LlamaConfig, PreTrainedTokenizerFast, Qwen2Config, Qwen2Tokenizer

    from arena_pref.llm_text import A_MARKER, B_MARKER, FOOTER, HEADER, PROMPT_MARKER

    text = " ".join(CORPUS + [HEADER, PROMPT_MARKER, A_MARKER, B_MARKER, FOOTER])
    if family == "llama":
        words = sorted(set(re.findall(r"\w+|[^\w\s]+", text)) | {f"t{i}" for i in range(200)})
        vocab = {token: i for i, token in enumerate(["<unk>", "<s>", "</s>"] + words)}
        backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
        backend.pre_tokenizer = pre_tokenizers.Whitespace()
        backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>",
                                            eos_token="</s>")
        config_class = LlamaConfig
    else:
        bpe = ByteLevelBPETokenizer()
        bpe.train_from_iterator(CORPUS * 5 + [text], vocab_size=400, min_frequency=1,
                                special_tokens=["<|endoftext|>"], show_progress=False)
        state = json.loads(bpe._tokenizer.to_str())["model"]
        tokenizer = Qwen2Tokenizer(vocab=state["vocab"], merges=[tuple(m) if isinstance(m, list) else tuple(m.split())
                                                                for m in state["merges"]])
        config_class = Qwen2Config
    model_dir = root / family
    tokenizer.save_pretrained(model_dir)
    config = config_class(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(model_dir)
    return model_dir


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    return _tiny_decoder_dir(tmp_path_factory.mktemp("tiny_decoders"), "llama")


@pytest.fixture(scope="session")
def tiny_qwen2_dir(tmp_path_factory) -> Path:
    return _tiny_decoder_dir(tmp_path_factory.mktemp("tiny_decoders"), "qwen2")


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_backbone_dir):
    return AutoTokenizer.from_pretrained(tiny_backbone_dir)


def make_train_dir(root: Path, backbone_dir: Path, n_rows: int = 30, **train_overrides) -> Path:
    """A directory where `python src/train.py` can run: params.yaml (tiny settings) and featurized
    fixture rows under features/, as the prepare and featurize stages would leave them."""
    import yaml
    from transformers import AutoTokenizer

    from arena_pref.data import assign_folds, read_rows
    from arena_pref.encode import encode_rows, with_swapped_copies
    from arena_pref.files import write_json, write_parquet

    root.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    params["model"]["backbone"] = str(backbone_dir)
    params["prepare"]["n_folds"] = 3
    params["featurize"]["max_tokens_per_side"] = 32
    # No teacher unless a test asks for one (train.soft_target_weight), whatever params.yaml's default.
    params["train"].update({"epochs": 2, "batch_size": 2, "grad_accum_steps": 1, "eval_every_steps": 1,
                            "device": "cpu", "precision": "fp32", "soft_target_weight": 0.0} | train_overrides)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    rows, _ = read_rows(write_csv(root / "train.csv", fixture_train_rows(n_rows)), labelled=True)
    rows = assign_folds(rows, 3, 42)
    tokenizer = AutoTokenizer.from_pretrained(backbone_dir)
    pairs = with_swapped_copies(encode_rows(rows, tokenizer, 32, 0.25, 0.5))
    write_parquet(pairs, root / "features" / "train.parquet")
    write_json({"pad_token_id": tokenizer.pad_token_id, "max_tokens_per_side": 32}, root / "features" / "meta.json")
    return root


def train_command(*extra: str) -> list[str]:
    import sys
    script = Path(__file__).resolve().parents[1] / "src" / "train.py"
    return [sys.executable, *extra, str(script), "--features", "features", "--teacher", "teacher",
            "--models", "models", "--live-dir", "live"]


PIPELINE_TINY = {  # params.yaml overrides of the tiny pipeline (pipeline_repo)
    "prepare": {"n_folds": 3},
    "featurize": {"max_tokens_per_side": 48},
    # fp32: the bundle tests compare the pipeline's probabilities with the bundle's to 1e-6 on CPU.
    "train": {"fold": -1, "epochs": 1, "batch_size": 4, "grad_accum_steps": 2, "eval_every_steps": 2,
              "device": "cpu", "precision": "fp32", "soft_target_weight": 0.0},  # the experiment test turns it on
    "gbdt": {"max_iter": 10, "min_samples_leaf": 3},
    "tfidf": {"min_df": 1, "max_features": 2000},
    "evaluate": {"batch_size": 8},
    "predict": {"batch_size": 8},
}


def pipeline_env(tmp_path: Path) -> dict:
    env = dict(os.environ)
    env |= {"DVC_NO_ANALYTICS": "true", "DVC_SITE_CACHE_DIR": str(tmp_path / "dvc-site-cache"),
            "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com",
            # Stage commands say `python`: make it this interpreter, whatever PATH holds.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
    return env


def run_checked(args: list[str], cwd: Path, env: dict) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def dvc_args(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


def make_pipeline_repo(tmp_path_factory, tiny_backbone_dir) -> tuple[Path, dict]:
    """(path, env) of a temp git + DVC repo holding this tree's pipeline on fixture rows and tiny params,
    after `dvc repro` (a minute or two: every stage is a fresh process)."""
    tmp = tmp_path_factory.mktemp("pipeline")
    repo = tmp / "repo"
    repo.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO_ROOT / name, repo / name)
    shutil.copytree(REPO_ROOT / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    raw = repo / "data" / "raw"
    raw.mkdir(parents=True)
    write_csv(raw / "train.csv", fixture_train_rows(30))
    test_rows = [tiny_row(str(i), [f"test question {i}"], [f"answer a {i}"], [f"answer b {i}"], None)
                 for i in (7, 3, 5)]
    write_csv(raw / "test.csv", test_rows)

    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in PIPELINE_TINY.items():
        params[section].update(values)
    params["data"].update({"train_csv": "data/raw/train.csv", "test_csv": "data/raw/test.csv"})
    params["model"]["backbone"] = str(tiny_backbone_dir)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    env = pipeline_env(tmp)
    run_checked(["git", "init", "-q"], repo, env)
    run_checked(dvc_args("init", "-q"), repo, env)
    run_checked(["git", "add", "-A"], repo, env)
    run_checked(["git", "commit", "-qm", "tiny pipeline"], repo, env)
    run_checked(dvc_args("repro"), repo, env)
    return repo, env


@pytest.fixture(scope="session")
def pipeline_template(tmp_path_factory, tiny_backbone_dir) -> Path:
    """The tiny pipeline repo (make_pipeline_repo) as `dvc repro` left it, built once per session and
    never changed: the repos tests use are copies (a copy takes a second, a build minutes)."""
    repo, _ = make_pipeline_repo(tmp_path_factory, tiny_backbone_dir)
    return repo


def copy_of_pipeline(template: Path, tmp_path_factory) -> tuple[Path, dict]:
    """(path, env) of a copy of the template repo: its own git history, DVC cache and outputs."""
    tmp = tmp_path_factory.mktemp("pipeline")
    repo = tmp / "repo"
    shutil.copytree(template, repo, symlinks=True)
    return repo, pipeline_env(tmp)


@pytest.fixture(scope="session")
def pipeline_repo(pipeline_template, tmp_path_factory) -> tuple[Path, dict]:
    """The session's tiny pipeline repo (a copy of pipeline_template). Tests must not change it, except
    tests/test_pipeline.py's experiments, which rerun it consistently."""
    return copy_of_pipeline(pipeline_template, tmp_path_factory)


@pytest.fixture(scope="module")
def private_pipeline_repo(pipeline_template, tmp_path_factory) -> tuple[Path, dict]:
    """A tiny pipeline repo of the module's own (a copy of pipeline_template), for tests that queue
    experiments in it or push its cache (they would change what pipeline_repo shows to other tests)."""
    return copy_of_pipeline(pipeline_template, tmp_path_factory)


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """36 fixture rows read as the prepare stage reads them, in 3 folds: the fast members' test data."""
    from arena_pref.data import assign_folds, read_rows

    path = write_csv(tmp_path_factory.mktemp("rows") / "train.csv", fixture_train_rows(36))
    clean, _ = read_rows(path, labelled=True)
    return assign_folds(clean, n_folds=3, seed=0)
