"""Render helpers shared by the pages: charts with a stable key, tables with a CSV download.

Every CSV a user downloads goes through ``analytics.output.export.csv_bytes`` (formula-safe, true/false,
YYYY-MM-DD, empty for missing), the same writer as the export command.
"""

from __future__ import annotations

import inspect
import pickle
import re
from collections.abc import Callable, Mapping, Sequence
from types import FunctionType
from urllib.parse import quote

import pandas as pd
import plotly.graph_objects as go
import pyarrow as pa
import streamlit as st

from analytics.output.cells import readable_cells
from analytics.output.export import csv_bytes
from analytics.privacy.links import escape_markdown
from ui import auth

# No image download from the chart's toolbar (modebar): it is an export made in the browser, which the
# server can neither check against the user's role nor audit. Charts leave the app in the printable
# summary, whose download is checked and audited (ui/auth.py).
PLOTLY_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["toImage"], "responsive": True}

# The server does not know the screen's width, so the browser chooses: on a phone-sized screen (PHONE_MAX_PX)
# the chart toolbar, which a tap would open over titles and labels, is hidden, and a chart drawn in two
# layouts (``chart(..., phone=...)``) shows its phone layout; on a wider screen, its full one. Static CSS,
# nothing data-derived; Streamlit gives a keyed container the class ``st-key-<key>``.
PHONE_MAX_PX = 640
PAGE_STYLE = f"""<style>
@media (max-width: {PHONE_MAX_PX}px) {{
  .js-plotly-plot .modebar-container {{ display: none !important; }}
  [class*="st-key-wide-layout-"] {{ display: none !important; }}
}}
@media (min-width: {PHONE_MAX_PX + 1}px) {{
  [class*="st-key-phone-layout-"] {{ display: none !important; }}
}}
</style>"""


def page_style() -> None:
    """Put the shared style (phone layouts, no chart toolbar on a phone) on the page; takes no space."""
    st.html(PAGE_STYLE)


def plain(text: object) -> str:
    """Data-derived text to put inside Markdown, shown as typed (``analytics.privacy.links.escape_markdown``)."""
    return escape_markdown(text)


def _content(value: pd.DataFrame | pd.Series) -> bytes:
    """What identifies a frame's content for the caches below: its columns, types and every row.

    Streamlit's own hashing samples frames of 100,000 rows or more, which could give two different frames
    the same key; this reads every row (pandas' hash, about a millisecond per 10,000 rows).
    """
    try:
        rows = pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes()
    except TypeError:  # unhashable cells (lists): the pickled frame
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    names = value.dtypes.items() if isinstance(value, pd.DataFrame) else [(value.name, value.dtype)]
    return repr([(str(name), str(dtype)) for name, dtype in names]).encode() + rows


def _function_name(function: FunctionType) -> str:
    return f"{function.__module__}.{function.__qualname__}"


CONTENT_HASH_FUNCS = {pd.DataFrame: _content, pd.Series: _content, FunctionType: _function_name}


# A figure is drawn once for the same builder and arguments, by content, and the one object is shared by every
# session and rerun: a page change or a rerun does not rebuild the page's figures (tens of milliseconds each).
# Streamlit's st.plotly_chart reads a figure (to_dict) without changing it. For the pages that show the same data
# to many (Clinic, Outcomes, Data); the Patient page's figures are of one patient, and hashing their data on each
# first visit cost more than the rare second visit saved (bench/bench_sessions.py, ten new patients at once).
@st.cache_resource(max_entries=512, show_spinner=False, hash_funcs=CONTENT_HASH_FUNCS)
def figure(build: Callable[..., go.Figure], *args: object, **kwargs: object) -> go.Figure:
    """``build(*args, **kwargs)``, cached by the builder and the arguments' content; do not change the result."""
    return build(*args, **kwargs)


def chart(fig: go.Figure, key: str, caption: str | None = None, phone: go.Figure | None = None) -> None:
    """A Plotly chart (no image download from its toolbar) with an optional caption (n, method).

    Streamlit's chart theme sets the fonts and axes to match the app; its default trace colours are
    the template's ``SEQUENCE`` (``theme.chartCategoricalColors`` in .streamlit/config.toml), and
    colours a figure sets itself (missing = grey, responder classes, ...) are kept. With ``phone`` (the
    same chart laid out for a narrow screen), both are sent and ``PAGE_STYLE`` shows the one that fits.
    """
    if phone is None:
        st.plotly_chart(fig, key=key, config=PLOTLY_CONFIG, width="stretch")
    else:
        with st.container(key=f"wide-layout-{key}"):
            st.plotly_chart(fig, key=key, config=PLOTLY_CONFIG, width="stretch")
        with st.container(key=f"phone-layout-{key}"):
            st.plotly_chart(phone, key=f"{key}_phone", config=PLOTLY_CONFIG, width="stretch")
    if caption:
        st.caption(caption)


def chart_of(build: Callable[..., go.Figure], *args: object, key: str, caption: str | None = None) -> None:
    """``chart`` of ``build(*args)`` in its full layout and, for a phone, in its compact one (``build(*args,
    compact=True)``), each drawn once for the same data (``figure``)."""
    chart(figure(build, *args), key=key, caption=caption, phone=figure(build, *args, compact=True))


def _readable(frame: pd.DataFrame, column_config: dict) -> tuple[pd.DataFrame, dict]:
    """The frame as shown: empty cells as a dash, never "None" (``analytics.output.cells.readable_cells``).

    A column made text keeps its label, width and help; its number format is applied to the text, and
    numbers stay right-aligned.
    """
    formats = {
        name: (config.get("type_config") or {}).get("format")
        for name, config in column_config.items()
        if isinstance(config, Mapping)
    }
    shown = readable_cells(frame, formats)
    config = dict(column_config)
    for name in frame.columns:
        old = column_config.get(name)
        old = old if isinstance(old, Mapping) else {"label": old} if isinstance(old, str) else {}
        kind = (old.get("type_config") or {}).get("type")
        # A number or date format on a column already written as text (a worklist's "—") would not read it.
        already_text = kind in ("number", "date", "datetime") and pd.api.types.is_string_dtype(shown[name])
        if shown[name].dtype == frame[name].dtype and not already_text:
            continue
        numeric = kind == "number" or (
            pd.api.types.is_numeric_dtype(frame[name]) and not pd.api.types.is_bool_dtype(frame[name])
        )
        config[name] = st.column_config.TextColumn(
            old.get("label") or str(name),
            width=old.get("width"),
            help=old.get("help"),
            alignment="right" if numeric else old.get("alignment"),
        )
    return shown, config


# The table's font is about 7.5 px a character; a cell has 8 px padding each side.
CHAR_PX, CELL_PADDING_PX, FIT_MAX_PX = 7.5, 24, 720


def _fitted(config: object, name: str, values: pd.Series) -> dict:
    """A text column as wide as its longest value or its header (within ``FIT_MAX_PX``)."""
    old = dict(config) if isinstance(config, Mapping) else {}
    label = str(old.get("label") or name)
    longest = max([len(label), *values.astype("string").fillna("").str.len().tolist()])
    width = min(FIT_MAX_PX, int(CELL_PADDING_PX + CHAR_PX * longest))
    return st.column_config.TextColumn(label, width=width, help=old.get("help"))


def _shown(
    frame: pd.DataFrame, column_config: dict, links: Mapping[str, str], fit: tuple[str, ...]
) -> tuple[pd.DataFrame | pa.Table, dict]:
    """What ``table`` sends: the readable cells (with links and fitted widths) as an Arrow table, and its config.

    Arrow is what Streamlit sends anyway; converting here lets the shared result skip it on the next rerun. A frame
    Arrow cannot take as it is (mixed types in a column) is left to Streamlit, which fixes its types.
    """
    shown, config = _readable(frame, column_config)
    for name in fit:
        if name in shown.columns:
            config[name] = _fitted(config.get(name), name, shown[name])
    for name, address in links.items():
        shown = shown.assign(**{name: address + frame[name].astype(str).map(quote)})
        config[name] = st.column_config.LinkColumn(
            name, display_text=re.escape(address) + "(.*)", help=f"Opens the {name}'s page"
        )
    try:
        return pa.Table.from_pandas(shown, preserve_index=False), config
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return shown, config


# Shared like the figures: a table shown again (a rerun, another session) is neither formatted nor converted
# again. Tables of more rows are made each time, so that the cache stays small (a few MB) whatever the cohort.
SHARED_TABLE_MAX_ROWS = 20_000


@st.cache_resource(max_entries=512, show_spinner=False, hash_funcs=CONTENT_HASH_FUNCS)
def _shared_shown(
    frame: pd.DataFrame, column_config: dict, links: Mapping[str, str], fit: tuple[str, ...]
) -> tuple[pd.DataFrame | pa.Table, dict]:
    return _shown(frame, column_config, links, fit)


def table(
    frame: pd.DataFrame,
    key: str,
    filename: str,
    caption: str | None = None,
    links: Mapping[str, str] | None = None,
    fit: Sequence[str] = (),
    **kwargs: object,
) -> None:
    """A table with a CSV download of exactly what is shown.

    ``links`` maps a column to the address its values are appended to (``{"patient": "/patient?patient="}``):
    each value is shown as a link there, labelled with the value itself, and the CSV holds the values.
    The columns named in ``fit`` are as wide as their longest text (up to ``FIT_MAX_PX``), which the
    table would otherwise cut.
    """
    make = _shared_shown if len(frame) <= SHARED_TABLE_MAX_ROWS else _shown
    config = dict(kwargs.pop("column_config", None) or {})
    shown, column_config = make(frame, config, dict(links or {}), tuple(fit or ()))
    st.dataframe(shown, hide_index=True, key=f"{key}_table", column_config=dict(column_config) or None, **kwargs)
    if caption:
        st.caption(caption)
    # The CSV is written when the button is clicked (not on every rerun), and clicking does not rerun the page;
    # ui/auth.py shows the button only when the user's role may export the table, and audits the download.
    auth.table_download(frame, filename, key=f"{key}_csv", csv=csv_bytes)


def _map_modules_to_files() -> None:
    """Have ``inspect`` map the loaded modules to their files now, while the app's modules are imported.

    Streamlit asks, at the first element a process draws, whether it runs in a Python REPL (``inspect.stack()``),
    and inspect then maps every loaded module to its file: a quarter of a second with pandas, pyarrow and plotly
    loaded, which fell on the first page opened after a restart. Mapped here, only the modules imported later are
    left for that check.
    """
    inspect.getmodule(inspect.currentframe())


_map_modules_to_files()
