"""A link's patient id (analytics.privacy.links): the patient, or one sentence that gives nothing away."""

from __future__ import annotations

from analytics.privacy.links import NOT_VISIBLE, SHOWN_CHARS, PatientLink, patient_from_link

VISIBLE = {"P001", "P002"}  # the user's clinic; P900 exists in another clinic


def test_a_visible_patient_is_opened() -> None:
    assert patient_from_link("P001", VISIBLE) == PatientLink(patient_id="P001")
    assert patient_from_link("  P002 ", VISIBLE) == PatientLink(patient_id="P002")  # a pasted link's spaces


def test_unknown_and_out_of_scope_ids_get_the_same_words() -> None:
    other_clinic = patient_from_link("P900", VISIBLE)
    nobody = patient_from_link("P999", VISIBLE)
    assert other_clinic.patient_id is None and nobody.patient_id is None
    assert other_clinic.message == "Patient P900 is not in the data you can see"
    assert nobody.message == "Patient P999 is not in the data you can see"
    assert (
        other_clinic.message.replace("P900", "X")
        == nobody.message.replace("P999", "X")
        == NOT_VISIBLE.format(patient="X")
    )


def test_no_patient_in_the_link_is_no_message() -> None:
    assert patient_from_link(None, VISIBLE) == PatientLink()
    assert patient_from_link("   ", VISIBLE) == PatientLink()


def test_the_id_is_shown_as_plain_text_cut_to_64_characters() -> None:
    long = patient_from_link("A" * 100, VISIBLE).message
    shown = long.removeprefix("Patient ").removesuffix(" is not in the data you can see")
    assert len(shown) == SHOWN_CHARS == 64 and shown == "A" * 63 + "…"
    exactly = patient_from_link("B" * 64, VISIBLE).message
    assert "B" * 64 + " is not" in exactly
    crafted = patient_from_link("**x**\n[click](http://evil.example) :red[!] $x$", VISIBLE)
    assert "\n" not in crafted.message and "\ufffd" in crafted.message  # the newline is shown as a replacement mark
    markdown = crafted.markdown()
    # Every character of the id that opens a Markdown construct is escaped, so Streamlit shows it as typed
    # rather than as bold or a link.
    assert "\\*\\*x\\*\\*" in markdown and "\\[click\\]\\(http\\://evil.example\\)" in markdown
    assert "\\:red\\[\\!\\]" in markdown and "\\$x\\$" in markdown
    assert PatientLink(patient_id="P001").markdown() is None
