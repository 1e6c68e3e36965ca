"""Views: what each page and report shows, computed from the analysis in one place.

``clinic`` (the manager's volumes, timing, retention, worklists, funnel plots), ``outcomes`` (the
researcher's cohort statistics and models), ``cohort_filter`` (the researcher's cohort selection,
shared by the Outcomes page and the export command), ``quality`` (diary completeness and file
reconciliation), ``dictionary`` (the generated data dictionary) and ``report`` (the printable
patient summary). Each takes the ``Analysis`` and ``Dataset`` and returns tables; the pages and
``analytics.figures`` only draw them.
"""
