"""The project's refusals: one base exception for every input the project declines to use.

A refusal is an expected outcome, not a bug: a dataset that breaks the input contract
(``analytics.ingest.load.DatasetRefused``), an upload that is unsafe to open (``ArchiveRefused``), an
access file that cannot be trusted (``AccessFileError``), a raw export that cannot be
de-identified (``DeidentifyError``), a cohort filter with an unknown or contradictory criterion
(``CohortFilterError``), a signed-in person without access (``ui.auth.Refused``). Each says what is
wrong in one line (``str()``), meant for the person who has to fix it, and carries the command
line's exit status; code that must tell a refusal from a bug catches ``AnalyticsRefusal``.
"""

from __future__ import annotations


class AnalyticsRefusal(Exception):
    """Input the project refuses to use; ``str()`` is one line for the user.

    ``exit_code`` is the command line's exit status for the refusal: 2 (bad input) unless the
    refusal sets another (3 for a direct identifier in the data, 4 for an output that cannot be
    written).
    """

    exit_code: int = 2
