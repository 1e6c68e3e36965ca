"""Output: the last step of the data flow, the export files.

``export`` turns an analysis into the SPEC §4 tables and their manifest (or the suppressed,
aggregate-only set), writes every CSV formula-safe, and writes a folder all at once or not at all.
"""
