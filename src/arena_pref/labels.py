"""The three outcomes of a human vote, in the one order that every label, probability column and logit uses.

A label is the index of its class: A wins 0, B wins 1, tie 2; a row without a vote (a test row) has
NO_LABEL. LABEL_COLUMNS[i] is class i's column in Kaggle's files: one-hot in train.csv, a probability
in a submission and in every probability table written here; reports name the classes by it too.
"""

from __future__ import annotations

A_WINS, B_WINS, TIE = 0, 1, 2
CLASSES = (A_WINS, B_WINS, TIE)
N_CLASSES = len(CLASSES)
NO_LABEL = -1
LABEL_COLUMNS = ("winner_model_a", "winner_model_b", "winner_tie")
