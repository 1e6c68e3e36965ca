"""The PDF summaries (analytics.views.summary_pdf): one page, the patient's numbers, plain words, escaped text.

The PDFs are read back with pypdf, as a reader would see them. The dataset is hand-worked (as_of is
its latest date, 2024-08-15):

    R1: sessions 2024-03-01 and 2024-05-24; diary every day 2024-02-02..2024-08-15 (day index i from 0),
        6 h of headache unless i % 3 == 0, acute medication on even days from 2024-05-24 (i >= 112).
        baseline [2024-02-02, 2024-02-29]: 18 headache days in 28 -> mhd 18.0, amd 0.0.
        cycle 1 [2024-03-01, 2024-05-23], 84 days: 56 headache days -> 18.7 (+4%); amd 0.0.
        cycle 2 [2024-05-24, 2024-08-15], 84 days, complete on as_of: 56 -> 18.7 (+4%); acute medication on
        42 of 84 days -> amd 14.0 >= 10: medication overuse marked in that window only.
        NICE: +4% after 2 cycles -> stop. 83 days since the last session: active, next due 2024-08-16.
        HIT-6 64 on 2024-02-20 and 58 on 2024-05-24 (latest: substantial impact, 56-59); MIDAS 25 (grade IV).
        One adverse event: neck pain after the first session, onset day 3, resolved 2024-03-10 (7 days).
        Clinic written with markup: <font size="40">North</font>.
    R2: sessions 2024-01-05 and 2024-04-26 (112 days apart: late, over 98); diary every day
        2023-12-08..2024-07-30; discontinued on 2024-07-01 with a reason holding markup and a formula.
    R3: in patients.csv only, never injected.
"""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pypdf
import pytest

from analytics.definitions import clinical
from analytics.definitions.config import AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.ingest.load import load_dataset
from analytics.views import patient_words, summary_pdf
from analytics.views.summary_record import PatientRecords, SummaryContext, due_within, window_table

REASON = '<b>x</b> =HYPERLINK("http://evil.example","click")'
CLINIC = '<font size="40">North</font>'
JARGON = ("mhd", "p-value", "evaluable", "cumulative", "baseline", "cycle", "responder", "NICE", "EHF", "episodic")


def _days(first: str, last: str) -> list[date]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def write_files(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    diary = ["patient_id,date,headache_hours,migraine,severity,acute_medication"]
    for i, d in enumerate(_days("2024-02-02", "2024-08-15")):
        acute = str(i >= 112 and i % 2 == 0).lower()
        diary.append(f"R1,{d},{6 if i % 3 else 0},{'true' if i % 3 else 'false'},2,{acute}")
    for i, d in enumerate(_days("2023-12-08", "2024-07-30")):
        diary.append(f"R2,{d},{5 if i % 2 == 0 else 0},false,1,false")
    files = {
        "diary.csv": "\n".join(diary) + "\n",
        "sessions.csv": (
            "patient_id,session_date,total_units\nR1,2024-03-01,155\nR1,2024-05-24,155\n"
            "R2,2024-01-05,155\nR2,2024-04-26,155\n"
        ),
        "patients.csv": (
            "patient_id,sex,age_band,clinic,prior_preventives,medication_overuse,discontinued_on,"
            "discontinuation_reason\n"
            f'R1,F,40-49,"{CLINIC.replace(chr(34), chr(34) * 2)}",3,false,,\n'
            f'R2,M,50-59,South,4,false,2024-07-01,"{REASON.replace(chr(34), chr(34) * 2)}"\n'
            "R3,F,30-39,South,1,false,,\n"
        ),
        "questionnaires.csv": (
            "patient_id,date,instrument,score\nR1,2024-02-20,HIT-6,64\nR1,2024-05-24,HIT-6,58\nR1,2024-05-24,MIDAS,25\n"
        ),
        "adverse_events.csv": (
            "patient_id,session_date,event,severity,onset_date,resolved_date,serious\n"
            "R1,2024-03-01,neck_pain,mild,2024-03-04,2024-03-10,false\n"
        ),
    }
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def records_of(folder: Path, config: AnalysisConfig | None = None) -> tuple[PatientRecords, SummaryContext]:
    dataset = load_dataset(folder)
    analysis = analyse(dataset, config)
    tables = clinical.clinical_tables(analysis, dataset)
    records = PatientRecords(analysis, dataset, tables)
    return records, SummaryContext(analysis.config, tables.params, analysis.as_of, "hand-worked <i>data</i>")


def pdf_pages(pdf: bytes) -> list[pypdf.PageObject]:
    return list(pypdf.PdfReader(io.BytesIO(pdf)).pages)


def pdf_text(pdf: bytes) -> str:
    """The text of every page, whitespace runs made one space (pypdf breaks lines where the PDF does)."""
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in pdf_pages(pdf)))


# Flesch (1948) reading ease and Kincaid et al. (1975) grade level, with a vowel-group syllable count.
def syllables(word: str) -> int:
    w = re.sub(r"[^a-z]", "", word.lower())
    if not w:
        return 1  # a number
    count = len(re.findall(r"[aeiouy]+", w))
    count += len(re.findall(r"(?<![tcsg])i[aou]|ea$|uo", w))  # ia, io, iu, final ea, uo: two syllables
    if re.search(r"[^aeiouy]e$", w) and not re.search(r"[^aeiouy]le$", w):
        count -= 1  # silent final e (make), not -le (little)
    elif re.search(r"[^aeiouy](es|ed)$", w) and not re.search(r"([cgsxzh]es|[td]ed|[^aeiouy]les)$", w):
        count -= 1  # silent -es / -ed (takes, filled), not wishes, needed, cycles
    return max(1, count)


def text_counts(text: str) -> tuple[int, int, int]:
    """Sentences (ended by . ! ? or a line break), words and syllables."""
    sentences = [s for s in re.split(r"[.!?]+(?:\s|$)|\n", text) if re.search(r"\w", s)]
    words = re.findall(r"[A-Za-z0-9][A-Za-z0-9'’\-]*", text)
    return len(sentences), len(words), sum(syllables(w) for w in words)


def flesch_reading_ease(text: str) -> float:
    sentences, words, syllable_count = text_counts(text)
    return 206.835 - 1.015 * words / sentences - 84.6 * syllable_count / words


def flesch_kincaid_grade(text: str) -> float:
    sentences, words, syllable_count = text_counts(text)
    return 0.39 * words / sentences + 11.8 * syllable_count / words - 15.59


@pytest.fixture(scope="module")
def hand(tmp_path_factory: pytest.TempPathFactory) -> tuple[PatientRecords, SummaryContext]:
    return records_of(write_files(tmp_path_factory.mktemp("summary") / "data"))


@pytest.fixture(scope="module")
def r1_doctor(hand: tuple[PatientRecords, SummaryContext]) -> bytes:
    records, context = hand
    return summary_pdf.build_summary_pdf(records.record("R1"), context, "doctor", "a4")


def test_reading_ease_matches_the_published_example():
    # Wikipedia, "Flesch-Kincaid readability tests": this sentence scores 24.4 (13 words, 26 syllables).
    sentence = "The Australian platypus is seemingly a hybrid of a mammal and reptilian creature."
    assert text_counts(sentence) == (1, 13, 26)
    assert flesch_reading_ease(sentence) == pytest.approx(24.4, abs=0.05)
    # Hand count: 6 one-syllable words in one sentence: 206.835 - 1.015*6 - 84.6 = 116.145; grade 0.39*6 + 11.8 - 15.59.
    assert flesch_reading_ease("The cat sat on the mat.") == pytest.approx(116.145)
    assert flesch_kincaid_grade("The cat sat on the mat.") == pytest.approx(-1.45)
    words = ("headache", "injection", "medicine", "little", "filled", "cycles")
    assert [syllables(w) for w in words] == [2, 3, 3, 2, 1, 2]


def test_window_table_marks_overuse_late_reinjection_and_changes(hand: tuple[PatientRecords, SummaryContext]):
    records, context = hand
    r1 = records.record("R1").windows
    assert r1["label"].tolist() == ["Baseline", "Cycle 1", "Cycle 2"]
    assert r1["mhd"].round(1).tolist() == [18.0, 18.7, 18.7]
    assert r1["amd"].tolist() == [0.0, 0.0, 14.0]
    assert r1["overuse"].tolist() == [False, False, True]  # 14.0 >= overuse_acute_days 10
    assert r1["amd_pct_change"].isna().all()  # baseline acute-medication days 0: no relative change
    # Migraine on the headache days too: 18 -> 18.67 per 28 days, +3.7%.
    assert r1["mmd_pct_change"].iloc[1] == pytest.approx(100 * (56 / 84 * 28 - 18) / 18)
    assert r1["interval_days"].iloc[2] == 84 and not r1["late"].any()
    r2 = records.record("R2").windows
    assert r2["interval_days"].iloc[2] == 112 and bool(r2["late"].iloc[2])
    assert r2["late"].iloc[:2].isna().all()  # the baseline and the first session follow no session
    # Every patient at once gives the same rows as one at a time.
    one = window_table(records.record("R2").cycles, context.config).reset_index(drop=True)
    pd.testing.assert_frame_equal(one, r2)


def test_due_within_takes_active_and_overdue_patients_due_by_the_date(hand: tuple[PatientRecords, SummaryContext]):
    records, context = hand
    status = records.analysis.patient_status
    # R1 next due 2024-08-16 = as_of + 1; R2 is discontinued and never due.
    assert due_within(status, context.as_of, 0) == []
    assert due_within(status, context.as_of, 1) == ["R1"]
    assert due_within(status, context.as_of, 365) == ["R1"]


def test_doctor_summary_is_one_page_with_the_patients_numbers(r1_doctor: bytes):
    assert len(pdf_pages(r1_doctor)) == 1
    text = pdf_text(r1_doctor)
    assert "Clinical summary · patient R1" in text
    # Treatment state and next due date (SPEC §5), with the rule that gives it.
    assert "active · Active: next session due 16 Aug 2024" in text
    assert "2024-08-16 (last session + 84 days)" in text
    # The windows with their n, values and changes; cycle 2 marked for medication overuse.
    assert "Baseline 2024-02-02 – 2024-02-29 28/28 (100%) yes 18.0 18.0 0.0" in text
    assert "Cycle 1 2024-03-01 – 2024-05-23 84/84 (100%) yes 18.7 (+4%) 18.7 (+4%) 0.0 <30% first" in text
    assert "Cycle 2 2024-05-24 – 2024-08-15 84/84 (100%) yes 18.7 (+4%) 18.7 (+4%) 14.0 MO <30% 84 d" in text
    # The NICE rule with its numbers; the stop it indicates.
    assert "NICE TA260: <30% reduction after 2 cycles (18.0 → 18.7 headache days/28 d, +4%)" in text
    assert "Stop indicated: NICE 30%" in text and "NICE TA260: stop" in text
    # Questionnaires with bands, the adverse event, diary completeness, parameters in small print.
    assert "HIT-6: latest 58, substantial impact (56–59), on 2024-05-24; first 64 on 2024-02-20 (2 scores)" in text
    assert "MIDAS: latest 25, IV: severe disability (≥21), on 2024-05-24" in text
    assert "Adverse events: 1 event after 1 of 2 sessions; none serious" in text
    assert "neck pain mild day 3 2024-03-10 (7 d) no" in text
    assert "Diary: 196 of 196 days recorded from 2024-02-02 to 2024-08-15 (100%); 3 of 3 windows evaluable." in text
    assert "overuse_acute_days = 10.0" in text and "on_time_max_days = 98" in text


def test_late_reinjection_and_discontinuation_reason_print_as_typed(hand: tuple[PatientRecords, SummaryContext]):
    records, context = hand
    pdf = summary_pdf.build_summary_pdf(records.record("R2"), context, "doctor", "letter")
    assert len(pdf_pages(pdf)) == 1
    text = pdf_text(pdf)
    assert "112 d late" in text
    assert "1 late (>98 d); longest 112 d" in text
    # The reason is data: its markup and formula are printed, never interpreted.
    assert f"Discontinued on 01 Jul 2024: {REASON}" in text
    assert "discontinued" in text and "no next injection: treatment discontinued" in text


def test_data_derived_text_is_never_markup(r1_doctor: bytes, hand: tuple[PatientRecords, SummaryContext]):
    text = pdf_text(r1_doctor)
    assert f"clinic: {CLINIC}" in text
    assert "source: hand-worked <i>data</i>" in text
    records, context = hand
    patient = pdf_text(summary_pdf.build_summary_pdf(records.record("R2"), context, "patient", "a4"))
    assert "Reference: R2" in patient


def test_page_sizes(hand: tuple[PatientRecords, SummaryContext]):
    records, context = hand
    for size, (width, height) in (("a4", (595.3, 841.9)), ("letter", (612, 792))):
        for kind in summary_pdf.KINDS:
            (page,) = pdf_pages(summary_pdf.build_summary_pdf(records.record("R1"), context, kind, size))
            assert float(page.mediabox.width) == pytest.approx(width, abs=0.1)
            assert float(page.mediabox.height) == pytest.approx(height, abs=0.1)
    with pytest.raises(ValueError, match="page_size"):
        summary_pdf.build_summary_pdf(records.record("R1"), context, "doctor", "a5")
    with pytest.raises(ValueError, match="kind"):
        summary_pdf.build_summary_pdf(records.record("R1"), context, "nurse", "a4")


def test_an_untreated_patient_gets_a_page_that_says_so(hand: tuple[PatientRecords, SummaryContext]):
    records, context = hand
    doctor = summary_pdf.build_summary_pdf(records.record("R3"), context, "doctor", "a4")
    assert len(pdf_pages(doctor)) == 1
    assert "No injection session up to the data cut-off (2024-08-15)." in pdf_text(doctor)
    patient = summary_pdf.build_summary_pdf(records.record("R3"), context, "patient", "a4")
    assert "You have not had your first injection yet." in pdf_text(patient)
    with pytest.raises(KeyError):
        records.record("R4")


def test_appendix_adds_chart_pages(hand: tuple[PatientRecords, SummaryContext]):
    records, context = hand
    pdf = summary_pdf.build_summary_pdf(records.record("R1"), context, "doctor", "a4", appendix=True)
    pages = pdf_pages(pdf)
    assert len(pages) >= 2
    images = [name for page in pages[1:] for name in page.images]
    assert len(images) == 3  # rates per window, rolling headache days, questionnaires
    assert "Rates per window" in pdf_text(pdf) and "Rolling 28-day headache days" in pdf_text(pdf)
    patient = pdf_pages(summary_pdf.build_summary_pdf(records.record("R1"), context, "patient", "a4", appendix=True))
    assert len(patient) == 2 and len(patient[1].images) == 1


def test_long_history_stays_on_one_page_with_the_latest_cycles(tmp_path: Path):
    # L1: 60 sessions 84 days apart from 2020-01-03 (61 windows), the diary recorded every day from the baseline on.
    first = date(2020, 1, 3)
    sessions = [first + timedelta(days=84 * k) for k in range(60)]
    diary = ["patient_id,date,headache_hours,migraine,severity,acute_medication"]
    for i, d in enumerate(_days(str(first - timedelta(days=28)), str(sessions[-1] + timedelta(days=83)))):
        diary.append(f"L1,{d},{6 if i % 4 else 0},true,2,{str(i % 3 == 0).lower()}")
    folder = tmp_path / "long"
    folder.mkdir()
    (folder / "diary.csv").write_text("\n".join(diary) + "\n")
    (folder / "sessions.csv").write_text("patient_id,session_date\n" + "".join(f"L1,{d}\n" for d in sessions))
    records, context = records_of(folder)
    for size in summary_pdf.PAGE_SIZES:
        pdf = summary_pdf.build_summary_pdf(records.record("L1"), context, "doctor", size)
        assert len(pdf_pages(pdf)) == 1
        text = pdf_text(pdf)
        omitted = re.search(r"(\d+) earlier cycles omitted \(cycles 1–(\d+)\)", text)
        assert omitted and omitted.group(1) == omitted.group(2)
        last_left_out = int(omitted.group(1))
        assert last_left_out >= 60 - max(summary_pdf.SHOWN_CYCLES)
        table = text.split("(change from baseline)")[1].split("earlier cycles omitted")[0]
        assert "Baseline 2019-12-06 – 2020-01-02" in table
        assert f"Cycle {last_left_out + 1} " in table and "Cycle 60 2033-07-29 – 2033-10-20" in table
        assert f"Cycle {last_left_out} " not in table


def test_patient_page_in_plain_words(hand: tuple[PatientRecords, SummaryContext]):
    records, context = hand
    page = patient_words.patient_page(records.record("R1"), context)
    text = page.text()
    assert "Before your first injection, you had about 18 headache days in every 4 weeks." in text
    assert "We counted this from the 28 days you filled in your diary in the 4 weeks before it." in text
    assert "Your last injection was on 24 May 2024." in text
    assert "In the 12 weeks after it, you had about 19 headache days in every 4 weeks." in text
    assert "After the injection before that, you had about 19 headache days. So this time you had about the" in text
    assert "Before treatment, you had about 18 headache days. So now you have 1 more headache day." in text
    # Acute medication on 14 of 28 days: the overuse advice, in words.
    assert "You took medicine for your headache on about 14 days in every 4 weeks." in text
    assert "Taking headache medicine on 10 or more days in 4 weeks can make headaches worse." in text
    assert "Your next injection is due on 16 August 2024." in text
    assert "Most people feel a change 2 to 3 weeks after an injection." in text
    assert "usually works for about 3 months. It may wear off" in text
    assert "We count a day as a headache day when you had 4 hours of headache or more." in text
    assert "(HIT-6) your last score was 58, on 24 May 2024. This means headaches have a large effect" in text
    assert "You told us about a side effect" not in text  # the neck pain followed the first injection, not the last
    pdf = summary_pdf.build_summary_pdf(records.record("R1"), context, "patient", "letter")
    assert len(pdf_pages(pdf)) == 1
    assert "Your next injection is due on 16 August 2024." in pdf_text(pdf)
    for word in JARGON:
        assert not re.search(rf"\b{re.escape(word)}\b", pdf_text(pdf), re.I), word
    assert flesch_kincaid_grade(text) <= 8


def test_patient_page_for_a_discontinued_patient(hand: tuple[PatientRecords, SummaryContext]):
    records, context = hand
    text = patient_words.patient_page(records.record("R2"), context).text()
    assert "Your treatment stopped on 1 July 2024, so no injection is due." in text
    assert REASON not in text  # the clinic's reason is for the doctor's page


# --- every patient of the bundled sample data


@pytest.fixture(scope="module")
def sample() -> tuple[PatientRecords, SummaryContext]:
    from analytics.definitions.config import SAMPLE_DATA_DIR

    return records_of(SAMPLE_DATA_DIR)


def _one(value: object) -> str:
    return f"{float(value):.1f}"


def test_every_sample_patients_clinical_summary_is_one_a4_page(sample: tuple[PatientRecords, SummaryContext]):
    records, context = sample
    assert len(records.ids) == 360  # 350 treated, 10 never injected
    page_counts = {
        patient_id: len(pdf_pages(summary_pdf.build_summary_pdf(records.record(patient_id), context, "doctor", "a4")))
        for patient_id in records.ids
    }
    assert {p: n for p, n in page_counts.items() if n != 1} == {}


def test_sample_clinical_summaries_on_letter_carry_the_key_numbers(sample: tuple[PatientRecords, SummaryContext]):
    records, context = sample
    chosen = records.ids[::9]  # 40 patients across the sample, treated and not
    assert len(chosen) == 40
    for patient_id in chosen:
        record = records.record(patient_id)
        pdf = summary_pdf.build_summary_pdf(record, context, "doctor", "letter")
        assert len(pdf_pages(pdf)) == 1, patient_id
        text = pdf_text(pdf)
        if record.status is None:
            assert "No injection session up to the data cut-off" in text, patient_id
            continue
        status, windows = record.status, record.windows
        baseline, latest = windows.iloc[0], windows.iloc[-1]
        assert f"Baseline {baseline['start_date']:%Y-%m-%d}" in text, patient_id
        if pd.notna(baseline["mhd"]):
            assert f"{baseline['recorded_days']}/{baseline['window_days']} (" in text, patient_id  # n/days (%)
            assert f" {_one(baseline['mhd'])} " in text, patient_id
        label = latest["label"] + (" (ongoing)" if latest["status"] == "ongoing" else "")
        assert f"{label} {latest['start_date']:%Y-%m-%d}" in text, patient_id
        if pd.notna(latest["mhd"]):
            assert f" {_one(latest['mhd'])}" in text, patient_id
        assert f"Treatment state {status['treatment_state']} · " in text, patient_id
        if status["treatment_state"] != "discontinued":
            assert f"Next injection due {status['next_due']:%Y-%m-%d}" in text, patient_id
        assert f"NICE TA260: {status['nice_state']}" in text, patient_id


def test_sample_patient_pages_are_one_plain_page(sample: tuple[PatientRecords, SummaryContext]):
    records, context = sample
    chosen = ["P00005", *records.ids[::30]]  # P00005 and 12 patients across the sample
    grades = {}
    for patient_id in chosen:
        record = records.record(patient_id)
        words = patient_words.patient_page(record, context).text()
        grades[patient_id] = flesch_kincaid_grade(words)
        assert flesch_reading_ease(words) >= 60, patient_id  # "plain English" or easier
        for size in summary_pdf.PAGE_SIZES:
            pdf = summary_pdf.build_summary_pdf(record, context, "patient", size)
            assert len(pdf_pages(pdf)) == 1, (patient_id, size)
        text = pdf_text(pdf)
        for word in (*JARGON, "%", "rate", "28 d"):
            assert not re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.I), (patient_id, word)
        if record.status is not None and record.status["treatment_state"] in ("active", "overdue"):
            assert patient_words.long_date(record.status["next_due"]) in text, patient_id
    assert max(grades.values()) <= 8, grades
