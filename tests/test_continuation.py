"""'Should we continue?' (analytics.views.continuation) on a cohort written by hand, rates worked out on paper.

Every patient starts on D1 = 2024-01-01 with a fully recorded 28-day baseline of 20 headache days, and is
re-injected every 84 days unless said otherwise; the data cut-off is set to as_of = 2024-12-01 (D1 + 335).
Each cycle is either N (18 headache days per 28: −10%, no 50% response), R (8 per 28: −60%, a 50%
response) or - (no diary: not evaluable). The patterns (one letter per session):

    3 × NR, 2 × NNR, 1 × NNNR, 4 × NNNN, 2 × N-, 1 × NN, 1 × -NR, 1 × N, 1 × R
    LATE:   NR, the second session on D1 + 120 (late), so cycles 2..4 could not have ended by as_of
    NOBASE: NR without a baseline diary (not eligible)
    NOW:    N then a second session 20 days before as_of (cycle 2 ongoing, 20 days: not evaluable)

Comparable at cycle 1 (eligible, N at cycle 1, a second session): 3 NR, 2 NNR, NNNR, 4 NNNN, 2 N-, NN, LATE
and NOW = 15. Of these, all but NOW had the 84 days of cycle 2 (D2 + 83 ≤ as_of): 14, of whom 4 responded
at cycle 2 (3 NR and LATE) and 2 (N-) have no evaluable cycle 2. By cycle 4: D2 + 3 × 84 − 1 ≤ as_of holds for
the on-schedule patients (D1 + 335) but not LATE (D1 + 371) or NOW: 13, of whom 6 responded in cycles 2–4
(3 NR, 2 NNR, NNNR; NN stopped and counts as not responding). At cycle 2: 2 NNR, NNNR, 4 NNNN and -NR = 8
(too few for a rate), 3 of them responding at cycle 3; no one had the time for cycles 3–5.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from analytics.definitions.config import AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.ingest.load import load_dataset
from analytics.views import continuation, dictionary

D1 = date(2024, 1, 1)
AS_OF = D1 + timedelta(days=335)
HEADACHE_DAYS = {"N": 18, "R": 8}

# patient: (pattern, session offsets from D1 or None for every 84 days, has a baseline diary)
COHORT: dict[str, tuple[str, list[int] | None, bool]] = {
    **{f"NR{i}": ("NR", None, True) for i in range(3)},
    **{f"NNR{i}": ("NNR", None, True) for i in range(2)},
    "NNNR": ("NNNR", None, True),
    **{f"NNNN{i}": ("NNNN", None, True) for i in range(4)},
    **{f"NX{i}": ("N-", None, True) for i in range(2)},
    "NN": ("NN", None, True),
    "XNR": ("-NR", None, True),
    "N": ("N", None, True),
    "R": ("R", None, True),
    "LATE": ("NR", [0, 120], True),
    "NOBASE": ("NR", None, False),
    "NOW": ("NN", [0, 335 - 19], True),
}


def day(offset: int) -> str:
    return (D1 + timedelta(days=offset)).isoformat()


def cohort_files() -> dict[str, bytes]:
    sessions, diary = ["patient_id,session_date"], ["patient_id,date,headache_hours"]
    for patient, (pattern, offsets, baseline) in COHORT.items():
        starts = offsets or [84 * j for j in range(len(pattern))]
        sessions += [f"{patient},{day(o)}" for o in starts]
        if baseline:
            diary += [f"{patient},{day(o)},{6 if o < -8 else 0}" for o in range(-28, 0)]
        ends = [*(s - 1 for s in starts[1:]), 335]
        for letter, start, end in zip(pattern, starts, ends, strict=True):
            if letter == "-":
                continue
            end = min(end, start + 83)
            diary += [
                f"{patient},{day(o)},{6 if (o - start) % 28 < HEADACHE_DAYS[letter] else 0}"
                for o in range(start, end + 1)
            ]
    return {"sessions.csv": ("\n".join(sessions) + "\n").encode(), "diary.csv": ("\n".join(diary) + "\n").encode()}


@pytest.fixture(scope="module")
def analysis():
    dataset = load_dataset(cohort_files())
    assert dataset.rejected.empty
    return analyse(dataset, AnalysisConfig(as_of=AS_OF))


def test_the_cohort_is_what_the_docstring_says(analysis) -> None:
    cycles = analysis.patient_cycles.set_index(["patient_id", "cycle"])
    assert analysis.as_of == pd.Timestamp("2024-12-01")
    assert cycles.loc[("NNR0", 0), "mhd"] == 20 and cycles.loc[("NNR0", 2), "mhd_pct_change"] == pytest.approx(-10)
    assert cycles.loc[("NNR0", 3), "responder_50"] and not cycles.loc[("NNR0", 2), "responder_50"]
    assert pd.isna(cycles.loc[("NX0", 2), "responder_50"]) and cycles.loc[("NX0", 2), "status"] == "complete"
    assert cycles.loc[("LATE", 2), "start_date"] == pd.Timestamp(day(120))
    assert not cycles.loc[("NOBASE", 0), "eligible"]
    assert cycles.loc[("NOW", 2), "status"] == "ongoing" and not cycles.loc[("NOW", 2), "evaluable"]


def test_rates_per_cycle_by_hand(analysis) -> None:
    table = continuation.continuation_by_cycle(analysis).set_index("cycle")
    assert table.index.tolist() == [1, 2, 3]
    counts = [
        "comparable",
        "next_n",
        "next_denominator",
        "next_not_evaluated",
        "within_3_n",
        "within_3_denominator",
        "within_3_not_evaluated",
    ]
    assert table.loc[1, counts].tolist() == [15, 4, 14, 2, 6, 13, 2]
    assert table.loc[2, counts].tolist() == [8, 3, 8, 0, 0, 0, 0]
    # Cycle 3: NNNR and the four NNNN, of whom NNNR responded at cycle 4; cycles 4–6 were not over by as_of.
    assert table.loc[3, counts].tolist() == [5, 1, 5, 0, 0, 0, 0]
    # 4/14 and 6/13 with 95% Wilson intervals: by hand (p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n),
    # z = 1.959964, and statsmodels' proportion_confint(method="wilson"), to 1e-9.
    assert table.loc[1, "next_rate"] == pytest.approx(4 / 14)
    assert table.loc[1, ["next_ci_low", "next_ci_high"]].tolist() == pytest.approx([0.1172, 0.5465], abs=5e-5)
    assert table.loc[1, ["next_ci_low", "next_ci_high"]].tolist() == pytest.approx(
        proportion_confint(4, 14, method="wilson"), abs=1e-9
    )
    assert table.loc[1, "within_3_rate"] == pytest.approx(6 / 13)
    assert table.loc[1, ["within_3_ci_low", "within_3_ci_high"]].tolist() == pytest.approx([0.2321, 0.7086], abs=5e-5)
    assert table.loc[1, ["within_3_ci_low", "within_3_ci_high"]].tolist() == pytest.approx(
        proportion_confint(6, 13, method="wilson"), abs=1e-9
    )
    # Below 10 in the denominator there is no rate, only the counts.
    assert table.loc[2, ["next_rate", "next_ci_low", "next_ci_high", "within_3_rate"]].isna().all()
    lenient = continuation.continuation_by_cycle(analysis, min_comparable=5).set_index("cycle")
    assert lenient.loc[2, "next_rate"] == pytest.approx(3 / 8)
    assert lenient.loc[2, ["next_ci_low", "next_ci_high"]].tolist() == pytest.approx(
        proportion_confint(3, 8, method="wilson"), abs=1e-9
    )


def test_every_patient_gets_the_evidence_of_their_latest_evaluable_cycle_without_themself(analysis) -> None:
    table = continuation.continuation_all_patients(analysis).set_index("patient_id")
    applies = table.index[table["applies"]].tolist()
    # Latest evaluable cycle without a 50% response: N-, N, NN, NNNN (cycle 4), NOW (its cycle 2 is not evaluable).
    assert sorted(applies) == sorted(["NX0", "NX1", "N", "NN", "NOW", "NNNN0", "NNNN1", "NNNN2", "NNNN3"])
    assert table.loc[applies, "cycle"].to_dict() == {
        "NX0": 1,
        "NX1": 1,
        "N": 1,
        "NN": 2,
        "NOW": 1,
        "NNNN0": 4,
        "NNNN1": 4,
        "NNNN2": 4,
        "NNNN3": 4,
    }
    columns = [
        "comparable",
        "next_n",
        "next_denominator",
        "next_not_evaluated",
        "within_3_n",
        "within_3_denominator",
        "within_3_not_evaluated",
    ]
    # NX0 is itself comparable at cycle 1, with no evaluable cycle 2: it leaves the comparable count, both
    # denominators and both not-evaluated counts. NOW leaves only the comparable count (it had no time yet);
    # N had no second session, so it is not among the 15 at all.
    assert table.loc["NX0", columns].tolist() == [14, 4, 13, 1, 6, 12, 1]
    assert table.loc["NOW", columns].tolist() == [14, 4, 14, 2, 6, 13, 2]
    assert table.loc["N", columns].tolist() == [15, 4, 14, 2, 6, 13, 2]
    assert table.loc["NX0", ["next_ci_low", "next_ci_high"]].tolist() == pytest.approx(
        proportion_confint(4, 13, method="wilson"), abs=1e-9
    )
    # NN at cycle 2 is not comparable (no third session): the eight others, too few for a rate.
    assert table.loc["NN", columns].tolist() == [8, 3, 8, 0, 0, 0, 0] and pd.isna(table.loc["NN", "next_rate"])
    # Cycle 4 has no comparable patient (no one had a fifth session).
    assert table.loc["NNNN0", ["comparable", "next_denominator"]].tolist() == [0, 0]
    assert table.loc[["NR0", "R", "XNR", "NOBASE", "LATE"], "applies"].eq(False).all()
    assert table.loc[["NR0", "NOBASE"], columns].isna().all().all()


def test_one_patient_in_words(analysis) -> None:
    evidence = continuation.continuation_evidence(analysis, "NX0")
    assert evidence.applies and evidence.cycle == 1 and evidence.comparable == 14
    next_cycle, within_3 = evidence.outcomes
    assert (next_cycle.numerator, next_cycle.denominator, next_cycle.not_evaluated) == (4, 13, 1)
    assert next_cycle.proportion is not None and next_cycle.proportion.rate == pytest.approx(4 / 13)
    assert next_cycle.statement == (
        "Response at cycle 2: 4 of the 13 comparable patients who had the time to complete cycle 2 (31%; 95% Wilson "
        "CI 13%–58%); 1 of them had no evaluable change there and counts as not responding."
    )
    assert within_3.label == "by cycle 4 (cycles 2–4)"
    assert within_3.statement.startswith("Response by cycle 4 (cycles 2–4): 6 of the 12 comparable patients")
    # After cycle 1 the published figures of that kind are PREEMPT's (derived) and Sarchielli's; none for cycles 2–4.
    assert len(next_cycle.published) == 2 and "about 22%" in next_cycle.published[0]
    assert "not read in the paper" in next_cycle.published[0] and "27%" in next_cycle.published[1]
    assert within_3.published == (
        "none of this kind (a response in cycles 2–4 after none through cycle 1) could be checked.",
    )
    lines = evidence.lines()
    assert lines[0] == (
        "No 50% response through cycle 1 (latest evaluable cycle 1: −10% headache days). Of this clinic's patients, "
        "14 were also without a 50% response through cycle 1 and were given session 2:"
    )
    assert next_cycle.statement in lines and lines[-1] == continuation.CAVEAT


def test_too_few_comparable_patients_gives_no_rate(analysis) -> None:
    evidence = continuation.continuation_evidence(analysis, "NN")
    assert evidence.cycle == 2 and evidence.comparable == 8
    assert [o.statement for o in evidence.outcomes] == [
        "Response at cycle 3: too few comparable patients (n = 8).",
        "Response by cycle 5 (cycles 3–5): too few comparable patients (n = 0).",
    ]
    assert all(o.proportion is None for o in evidence.outcomes)
    # After cycle 2 PREEMPT's derived figure applies to the next cycle.
    assert "about 26%" in evidence.outcomes[0].published[0]


@pytest.mark.parametrize(
    ("patient", "reason"),
    [
        ("NR0", "Already a 50% responder (first at cycle 2): the question does not arise."),
        ("XNR", "Already a 50% responder (first at cycle 3): the question does not arise."),
        ("NOBASE", "The baseline is not evaluable or has no headache days: response cannot be judged from the diary."),
        ("nobody", "No injection session yet: the question does not arise."),
    ],
)
def test_patients_for_whom_the_question_does_not_arise(analysis, patient: str, reason: str) -> None:
    evidence = continuation.continuation_evidence(analysis, patient)
    assert not evidence.applies and evidence.lines() == [reason] and evidence.outcomes == ()


def test_the_definitions_are_in_the_data_dictionary_with_their_values() -> None:
    assert "analytics.views.continuation" in dictionary.DEFINITION_MODULES
    table = dictionary.definition_dictionary(AnalysisConfig(cycle_days=90))
    mine = table[table["source"].str.startswith("analytics.views.continuation")].set_index("term")
    assert len(mine) == len(continuation.DEFINITIONS) == 3
    outcome = mine.loc["Continuation evidence: response at cycle k + 1 and by cycle k + 3"]
    assert "D(k+1) + h × 90 − 1 ≤ as_of" in outcome["definition"] and "fewer than 10 patients" in outcome["definition"]
    assert "continuation_min_comparable = 10" in outcome["parameters"]
    assert "Silberstein" in mine.loc["Continuation evidence: published figures", "definition"]


def test_a_dataset_without_any_comparable_patient_smoke() -> None:
    dataset = load_dataset(
        {"sessions.csv": b"patient_id,session_date\nA,2024-01-01\n", "diary.csv": b"patient_id,date,headache_hours\n"}
    )
    result = analyse(dataset)
    assert continuation.continuation_by_cycle(result).empty
    assert not continuation.continuation_all_patients(result)["applies"].any()
    assert not continuation.continuation_evidence(result, "A").applies


def test_the_comparison_can_be_narrowed_to_some_patients(analysis) -> None:
    # Without the two NNR patients (e.g. another clinic's): at cycle 1, NX0's comparison loses two patients who
    # had the time for cycles 2–4 and responded at cycle 3, and who did not respond at cycle 2.
    everyone = set(analysis.patient_cycles["patient_id"])
    among = everyone - {"NNR0", "NNR1"}
    evidence = continuation.continuation_evidence(analysis, "NX0", among=among)
    next_cycle, within_3 = evidence.outcomes
    assert evidence.comparable == 12
    assert (next_cycle.numerator, next_cycle.denominator) == (4, 11)
    assert (within_3.numerator, within_3.denominator) == (4, 10)
    table = continuation.continuation_by_cycle(analysis, among=among).set_index("cycle")
    assert table.loc[
        1, ["comparable", "next_n", "next_denominator", "within_3_n", "within_3_denominator"]
    ].tolist() == [
        13,
        4,
        12,
        4,
        11,
    ]
    assert continuation.continuation_evidence(analysis, "NX0", among=everyone) == continuation.continuation_evidence(
        analysis, "NX0"
    )
