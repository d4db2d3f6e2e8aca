"""Stage featurize: clean rows -> token ids of both sides, plus swapped copies of training pairs.

    python src/featurize.py --in-dir data/prepared --out-dir data/token_ids
Reads featurize.* and model.backbone / model.revision (for the tokenizer) from params.yaml.
Writes train.parquet and test.parquet (id, fold, label, swapped, a_ids, b_ids) and meta.json.
"""

import logging
from pathlib import Path

import pandas as pd

from arena_pref.backbone import load_tokenizer
from arena_pref.encode import encode_rows, with_swapped_copies
from arena_pref.errors import run_stage
from arena_pref.files import FEATURES_META, stage_arguments, write_json, write_parquet
from arena_pref.params import load_params

log = logging.getLogger("featurize")


def main() -> None:
    args = stage_arguments(__doc__, "--in-dir", "--out-dir")
    params = load_params()
    settings = params.featurize
    tokenizer = load_tokenizer(params.model.backbone, params.model.revision)
    if tokenizer.pad_token_id is None:
        raise ValueError(f"the tokenizer of {params.model.backbone!r} has no pad token")
    # Whole turns are tokenized and then cut by text.fit_conversation, so texts longer than the model's
    # limit are expected here; lifting the limit stops a warning that would wrongly suggest a bug.
    tokenizer.model_max_length = int(1e12)

    def encode(split: str) -> pd.DataFrame:
        rows = pd.read_parquet(f"{args.in_dir}/{split}.parquet")
        return encode_rows(rows, tokenizer, settings.max_tokens_per_side, settings.prompt_share, settings.head_share)

    train = encode("train")
    if settings.swap_train:
        # Swapped copies of every labelled pair; the train stage uses those of its training folds only.
        train = with_swapped_copies(train)
    test = encode("test")
    write_parquet(train, f"{args.out_dir}/train.parquet")
    write_parquet(test, f"{args.out_dir}/test.parquet")
    lengths = train["a_ids"].map(len).tolist() + train["b_ids"].map(len).tolist()
    write_json({"pad_token_id": int(tokenizer.pad_token_id), "backbone": params.model.backbone,
                "max_tokens_per_side": settings.max_tokens_per_side,
                "truncated_sides": int(sum(n >= settings.max_tokens_per_side for n in lengths)),
                "sides": len(lengths)}, Path(args.out_dir) / FEATURES_META)
    log.info("featurized %d training pairs (swap copies: %s) and %d test pairs", len(train), settings.swap_train,
             len(test))


if __name__ == "__main__":
    run_stage(main)
