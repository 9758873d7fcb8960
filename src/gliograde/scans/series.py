"""Which MR series is FLAIR, T1ce, T1 or T2: from its description and from its physics.

Two independent readings of a series:

* its description (``SeriesDescription``, or a file name), by keywords scanners and sites use
  (``flair``, ``tirm`` and ``dark fluid`` for FLAIR; ``mprage``, ``spgr``, ``bravo`` for T1;
  ``post``, ``gd``, ``+c`` or a contrast agent for T1ce);
* its timing (repetition, echo and inversion times, in ms): FLAIR inverts CSF (TI ≥ 1,500 ms,
  long TR), T2 has long TR and TE, T1 short TR and TE (or an MPRAGE-like TI of 300–1,300 ms).

Both agreeing gives ``high`` confidence, one of them alone ``medium``; disagreeing readings
give ``low`` and the series is not used unless the user names it (``--series-map``).
Localizers, diffusion, susceptibility and perfusion series are set aside.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from gliograde import MODALITIES, SEQUENCE_NAMES

NAMES = SEQUENCE_NAMES
SET_ASIDE = re.compile(
    r"localizer|locali[sz]er|scout|survey|3-?plane|\bloc\b|dwi|diffusion|\badc\b|trace|\bdti\b"
    r"|\bfa\b|swi|t2\*|t2star|\bstar\b|perf|\bdsc\b|\bdce\b|\basl\b|\bmap\b|\bmip\b"
)
FLAIR_WORDS = re.compile(r"flair|tirm|dark[\s_-]?fluid")
T1_WORDS = re.compile(r"t1|mprage|spgr|bravo|\btfl\b|\bfspgr\b|\bvibe\b")
T2_WORDS = re.compile(r"t2")
NOT_CONTRAST = re.compile(r"\bpre\b|\bnon\b|without|\bw o\b|\bnativ|\bno contrast|precontrast")
T1_FLAIR = re.compile(r"t1\s*flair|flair\s*t1")  # GE/Philips' T1 with inversion: a T1
NO_AGENT = {"", "none", "no", "n/a", "na", "-", "0", "nil"}
CONTRAST_WORDS = re.compile(
    r"t1ce|t1c\b|t1gd|post|\bgd\b|gad|\+c\b|\bc\+|contrast|kontrast|\bce\b|\bkm\b"
)


@dataclass
class Series:
    """One series, as found: where it is and what its header says."""

    key: str  # SeriesInstanceUID (or a file name for NIfTI inputs)
    description: str
    number: int | None = None
    files: list[Path] = field(default_factory=list)
    tr_ms: float | None = None
    te_ms: float | None = None
    ti_ms: float | None = None
    contrast_agent: bool = False
    localizer: bool = False
    images: int = 0  # slices: files, or frames of multi-frame files

    def label(self) -> str:
        number = f"series {self.number} " if self.number is not None else ""
        return f"{number}'{self.description}'"


@dataclass
class Identity:
    """What a series is: a role (``flair``, ``t1ce``, ``t1``, ``t2``) or None, and how sure."""

    role: str | None
    confidence: str  # "high", "medium", "low", or "set aside"
    why: str


def words(text: str) -> str:
    """Lower case, with ``_ - . /`` as spaces (``t1_mprage_post`` → ``t1 mprage post``)."""
    return re.sub(r"[_\-./]", " ", text.lower())


def by_description(text: str, contrast_agent: bool = False) -> str | None:
    """The role the description names (None: it names none, or names a series set aside)."""
    t = words(text)
    if SET_ASIDE.search(t):
        return None
    if FLAIR_WORDS.search(t) and not T1_FLAIR.search(t):
        return "flair"
    if T1_WORDS.search(t):
        if NOT_CONTRAST.search(t):  # "T1 pre Gd", "T1 without contrast": before the agent
            return "t1"
        return "t1ce" if contrast_agent or CONTRAST_WORDS.search(t) else "t1"
    if T2_WORDS.search(t):
        return "t2"
    return None


def by_physics(
    tr: float | None, te: float | None, ti: float | None, contrast_agent: bool = False
) -> str | None:
    """The role the timing (ms) points to (None: unknown timing, or none of the four)."""
    if tr is None or te is None:
        return None
    t1 = "t1ce" if contrast_agent else "t1"
    if ti is not None and ti >= 1500 and tr >= 4000:
        return "flair"
    if tr >= 2000 and te >= 60:
        return "t2"
    if te < 30 and (tr < 1500 or (ti is not None and 300 <= ti <= 1300)):
        return t1
    return None


def identify(series: Series) -> Identity:
    """The role of one series and how sure it is (see the module's docstring)."""
    if series.localizer or SET_ASIDE.search(words(series.description)):
        return Identity(None, "set aside", "localizer, diffusion, susceptibility or perfusion")
    named = by_description(series.description, series.contrast_agent)
    timed = by_physics(series.tr_ms, series.te_ms, series.ti_ms, series.contrast_agent)
    timing = f"TR {series.tr_ms} ms, TE {series.te_ms} ms, TI {series.ti_ms} ms"
    if named == "flair" and timed == "t2" and series.ti_ms is None:  # TI not in the header
        return Identity("flair", "medium", f"description; {timing} (no inversion time given)")
    if named and timed and named != timed:
        # T1 and T1ce share their timing: the description (or the agent) tells them apart.
        if {named, timed} == {"t1", "t1ce"}:
            return Identity(named, "high", f"description, and timing of a T1 ({timing})")
        return Identity(None, "low", f"description says {NAMES[named]}, {timing} {NAMES[timed]}")
    if named and timed:
        return Identity(named, "high", f"description and timing ({timing})")
    if named or timed:
        return Identity(named or timed, "medium", "description" if named else timing)
    return Identity(None, "low", f"neither description nor timing ({timing}) names it")


def assign_roles(
    series: list[Series], series_map: dict[str, str] | None = None
) -> tuple[dict[str, Series], dict[str, Identity], list[str]]:
    """One series per role, or the problems that prevent it.

    Args:
        series_map: role → a series' number, UID or exact description, chosen by the user;
            it overrides identification for that role.

    Returns:
        (chosen, identities, problems): ``chosen`` has all four roles when ``problems`` is
        empty; ``identities`` says, for every series key, what it was taken for.
    """
    identities = {s.key: identify(s) for s in series}
    chosen, problems = {}, []
    for role in MODALITIES:
        if series_map and role in series_map:
            picked = [s for s in series if matches(s, series_map[role])]
            why = f"--series-map {role}={series_map[role]}"
        else:
            picked = [s for s in series if identities[s.key].role == role]
            picked = [s for s in picked if identities[s.key].confidence in ("high", "medium")]
            why = "identified"
        if len(picked) == 1:
            chosen[role] = picked[0]
        elif not picked:
            problems.append(f"no {NAMES[role]} series ({why}); found: {found_list(series)}")
        else:
            names = ", ".join(s.label() for s in picked)
            problems.append(
                f"{len(picked)} {NAMES[role]} series ({names}): name the one to use with "
                f"--series-map {role}=SERIES_NUMBER"
            )
    return chosen, identities, problems


def matches(series: Series, wanted: str) -> bool:
    return wanted in (str(series.number), series.key, series.description)


def has_agent(value) -> bool:
    """Whether a ContrastBolusAgent value names an agent ("NONE", "No", "-" do not)."""
    return str(value or "").strip().lower() not in NO_AGENT


def found_list(series: list[Series]) -> str:
    return "; ".join(s.label() for s in series) or "no series"
