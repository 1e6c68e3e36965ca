"""Ingest: the first step of the data flow, from files to typed, validated tables.

``schemas`` is the input contract (files, columns, types, rejection rules: the one source of truth
for column names), ``load`` reads a folder or a set of uploaded files into a ``Dataset`` (accepted
rows, the rejection report, a report per file) or refuses it as a whole, and ``archive`` opens an
uploaded ZIP safely. Nothing here computes a clinical definition.
"""
