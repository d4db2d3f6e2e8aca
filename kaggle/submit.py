"""Kaggle submission notebook for "LLM Classification Finetuning" (internet off), built by
`python -m arena_pref.kaggle_kit BUNDLE OUT_DIR` (docs/scoring.md, "Kaggle").

Attach the two datasets the kit wrote (arena-pref-wheels, arena-pref-bundle) and the competition's data
to a notebook, paste this file into one cell (or upload it as a script) and run it. It installs the
wheels offline, scores test.csv with the bundle and writes submission.csv. The four paths below are
the only settings; the environment variables exist so that tests/test_kaggle_kit.py can point them
at a simulated Kaggle.
"""

import glob
import os
import subprocess
import sys

WHEELS_DIR = os.environ.get("ARENA_PREF_WHEELS", "/kaggle/input/arena-pref-wheels")
BUNDLE_DIR = os.environ.get("ARENA_PREF_BUNDLE", "/kaggle/input/arena-pref-bundle")
TEST_CSV = os.environ.get("ARENA_PREF_TEST_CSV", "/kaggle/input/llm-classification-finetuning/test.csv")
SUBMISSION = os.environ.get("ARENA_PREF_SUBMISSION", "/kaggle/working/submission.csv")

os.environ["HF_HUB_OFFLINE"] = "1"  # the bundle holds the tokenizer and config: never look for the hub
wheels = sorted(glob.glob(os.path.join(WHEELS_DIR, "*.whl")))
if not wheels:
    sys.exit(f"no wheels in {WHEELS_DIR}: attach the arena-pref-wheels dataset (or fix WHEELS_DIR)")
# --no-index: offline; --no-deps: the image provides torch, transformers, scikit-learn, pandas, ...;
# --ignore-installed: never touch the image's own packages, only add these.
subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                       "--ignore-installed", "--find-links", WHEELS_DIR, *wheels])

from arena_pref.cli import main  # noqa: E402  (importable only after the install above)

status = main(["score", BUNDLE_DIR, TEST_CSV, "-o", SUBMISSION])
if status:
    sys.exit(status)
print(open(SUBMISSION, encoding="utf-8").read()[:500])
