"""Is a new patient like the patients the run was trained on? Checked before grading.

The run's store recorded, for its subjects, the range of a few numbers (see
:mod:`gliograde.preprocess.profile`): grid, voxel spacing, obliquity, brain volume, and how each
sequence's intensities spread around their mean. A patient outside that range (with a margin) is
out of distribution: a raw scan at 0.9×0.9×5.5 mm, a 256×224×26 grid, a head with its skull on.
``predict`` refuses it, or with ``--force`` grades it, flags it uncertain and lists why.
"""

from __future__ import annotations

from gliograde import MODALITIES, SEQUENCE_NAMES

NAMES = SEQUENCE_NAMES
ADVICE = (
    "bring the scans to the form the run was trained on first (BraTS: skull-stripped, "
    "co-registered, 1 mm isotropic, 240×240×155), or pass --force to grade anyway"
)


HUMAN_BRAIN_ML = (800.0, 2200.0)
"""A skull-stripped adult brain: the plausible range for a run trained on human brains."""


def out_of_distribution(profile: dict, trained: dict | None, resized: bool = False) -> list[str]:
    """Why ``profile`` (one patient) falls outside ``trained`` (the store's ranges); [] if not.

    Args:
        resized: the store was prepared with ``--size`` (any in-plane grid is resized to it).

    A run whose store recorded no ranges (made before they were) is not checked.
    """
    if not trained or not profile:
        return []
    return (
        grid_reasons(profile, trained, resized)
        + volume_reasons(profile, trained)
        + intensity_reasons(profile, trained)
    )


def fmt(values, unit: str = "") -> str:
    return "×".join(f"{v:g}" for v in values) + unit


def grid_reasons(profile: dict, trained: dict, resized: bool) -> list[str]:
    reasons = []
    (lo, hi), spacing = trained["spacing_mm"], profile["spacing_mm"]
    if any(s < 0.95 * a or s > 1.05 * b for s, a, b in zip(spacing, lo, hi)):
        reasons.append(f"voxel spacing {fmt(spacing, ' mm')}, trained on {fmt(hi, ' mm')}")
    (lo, hi), shape = trained["shape"], profile["shape"]
    outside = any(not 0.8 * a <= s <= 1.2 * b for s, a, b in zip(shape, lo, hi))
    # At native size the model's input is the plane itself: it must be the store's.
    if outside or (not resized and (shape[:2] != hi[:2] or lo[:2] != hi[:2])):
        reasons.append(f"grid {fmt(shape)}, trained on {fmt(hi)}")
    limit = trained["obliquity_deg"][1] + 1.0
    if profile["obliquity_deg"] > limit:
        reasons.append(f"axes oblique by {profile['obliquity_deg']:.1f}° (not resampled)")
    return reasons


def volume_reasons(profile: dict, trained: dict) -> list[str]:
    """The store's range of brain volumes, widened; for a store of human brains, at least the
    plausible adult range (``HUMAN_BRAIN_ML``)."""
    lo, hi = trained["brain_ml"]
    ml = profile["brain_ml"]
    low, high = 0.75 * lo, 1.33 * hi
    if 0.75 * HUMAN_BRAIN_ML[0] <= lo and hi <= 1.2 * HUMAN_BRAIN_ML[1]:
        low, high = min(low, HUMAN_BRAIN_ML[0]), max(high, HUMAN_BRAIN_ML[1])
    if low <= ml <= high:
        return []
    line = f"brain volume {ml:.0f} mL, trained on {lo:.0f}–{hi:.0f} mL"
    return [line + volume_culprit(profile.get("brain_ml_each"), ml > hi, (low, high))]


def volume_culprit(each: list[float] | None, too_large: bool, plausible: tuple) -> str:
    """Which sequences make a brain too large: those whose own non-zero voxels fall outside
    ``plausible`` while the others' do not. All of them: a skull; none known: a guess."""
    if not too_large:
        return ""
    if not each:
        return " (skull not stripped?)"
    low, high = plausible
    bad = [c for c, v in enumerate(each) if v > high]
    good = [c for c, v in enumerate(each) if low <= v <= high]
    if not bad or not good:
        return " (skull not stripped?)"
    named = ", ".join(f"{NAMES[MODALITIES[c]]} {each[c]:,.0f} mL" for c in bad)
    rest = ", ".join(NAMES[MODALITIES[c]] for c in good)
    agreed = max(each[c] for c in good)
    return (
        f": made by {named}, whose background is not 0 ({rest}: at most {agreed:,.0f} mL); "
        f"mask {'it' if len(bad) == 1 else 'them'} as the others are"
    )


def intensity_reasons(profile: dict, trained: dict) -> list[str]:
    """Each sequence's clip bounds, in standard deviations from its brain mean, against the
    store's range widened by half its width, and by at least 1.5 standard deviations: normal
    patients differ by 1 to 2 (an LGG's T1ce without enhancement has a shorter upper tail), a
    skull or another contrast by more."""
    reasons = []
    for key, side in (("z_low", "lower"), ("z_high", "upper")):
        (lo, hi), values = trained[key], profile[key]
        for c, name in enumerate(MODALITIES):
            margin = max(1.5, 0.5 * (hi[c] - lo[c]))
            if not lo[c] - margin <= values[c] <= hi[c] + margin:
                reasons.append(
                    f"{NAMES[name]} intensities unlike the training data ({side} tail at "
                    f"{values[c]:.1f} SD, trained {lo[c]:.1f} to {hi[c]:.1f})"
                )
    return reasons
