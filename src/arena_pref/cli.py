"""The `arena-pref` command (console script of pyproject.toml).

    arena-pref score BUNDLE INPUT.csv -o submission.csv [--device auto|cpu|cuda] [--batch-size N]
                     [--members siamese,gbdt,tfidf] [--precision auto|fp32|bf16|fp16]

Reads INPUT.csv (Kaggle test.csv schema; a local path or an http(s) URL) with the prepare stage's reader
(same repairs, same errors naming file, row and column), scores it with the bundle (arena_pref.Scorer),
checks the submission as the ensemble stage does (arena_pref.submission) and only then writes it, through
a temporary file renamed into place: a failure leaves no file, or the previous one untouched.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

log = logging.getLogger("arena-pref")


def write_atomic_csv(frame, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def score(args: argparse.Namespace) -> None:
    from .data import read_rows
    from .scorer import Scorer
    from .sources import local_copy
    from .submission import build_submission

    started = time.perf_counter()
    rows, repairs = read_rows(local_copy(args.input), labelled=False)
    if repairs.ignored_columns:
        log.warning("%s: ignoring unknown column(s) %s", args.input, repairs.ignored_columns)
    members = args.members.split(",") if args.members else None
    scorer = Scorer.load(args.bundle, device=args.device, members=members, batch_size=args.batch_size,
                         precision=args.precision, show_progress=not args.quiet)
    probs = scorer.predict_rows(rows)
    submission = build_submission(rows["id"].tolist(), probs, rows["id"].tolist())
    write_atomic_csv(submission, args.output)
    elapsed = time.perf_counter() - started
    log.info("wrote %s: %d pairs scored by %s in %.1f s (%.1f pairs/s); repairs %s", args.output, len(submission),
             "+".join(scorer.members), elapsed, len(submission) / elapsed, repairs.as_dict())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="arena-pref", description="Score chatbot answer pairs with a trained bundle.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("score", help="score a Kaggle-schema CSV into a submission CSV",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="bundle directory (written by `dvc repro bundle`)")
    p.add_argument("input", help="CSV with columns id, prompt, response_a, response_b (local path or URL)")
    p.add_argument("-o", "--output", required=True, help="submission CSV to write")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    p.add_argument("--batch-size", type=int, help="pairs per batch (default: the bundle's predict.batch_size)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"),
                   help="default: the bundle's train.precision")
    p.add_argument("--members", help="comma-separated subset of the bundle's members, e.g. siamese (default: all)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=score)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .bundle import BundleError
    from .files import setup_logging

    args = build_parser().parse_args(argv)
    if args.batch_size is not None and args.batch_size < 1:
        build_parser().error("--batch-size must be >= 1")
    setup_logging()
    if getattr(args, "quiet", False):
        os.environ["TQDM_DISABLE"] = "1"  # also the library's tokenizing bars (read when tqdm is imported)
    try:
        args.run(args)
    except (BundleError, ValueError, OSError, RuntimeError) as err:  # DataError, SubmissionError are ValueErrors
        print(f"arena-pref {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
