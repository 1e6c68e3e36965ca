"""The record of one clinical definition, as the data dictionary, the Data page and the printable summary state it.

Each module that computes definitions registers them once, as a module-level ``DEFINITIONS`` sequence of
``Definition`` records next to the code that computes them (SPEC §3's and §5's are in
``analytics.views.dictionary``); ``analytics.views.dictionary`` collects them and fills their ``{parameter}``
placeholders with the values in use.
"""

from __future__ import annotations

from dataclasses import dataclass

# The keys of the mappings this record replaced, for read access by those names.
_MAPPING_KEYS = {"term": "name", "definition": "text"}


@dataclass(frozen=True)
class Definition:
    """One definition: what it is called, what it says, what it defines, what it uses and where it comes from."""

    name: str
    """What a reader looks up: the data dictionary's term."""
    text: str
    """The definition, with ``{parameter}`` placeholders for the values in use."""
    columns: tuple[str, ...] = ()
    """The output columns it defines."""
    parameters: tuple[str, ...] = ()
    """The parameters it uses: ``AnalysisConfig`` fields, or a module's own documented parameters."""
    source: str = ""
    """Its basis: a SPEC section, or the module (or function) that computes it; empty means the module that
    registers it."""
    key: str = ""
    """A short handle by which a page looks it up, where one does."""

    def __getitem__(self, field: str) -> object:
        """A field by name, or by the key the dictionaries before this record used (``term``, ``definition``)."""
        return getattr(self, _MAPPING_KEYS.get(field, field))
