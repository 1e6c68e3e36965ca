"""Privacy: who may see what, and what may leave the clinic.

``access`` reads the access file and applies a user's scope (clinics, pseudonyms) to a dataset
before anything is computed, ``audit`` is the append-only log of logins, refusals, opened patients
and downloads, ``deidentify`` pseudonymises and date-shifts a raw clinic export, and
``suppression`` withholds small counts in aggregate tables meant for sharing.
"""
