"""The patient's page in plain words: before treatment, since the last injection, what to expect, when next.

A clinic hands this page to the patient, so it speaks as a clinic's patient guide does: short
sentences, whole numbers ("about 9 headache days in 4 weeks"), dates written out, no statistics
and no clinical shorthand (no rates, percentages, windows, rule names or p-values). The numbers are
SPEC §3's rates of the patient's windows (headache and acute-medication days per 28 recorded days),
SPEC §5's treatment state and next due date, and the questionnaire bands of
``analytics.definitions.clinical``; a window without enough diary days is not turned into a number
but explained. ``patient_page`` returns the words only (``PlainPage``); ``summary_pdf`` lays them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from analytics.views.summary_record import PatientRecord, SummaryContext

# The clinic's patient guide on what to expect from the injections (PREEMPT and NICE TA260 patient
# information: onset after 2-3 weeks, effect may build over the first cycles, about 12 weeks each).
WHAT_TO_EXPECT = (
    "Botox does not work straight away. Most people feel a change 2 to 3 weeks after an injection.",
    "The effect can grow with each new set of injections. Your doctor will look at how well it works "
    "after the first two sets.",
    "Each set of injections usually works for about 3 months. It may wear off a little before the next one "
    "is due. If it does, write it in your diary and tell us at your next visit.",
)

DIARY_ITEMS = (
    "how many hours of headache you had (write 0 on a day with no headache)",
    "if it was a migraine",
    "how bad it was: mild, moderate or severe",
    "if you took any medicine for your headache",
)

# HIT-6 bands 1-4 and MIDAS grades I-IV (``clinical.questionnaire_bands``) in plain words.
HIT6_WORDS = {
    1: "headaches have little or no effect on your life",
    2: "headaches have some effect on your life",
    3: "headaches have a large effect on your life",
    4: "headaches have a very large effect on your life",
}
MIDAS_WORDS = {
    1: "headaches stop you doing things on few or no days",
    2: "headaches stop you doing things on some days",
    3: "headaches stop you doing things on many days",
    4: "headaches stop you doing things on a great many days",
}


@dataclass(frozen=True)
class PlainSection:
    heading: str
    paragraphs: list[str]
    bullets: list[str] = field(default_factory=list)
    closing: list[str] = field(default_factory=list)
    """Paragraphs after the bullets."""


@dataclass(frozen=True)
class PlainPage:
    title: str
    intro: str
    sections: list[PlainSection]
    footer: str

    def text(self) -> str:
        """All the words of the page, one sentence or list item per line (for reading-level checks)."""
        lines = [self.title, self.intro]
        for section in self.sections:
            lines += [section.heading, *section.paragraphs, *(b + "." for b in section.bullets), *section.closing]
        return "\n".join([*lines, self.footer])


def long_date(value: Any) -> str:
    """A date as a patient reads it: 17 January 2026."""
    day = pd.Timestamp(value)
    return f"{day.day} {day:%B %Y}"


def _days(value: float, kind: str = "headache ") -> str:
    """A rate per 28 days in whole days: about 9 headache days, about 1 headache day, less than 1."""
    whole = round(value)
    if value <= 0:
        return f"no {kind}days"
    if whole == 0:
        return f"less than 1 {kind}day"
    return f"about {whole} {kind}day" + ("" if whole == 1 else "s")


def _medicine(value: float) -> str:
    if value <= 0:
        return "You did not take any medicine for your headache."
    return f"You took medicine for your headache on {_days(value, '')} in every 4 weeks."


def _span(days: int) -> str:
    """A length of time in whole weeks (37 days: 5 weeks); under 2 weeks in days."""
    if days < 14:
        return "1 day" if days == 1 else f"{days} days"
    weeks = round(days / 7)
    return f"{weeks} weeks"


def _change(now: float, before: float) -> str:
    """How two rates of headache days differ, in whole days: 6 fewer headache days, 1 more headache day, about the
    same number, half as many or fewer."""
    gap = round(before) - round(now)
    if before > 0 and gap >= 2 and now <= before / 2:
        return "half as many or fewer"
    if gap != 0:
        return f"{abs(gap)} {'fewer' if gap > 0 else 'more'} headache day" + ("" if abs(gap) == 1 else "s")
    return "about the same number"


def _before_treatment(record: PatientRecord, context: SummaryContext) -> PlainSection:
    heading = "Before treatment"
    if not record.treated:
        return PlainSection(heading, ["You have not had your first injection yet."])
    base = record.cycles.iloc[0]
    span = _span(int(base["window_days"]))
    recorded = int(base["recorded_days"])
    if not bool(base["evaluable"]):
        return PlainSection(
            heading,
            [
                f"In the {span} before your first injection, you filled in your diary on {recorded} of "
                f"{int(base['window_days'])} days. That is too few days for us to count your headache days."
            ],
        )
    words = [
        f"Before your first injection, you had {_days(float(base['mhd']))} in every 4 weeks.",
        f"We counted this from the {recorded} days you filled in your diary in the {span} before it.",
    ]
    if pd.notna(base["amd"]):
        words.append(_medicine(float(base["amd"])))
    return PlainSection(heading, words)


def _side_effects(record: PatientRecord, session: pd.Timestamp) -> list[str]:
    events = record.adverse_events
    if events is None or events.empty:
        return []
    after = events.loc[events["session_date"] == session, "event"].dropna().astype(str)
    names = list(dict.fromkeys(name.replace("_", " ") for name in after))
    if not names:
        return []
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return [f"You told us about a side effect after this injection: {listed}."]


def _scores(record: PatientRecord) -> list[str]:
    words = []
    q = record.questionnaires
    for instrument, form, meanings in (
        ("HIT-6", "the form about how headaches affect your life (HIT-6)", HIT6_WORDS),
        ("MIDAS", "the form about days lost to headache (MIDAS)", MIDAS_WORDS),
    ):
        rows = q[(q["instrument"] == instrument) & q["band_level"].notna()] if not q.empty else q
        if rows.empty:
            continue
        latest = rows.iloc[-1]
        words.append(
            f"On {form} your last score was {latest['score']:g}, on {long_date(latest['date'])}. "
            f"This means {meanings[int(latest['band_level'])]}."
        )
    return words


def _since_last_injection(record: PatientRecord, context: SummaryContext) -> PlainSection:
    heading = "Since your last injection"
    if not record.treated:
        return PlainSection(heading, [])
    cycles = record.cycles
    last = cycles.iloc[-1]
    session = pd.Timestamp(last["start_date"])
    base = cycles.iloc[0]
    words = [f"Your last injection was on {long_date(session)}."]
    if bool(last["evaluable"]):
        since = "since then" if last["status"] == "ongoing" else "after it"
        now = float(last["mhd"])
        words.append(f"In the {_span(int(last['window_days']))} {since}, you had {_days(now)} in every 4 weeks.")
        if len(cycles) >= 3 and bool(cycles.iloc[-2]["evaluable"]):
            previous = float(cycles.iloc[-2]["mhd"])
            words.append(
                f"After the injection before that, you had {_days(previous)}. "
                f"So this time you had {_change(now, previous)}."
            )
        if bool(base["evaluable"]):
            before = float(base["mhd"])
            words.append(f"Before treatment, you had {_days(before)}. So now you have {_change(now, before)}.")
        if pd.notna(last["amd"]):
            words.append(_medicine(float(last["amd"])))
            overuse = record.windows.iloc[-1]["overuse"]  # clinical.cycle_flags: medication overuse
            if pd.notna(overuse) and bool(overuse):
                words.append(
                    f"Taking headache medicine on {context.config.overuse_acute_days:g} or more days in 4 weeks can "
                    "make headaches worse. Please talk to your doctor about this."
                )
    else:
        recorded, length = int(last["recorded_days"]), int(last["window_days"])
        if length < context.config.min_window_days:
            words.append("It is too soon to tell how well it is working. We need at least 4 weeks of your diary.")
        else:
            words.append(
                f"Since then you filled in your diary on {recorded} of {length} days. That is too few days for us "
                "to count your headache days."
            )
        earlier = cycles[(cycles["cycle"] >= 1) & cycles["evaluable"].astype(bool)]
        if not earlier.empty:
            shown = float(earlier.iloc[-1]["mhd"])
            words.append(
                f"After your injection on {long_date(earlier.iloc[-1]['start_date'])}, you had {_days(shown)} "
                "in every 4 weeks."
            )
            if bool(base["evaluable"]):
                before = float(base["mhd"])
                words.append(f"Before treatment, you had {_days(before)}. So then you had {_change(shown, before)}.")
    words += _side_effects(record, session)
    words += _scores(record)
    return PlainSection(heading, words)


def _next_injection(record: PatientRecord, context: SummaryContext) -> PlainSection:
    heading = "Your next injection"
    status = record.status
    if status is None:
        return PlainSection(heading, ["The clinic will tell you when your first injection is booked."])
    state = status["treatment_state"]
    if state == "discontinued":
        words = [
            f"Your treatment stopped on {long_date(status['discontinued_on'])}, so no injection is due.",
            "If your headaches get worse, please talk to your doctor.",
        ]
    elif state == "active":
        words = [
            f"Your next injection is due on {long_date(status['next_due'])}.",
            "If you do not have a date for it yet, please call the clinic.",
        ]
    elif state == "overdue":
        words = [
            f"Your next injection was due on {long_date(status['next_due'])}.",
            "Please call the clinic soon to book it.",
        ]
    else:
        words = [
            f"We have not seen you for an injection since {long_date(status['last_session'])}.",
            "If you want to go on with the treatment, please call the clinic.",
        ]
    return PlainSection(heading, words)


def _diary(record: PatientRecord, context: SummaryContext) -> PlainSection:
    hours = context.config.headache_min_hours
    words = ["Please fill in your diary every day, even on days with no headache. Each day, write down:"]
    closing = [
        f"We count a day as a headache day when you had {hours:g} hours of headache or more.",
        "A day you leave blank cannot be counted.",
    ]
    if record.treated:
        last = record.cycles.iloc[-1]
        recorded, length = int(last["recorded_days"]), int(last["window_days"])
        thanks = "Thank you!" if recorded == length else "Please try to fill it in every day."
        closing.append(
            f"Since your last injection, you filled it in on {recorded} of {length} day{'' if length == 1 else 's'}. "
            + thanks
        )
    return PlainSection("Your diary", words, list(DIARY_ITEMS), closing)


def patient_page(record: PatientRecord, context: SummaryContext) -> PlainPage:
    """The plain-words page of one patient."""
    intro = f"This page is made from your headache diary up to {long_date(context.as_of)}."
    if context.generated_at is not None:
        intro += f" It was made on {long_date(context.generated_at)}."
    sections = [
        _before_treatment(record, context),
        _since_last_injection(record, context),
        PlainSection("What to expect", list(WHAT_TO_EXPECT)),
        _next_injection(record, context),
        _diary(record, context),
    ]
    return PlainPage(
        title="Your Botox treatment for migraine",
        intro=intro,
        sections=[s for s in sections if s.paragraphs],
        footer=(
            "This page does not replace advice from your doctor or nurse. If you have questions, please ask the "
            f"clinic. Reference: {record.patient_id}."
        ),
    )
