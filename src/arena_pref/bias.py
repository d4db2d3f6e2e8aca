"""Where a model's preferences differ from the humans': length, position and tie biases, per slice.

Pure functions of clean rows, labels and probabilities; `src/bias_report.py` writes them as DVC
metrics and plot tables. Labels: 0 = A wins, 1 = B wins, 2 = tie. Probabilities: (n, 3), same row order.

Definitions (a share whose denominator is empty is None, never 0):
    length of a side   `chars`: characters of its answer turns (as features.side_features counts them);
                       `words`: whitespace-separated words of its turns, a tokenizer-free token count.
    longer side        +1 when A is longer, -1 when B is, 0 when both have the same length.
    picks_longer       among rows whose argmax is A or B and whose sides differ in length, the share where
                       the argmax side is the longer one. `human_longer` is the same share for the labels.
    prob_longer        mean, over rows whose sides differ in length, of P(longer) / (P(A) + P(B)): the
                       same preference without the argmax and without the tie probability.
    length ratio       (characters of the longer side + 1) / (characters of the shorter side + 1) >= 1.
    outcome            per row by characters: longer_won, shorter_won, tie, or same_length (a winner,
                       but both sides the same length, e.g. identical answers).
    length-controlled log loss
                       sum_i w_i l_i / sum_i w_i with l_i the row's log loss, w_i = N / (2 N_L) on the
                       longer_won rows, N / (2 N_S) on the shorter_won rows (N = N_L + N_S) and 1 elsewhere:
                       the longer answer wins exactly half of the non-tie rows, the ties keep their
                       weight, and sum_i w_i = n. None when either group is empty.
    slices             multi_turn (more than one prompt turn), identical (A's turns equal B's), refusal
                       (either side has a refusal phrase, features.count_refusals).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .features import count_refusals
from .labels import A_WINS, B_WINS, TIE
from .metrics import expected_calibration_error, flip_rate, row_log_losses
from .text import join_turns

LENGTH_UNITS = ("chars", "words")
OUTCOMES = ("longer_won", "shorter_won", "tie", "same_length")
SLICES = ("multi_turn", "identical", "refusal")
# SIDE_OF_CLASS[class] is the side that class picks: +1 = A, -1 = B, 0 = neither (tie).
SIDE_OF_CLASS = np.array([1, -1, 0])


def pair_traits(rows: pd.DataFrame) -> pd.DataFrame:
    """Per row of clean `rows` (columns id, prompt, response_a, response_b as sequences of turns):
    id, chars_a, chars_b, words_a, words_b, multi_turn, identical, refusal (see module docstring).
    Same order, RangeIndex."""
    records = []
    for row_id, prompt, a, b in zip(rows["id"], rows["prompt"], rows["response_a"], rows["response_b"]):
        a, b = list(a), list(b)
        text_a, text_b = join_turns(a), join_turns(b)
        records.append({
            "id": str(row_id),
            "chars_a": sum(len(t) for t in a), "chars_b": sum(len(t) for t in b),
            "words_a": len(text_a.split()), "words_b": len(text_b.split()),
            "multi_turn": len(prompt) > 1,
            "identical": a == b,
            "refusal": count_refusals(text_a) > 0 or count_refusals(text_b) > 0,
        })
    return pd.DataFrame.from_records(
        records, columns=["id", "chars_a", "chars_b", "words_a", "words_b", "multi_turn", "identical", "refusal"])


def longer_side(traits: pd.DataFrame, unit: str = "chars") -> np.ndarray:
    """+1 where A is longer in `unit` (chars or words), -1 where B is, 0 where equal. Shape (n,)."""
    return np.sign(traits[f"{unit}_a"].to_numpy() - traits[f"{unit}_b"].to_numpy()).astype(np.int64)


def length_ratio(traits: pd.DataFrame) -> np.ndarray:
    """(characters of the longer side + 1) / (characters of the shorter side + 1), >= 1. Shape (n,)."""
    a, b = traits["chars_a"].to_numpy(dtype=np.float64), traits["chars_b"].to_numpy(dtype=np.float64)
    return (np.maximum(a, b) + 1.0) / (np.minimum(a, b) + 1.0)


def ratio_bins(ratio: np.ndarray, edges: list[float]) -> np.ndarray:
    """Bin index of each ratio: 0 for [1, edges[0]), i for [edges[i-1], edges[i]), len(edges) for
    [edges[-1], inf). `edges` increase and are > 1."""
    return np.digitize(ratio, np.asarray(edges, dtype=np.float64))


def bin_names(edges: list[float]) -> list[str]:
    """Names of the bins of `ratio_bins` by how much longer the longer side is, in percent: edges
    [1.25, 2.0] give "0-25%", "25-100%", "100%+". No dots: DVC reads a dot in a metric key as nesting."""
    def percent(edge: float) -> str:
        return f"{(edge - 1.0) * 100:g}".replace(".", "_")
    lows = [1.0, *edges]
    return [f"{percent(lo)}-{percent(hi)}%" for lo, hi in zip(lows, edges)] + [f"{percent(lows[-1])}%+"]


def _share(hits: np.ndarray) -> float | None:
    return float(np.mean(hits)) if len(hits) else None


def _mean(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None


def longer_share(picked_side: np.ndarray, longer: np.ndarray) -> float | None:
    """Among rows where a side was picked (+1 / -1) and the sides differ in length, the share where the
    picked side is the longer one. `picked_side` from SIDE_OF_CLASS[labels] or SIDE_OF_CLASS[argmax]."""
    rows = (picked_side != 0) & (longer != 0)
    return _share(picked_side[rows] == longer[rows])


def prob_longer(probs: np.ndarray, longer: np.ndarray) -> float | None:
    """Mean of P(longer) / (P(A) + P(B)) over rows whose sides differ in length."""
    rows = longer != 0
    p_longer = np.where(longer[rows] == 1, probs[rows, A_WINS], probs[rows, B_WINS])
    return _mean(p_longer / (probs[rows, A_WINS] + probs[rows, B_WINS]))


def outcomes(labels: np.ndarray, longer: np.ndarray) -> np.ndarray:
    """OUTCOMES name of each row: tie, same_length, longer_won or shorter_won. Shape (n,), dtype object."""
    side = SIDE_OF_CLASS[labels]
    return np.where(labels == TIE, "tie",
                    np.where(longer == 0, "same_length", np.where(side == longer, "longer_won", "shorter_won")))


def group_scores(labels: np.ndarray, probs: np.ndarray, rows: np.ndarray) -> dict:
    """rows, accuracy and mean log loss of the boolean-masked `rows` (None for an empty group)."""
    return {"rows": int(rows.sum()),
            "accuracy": _share(probs[rows].argmax(axis=1) == labels[rows]),
            "log_loss": _mean(row_log_losses(labels[rows], probs[rows])) if rows.any() else None}


def length_controlled_log_loss(labels: np.ndarray, probs: np.ndarray, outcome: np.ndarray) -> float | None:
    """Log loss with the longer_won and shorter_won rows reweighted to equal total weight (module docstring)."""
    longer_won, shorter_won = outcome == "longer_won", outcome == "shorter_won"
    n_longer, n_shorter = int(longer_won.sum()), int(shorter_won.sum())
    if not n_longer or not n_shorter:
        return None
    weights = np.ones(len(labels))
    weights[longer_won] = (n_longer + n_shorter) / (2 * n_longer)
    weights[shorter_won] = (n_longer + n_shorter) / (2 * n_shorter)
    return float((weights * row_log_losses(labels, probs)).sum() / weights.sum())


def tie_calibration_table(labels: np.ndarray, probs: np.ndarray, bins: int) -> pd.DataFrame:
    """Reliability of P(tie): per equal-width bin of [0, 1], the bin's middle, the mean predicted
    P(tie), the observed tie share and the row count. Empty bins are left out."""
    p_tie = probs[:, TIE]
    which = np.clip((p_tie * bins).astype(np.int64), 0, bins - 1)
    rows = [{"bin_mid": (b + 0.5) / bins, "predicted": float(p_tie[which == b].mean()),
             "observed": float((labels[which == b] == TIE).mean()), "count": int((which == b).sum())}
            for b in range(bins) if (which == b).any()]
    return pd.DataFrame(rows, columns=["bin_mid", "predicted", "observed", "count"])


def tie_figures(labels: np.ndarray, probs: np.ndarray, bins: int) -> dict:
    """Predicted tie rate (argmax) and mean P(tie) against the true tie rate; the tie probability's
    calibration error (count-weighted |predicted - observed| over `tie_calibration_table`) and Brier score."""
    table = tie_calibration_table(labels, probs, bins)
    is_tie = (labels == TIE).astype(np.float64)
    return {"true_tie_rate": float(is_tie.mean()),
            "predicted_tie_rate": float((probs.argmax(axis=1) == TIE).mean()),
            "mean_tie_prob": float(probs[:, TIE].mean()),
            "tie_calibration_error": expected_calibration_error(
                table.rename(columns={"predicted": "confidence", "observed": "accuracy"})),
            "tie_brier": float(((probs[:, TIE] - is_tie) ** 2).mean())}


def position_figures(labels: np.ndarray, probs: np.ndarray, swapped_back: np.ndarray | None = None) -> dict:
    """Shares of A, B and tie among the argmax predictions; A's share among the predicted winners next to
    the humans' share among theirs; mean P(A) - P(B); and the swap flip rate (metrics.flip_rate) when the
    model's predictions on the swapped pairs, mapped back to this order, are given (else None)."""
    predicted = probs.argmax(axis=1)
    return {"predicts_a": float((predicted == A_WINS).mean()),
            "predicts_b": float((predicted == B_WINS).mean()),
            "predicts_tie": float((predicted == TIE).mean()),
            "a_share_of_predicted_winners": _share(predicted[predicted != TIE] == A_WINS),
            "a_share_of_human_winners": _share(labels[labels != TIE] == A_WINS),
            "mean_p_a_minus_p_b": float((probs[:, A_WINS] - probs[:, B_WINS]).mean()),
            "swap_flip_rate": None if swapped_back is None else flip_rate(probs, swapped_back)}


def slice_figures(labels: np.ndarray, probs: np.ndarray, rows: np.ndarray, longer: np.ndarray) -> dict:
    """Scores, tie rates and length preference of the model and the humans on the masked `rows`."""
    predicted = probs[rows].argmax(axis=1)
    return group_scores(labels, probs, rows) | {
        "true_tie_rate": _share(labels[rows] == TIE),
        "predicted_tie_rate": _share(predicted == TIE),
        "picks_longer": longer_share(SIDE_OF_CLASS[predicted], longer[rows]),
        "human_longer": longer_share(SIDE_OF_CLASS[labels[rows]], longer[rows])}


def model_figures(traits: pd.DataFrame, labels: np.ndarray, probs: np.ndarray, edges: list[float],
                  tie_bins: int, swapped_back: np.ndarray | None = None) -> dict:
    """Every figure of the report for one model's (n, 3) `probs` on the rows of `traits`."""
    picked = SIDE_OF_CLASS[probs.argmax(axis=1)]
    longer = {unit: longer_side(traits, unit) for unit in LENGTH_UNITS}
    outcome = outcomes(labels, longer["chars"])
    everything = np.ones(len(labels), dtype=bool)
    figures = group_scores(labels, probs, everything)
    figures["length"] = {f"picks_longer_{u}": longer_share(picked, longer[u]) for u in LENGTH_UNITS} | {
        f"prob_longer_{u}": prob_longer(probs, longer[u]) for u in LENGTH_UNITS}
    figures["by_outcome"] = {name: group_scores(labels, probs, outcome == name) for name in OUTCOMES}
    figures["length_controlled_log_loss"] = length_controlled_log_loss(labels, probs, outcome)
    which = ratio_bins(length_ratio(traits), edges)
    figures["by_length_ratio"] = {
        name: slice_figures(labels, probs, which == b, longer["chars"]) for b, name in enumerate(bin_names(edges))}
    figures["position"] = position_figures(labels, probs, swapped_back)
    figures["ties"] = tie_figures(labels, probs, tie_bins)
    figures["slices"] = {name: slice_figures(labels, probs, traits[name].to_numpy(dtype=bool), longer["chars"])
                         for name in SLICES}
    return figures


def human_figures(traits: pd.DataFrame, labels: np.ndarray) -> dict:
    """The labels' own length preference, tie rate and outcome counts (the reference for the models)."""
    side = SIDE_OF_CLASS[labels]
    outcome = outcomes(labels, longer_side(traits, "chars"))
    return {f"human_longer_{u}": longer_share(side, longer_side(traits, u)) for u in LENGTH_UNITS} | {
        "tie_rate": float((labels == TIE).mean()),
        "outcomes": {name: int((outcome == name).sum()) for name in OUTCOMES},
        "slices": {name: int(traits[name].sum()) for name in SLICES}}


def length_ratio_plot(traits: pd.DataFrame, labels: np.ndarray, models: dict[str, np.ndarray],
                      edges: list[float]) -> pd.DataFrame:
    """Plot table: per length-ratio bin (ratio_low = its lower edge), rows, the humans' share of longer
    winners (`human`) and each model's `picks_longer` (one column per model); NaN where undefined."""
    which = ratio_bins(length_ratio(traits), edges)
    longer = longer_side(traits, "chars")
    table = pd.DataFrame({"ratio_low": [1.0, *edges], "rows": [int((which == b).sum()) for b in range(len(edges) + 1)]})
    for name, picked in (("human", SIDE_OF_CLASS[labels]),
                         *((m, SIDE_OF_CLASS[p.argmax(axis=1)]) for m, p in models.items())):
        table[name] = [longer_share(picked[which == b], longer[which == b]) for b in range(len(edges) + 1)]
    return table.astype({name: np.float64 for name in ["human", *models]})


def outcome_plot(figures: dict[str, dict]) -> pd.DataFrame:
    """Plot table (long, for a bar chart): one row per model and outcome, "model: outcome", accuracy, rows."""
    rows = [{"group": f"{model}: {name.replace('_', ' ')}", "accuracy": scores["accuracy"], "rows": scores["rows"]}
            for model, f in figures.items() for name, scores in f["by_outcome"].items() if scores["rows"]]
    return pd.DataFrame(rows, columns=["group", "accuracy", "rows"])


def tie_calibration_plot(labels: np.ndarray, models: dict[str, np.ndarray], bins: int) -> pd.DataFrame:
    """Plot table: per P(tie) bin (bin_mid), the ideal observed share (= bin_mid) and each model's
    observed tie share (one column per model; NaN where the model put no row in the bin)."""
    table = pd.DataFrame({"bin_mid": [(b + 0.5) / bins for b in range(bins)]})
    table["ideal"] = table["bin_mid"]
    for name, probs in models.items():
        observed = tie_calibration_table(labels, probs, bins).set_index("bin_mid")["observed"]
        table[name] = table["bin_mid"].map(observed).astype(np.float64)
    return table
