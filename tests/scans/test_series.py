"""Series identification: hand-made headers, one rule each."""

import pytest

from gliograde.scans.series import Series, assign_roles, by_description, by_physics, identify


@pytest.mark.parametrize(
    "text, role",
    [
        ("AX T2 FLAIR", "flair"),
        ("t2_tirm_tra_dark-fluid", "flair"),
        ("T1 MPRAGE POST GD", "t1ce"),
        ("AX T1 +C", "t1ce"),
        ("t1_mprage_sag_ce", "t1ce"),
        ("BraTS T1CE", "t1ce"),
        ("AX T1 SE", "t1"),
        ("sag_mprage", "t1"),
        ("t2_tse_tra", "t2"),
        ("T1 precontrast", "t1"),
        ("T1 pre Gd", "t1"),
        ("AX T1 without contrast", "t1"),
        ("Sag T1 FLAIR", "t1"),  # GE's T1 with inversion
        ("AX T1 FLAIR +C", "t1ce"),
        ("AX T2* GRE", None),  # susceptibility: set aside
        ("ep2d_diff_3scan_trace", None),
        ("3-plane localizer", None),
        ("ADC map", None),
    ],
)
def test_descriptions(text, role):
    assert by_description(text) == role


@pytest.mark.parametrize(
    "timing, agent, role",
    [
        ((9000, 85, 2500), False, "flair"),
        ((5000, 100, None), False, "t2"),
        ((500, 10, None), False, "t1"),
        ((500, 10, None), True, "t1ce"),
        ((2300, 3, 900), False, "t1"),  # MPRAGE: long TR, but an inversion of 900 ms
        ((1800, 40, None), False, None),  # proton density-like: none of the four
        ((None, 10, None), False, None),
    ],
)
def test_timings(timing, agent, role):
    assert by_physics(*timing, contrast_agent=agent) == role


def test_an_agent_of_none_is_no_agent():
    from gliograde.scans.series import has_agent

    assert has_agent("Gadobutrol") and not any(map(has_agent, ("NONE", "No", "-", "", None)))


def test_a_flair_without_inversion_time_is_still_a_flair():
    flair = Series("1", "AX FLAIR", 2, tr_ms=9000, te_ms=85, ti_ms=None)
    assert (identify(flair).role, identify(flair).confidence) == ("flair", "medium")


def test_confidence_from_agreement():
    agree = Series("1", "AX T2 FLAIR", 2, tr_ms=9000, te_ms=85, ti_ms=2500)
    assert (identify(agree).role, identify(agree).confidence) == ("flair", "high")
    unnamed = Series("2", "SEQ 7", 7, tr_ms=5000, te_ms=100)
    assert (identify(unnamed).role, identify(unnamed).confidence) == ("t2", "medium")
    clash = Series("3", "AX T2", 3, tr_ms=500, te_ms=10)  # called T2, timed as T1
    assert (identify(clash).role, identify(clash).confidence) == (None, "low")
    scout = Series("4", "AX T1", 1, tr_ms=500, te_ms=10, localizer=True)
    assert identify(scout).confidence == "set aside"


def exam(*extra):
    return [
        Series("f", "AX T2 FLAIR", 2, tr_ms=9000, te_ms=85, ti_ms=2500),
        Series("c", "AX T1 POST", 3, tr_ms=500, te_ms=10, contrast_agent=True),
        Series("t1", "AX T1", 4, tr_ms=500, te_ms=10),
        Series("t2", "AX T2 TSE", 5, tr_ms=5000, te_ms=100),
        *extra,
    ]


def test_one_series_per_role():
    chosen, _, problems = assign_roles(exam(Series("l", "localizer", 1, localizer=True)))
    assert problems == []
    assert {role: s.key for role, s in chosen.items()} == {
        "flair": "f",
        "t1ce": "c",
        "t1": "t1",
        "t2": "t2",
    }


def test_two_flairs_and_a_missing_t2_are_named():
    series = [s for s in exam() if s.key != "t2"]
    series.append(Series("f2", "COR FLAIR", 9, tr_ms=9000, te_ms=85, ti_ms=2500))
    _, _, problems = assign_roles(series)
    assert len(problems) == 2
    assert problems[0] == (
        "2 FLAIR series (series 2 'AX T2 FLAIR', series 9 'COR FLAIR'): name the one to use "
        "with --series-map flair=SERIES_NUMBER"
    )
    assert problems[1].startswith("no T2 series (identified); found: series 2 'AX T2 FLAIR'")


def test_the_series_map_decides():
    series = exam(Series("f2", "COR FLAIR", 9, tr_ms=9000, te_ms=85, ti_ms=2500))
    chosen, _, problems = assign_roles(series, {"flair": "9"})
    assert problems == [] and chosen["flair"].key == "f2"
