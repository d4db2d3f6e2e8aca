"""Peak RSS of one recipe in a fresh process (run by bench/throughput.py; not meant to be run by hand).

    python bench/_rss_probe.py SAMPLE.pkl RECIPE train|predict

train: build the model and optimizer, run one step on 2 pairs (it creates the AdamW state, as every step
after the first of a real run has it), then `steps` training steps on the recipe's widest batch.
predict: predict, with TTA, the `predict_batch_size` longest pairs (the widest batch either recipe sees).
Prints one JSON line: setup_rss_gb (peak before the first step) and peak_rss_gb (ru_maxrss at the end).
"""

from __future__ import annotations

import json
import pickle
import sys

import numpy as np
import torch

from arena_pref.loop import build_optimizer

import _common


def main() -> None:
    payload, name, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(payload, "rb") as f:
        s = pickle.load(f)
    if s["threads"]:
        torch.set_num_threads(s["threads"])
    recipe = _common.make_recipes(s["pad_token_id"], s["max_length"], s["max_grad_norm"],
                                  s["ours_attention_dropout"], s["naive_attention_dropout"])[name]
    model = _common.build_model(s["backbone"], s["head"], s["dropout"], recipe.attention_dropout, s["side_stats"],
                                s["seed"])
    if mode == "train":
        sample = _common.Sample(s["train"])
        batches = _common.train_schedule(name, len(sample), s["batch_size"], s["ours_train_batches"], s["seed"])
        widest = max(batches, key=lambda index: (int(sample.lengths[index].max()), len(index)))
        optimizer = build_optimizer(model, s["lr"], s["head_lr"], s["weight_decay"])
        model.train()
        setup = _common.peak_rss_gb()
        recipe.train_step(model, optimizer, sample, widest[:2])
        for _ in range(s["steps"]):
            recipe.train_step(model, optimizer, sample, widest)
    elif mode == "predict":
        sample = _common.Sample(s["predict"])
        longest = np.argsort(-sample.lengths, kind="stable")[:s["predict_batch_size"]]
        sample = sample.subset(longest)
        setup = _common.peak_rss_gb()
        recipe.predict(model, sample, s["predict_batch_size"])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps({"recipe": name, "mode": mode, "setup_rss_gb": setup, "peak_rss_gb": _common.peak_rss_gb()}))


if __name__ == "__main__":
    main()
