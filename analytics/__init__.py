"""Outcomes analytics for onabotulinumtoxinA (Botox) treatment of chronic migraine.

The package turns de-identified diary and injection-session files into per-cycle response
statistics (see ``../shared/SPEC.md``): ``load`` validates the input contract, ``cycles`` and
``cohort`` compute the definitions, ``export`` writes the export tables. It never imports
streamlit, so the command line, the tests and the dashboard share one implementation.
"""

__version__ = "0.1.0"
