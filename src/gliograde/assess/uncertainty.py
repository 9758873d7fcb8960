"""When should the model say "unsure"? Choosing and measuring the flag threshold.

The uncertainty score itself is part of the patient rule
(:func:`gliograde.infer.patient.uncertainty_score`). A patient is flagged ``uncertain`` above a
threshold: the largest one whose confident patients reach 95 % accuracy. In cross-validation
each fold's patients are flagged with a threshold chosen on the other folds' patients
(:func:`gliograde.assess.scoring.held_out_rule`); the threshold saved for ``predict`` is chosen
on all of them.
"""

from __future__ import annotations

import numpy as np

TARGET_CONFIDENT_ACCURACY = 0.95


def choose_threshold(u: np.ndarray, correct: np.ndarray, target: float = TARGET_CONFIDENT_ACCURACY):
    """The largest uncertainty threshold whose confident patients (u ≤ t) reach ``target`` accuracy.

    Flags as few patients as possible; when no threshold reaches the target, the one with the best
    confident accuracy is taken.
    """
    u = np.asarray(u, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    candidates = np.unique(u)
    best_t, best_acc = float(candidates.max()) if len(u) else 0.0, -1.0
    for t in candidates[::-1]:
        acc = correct[u <= t].mean()
        if acc >= target:
            return float(t)
        if acc > best_acc:
            best_t, best_acc = float(t), acc
    return best_t
