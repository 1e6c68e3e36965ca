"""Outcomes analytics for onabotulinumtoxinA (Botox) treatment of chronic migraine.

The package turns de-identified diary and injection-session files into per-cycle response
statistics (see ``../shared/SPEC.md``). Its subpackages follow the data flow:

- ``ingest``: the input contract and reading files (schemas, load, archive);
- ``definitions``: parameters and the clinical definitions (config, cycles, cohort, pipeline, clinical);
- ``statistics``: intervals and survival estimates the definitions and views use;
- ``views``: what each page and report shows, computed from the definitions (clinic, outcomes, ...);
- ``privacy``: who may see what (access, audit) and what may leave the clinic (deidentify, suppression);
- ``output``: the export files;
- ``figures``: Plotly figures of the views' tables.

``cli`` is the command line (``python -m analytics``), ``errors`` the base of every refusal and
``synth`` the synthetic data generator (``python -m analytics.synth``). The package never imports
streamlit, so the command line, the tests and the dashboard share one implementation.
"""

__version__ = "0.1.0"
