"""Definitions: the clinical definitions of SPEC §3 over a loaded ``Dataset``.

``config`` holds every parameter with its documented default (and the project paths), ``cycles``
cuts each patient's diary into the baseline and the treatment cycles, ``cohort`` aggregates the
per-patient-cycle table into the cohort table, ``pipeline.analyse`` runs that chain once for one
set of parameters, and ``clinical`` adds the patient-level definitions (stopping rules, episodic
conversion, wearing-off, suitability). ``registry.Definition`` is the record in which each module
states its definitions (``DEFINITIONS``) for the data dictionary and the printable summary.
Everything downstream reads these results and never restates a definition.
"""
