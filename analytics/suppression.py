"""Small-cell suppression of aggregate tables shared outside the clinic (``export --min-cell K``).

The rule is the CMS cell-size rule generalised to K (default 11: no cell of 1 to 10 patients):

- **Primary suppression**: a count from 1 to K−1 is shown as ``"<K"``. Zero is shown: it
  describes nobody.
- **Complementary suppression**: a count is also withheld (shown as ``"suppressed"``, whatever its
  size) when otherwise a withheld count, or a small count that is not a column of the table, could
  be worked out exactly by adding and subtracting shown counts. The table's counts are linked in
  two ways, listed below for ``cohort_cycles``: *identities* (two counts that are always equal,
  or a total that is the sum of its parts) and *nesting* (every patient counted in B is counted in
  A, so A − B is itself a count of patients — the complement — and is sensitive when it is 1 to
  K−1). An auditor over these links (linear algebra on the identities, restricted to the withheld
  cells) finds every sensitive quantity that is still determined and withholds the cheapest shown
  count that breaks the derivation, until none is left.
- **Statistics**: a rate and its Wilson interval are withheld unless its numerator and denominator
  are both shown and the denominator is at least K (a rate and one of its counts give the other);
  a mean, median and t-interval over ``n_evaluable`` patients are withheld unless ``n_evaluable``
  is shown and at least K. Withheld statistics are empty cells; the row's
  ``suppressed_columns`` names every column withheld in it, so an empty cell that was withheld is
  never mistaken for one that is missing.

Links of ``cohort_cycles`` (cycle k ≥ 1; T n_treated, CD cum_responder_50_completers_denom,
CN cum_responder_50_completers_n, E n_evaluable, R responder_50_n, P prior_nonresponder_denom,
NR new_responder_50_n, ID/IN cum_responder_50_itt_denom/_n; every set is of patients):

- nested within a cycle: T ⊇ CD ⊇ E ⊇ R ⊇ NR; CD ⊇ CN ⊇ R; E ⊇ P ⊇ NR; ID ⊇ IN;
- nested across cycles: T(k) ⊇ T(k+1), CD(k) ⊇ CD(k+1), ID(k) ⊇ ID(k+1) (the complement is, for
  example, the patients who had exactly k sessions); CD(1) ⊇ ID(k) (ITT patients are eligible);
- new responders are disjoint across cycles, so S(k) = NR(1) + … + NR(k), the patients who first
  responded by cycle k, is a derivable total: CD(1) ⊇ S(k) ⊇ CN(k), S(k) ⊇ IN(k);
- always equal: T(0) = T(1) (patients with a session), E(0) = CD(1) (eligible patients),
  P(1) = E(1) and NR(1) = CN(1) = R(1) (nobody has responded before cycle 1).

The links are structural facts of SPEC §3's definitions; ``tests/test_suppression.py`` checks each
against patient-level data. What this does not cover: bounds (a withheld count known to lie in a
range, e.g. 1 to K−1 for ``"<K"``), differences of complements (second differences such as
[T(k) − T(k+1)] − [CD(k) − CD(k+1)]), relations that hold only because of how a clinic schedules
(if every re-injection comes at least 12 weeks after the last, the patients evaluable at cycle k+1
are among the ITT denominator of cycle k), and combinations with other tables or earlier releases.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

DEFAULT_MIN_CELL = 11
COMPLEMENTARY_MARKER = "suppressed"
NOTE_COLUMN = "suppressed_columns"
SHOWN, PRIMARY, COMPLEMENTARY = "shown", "primary", "complementary"

Cell = tuple[Hashable, str]
"""A count cell: (row key, column)."""


def small_marker(min_cell: int) -> str:
    """How a count from 1 to K−1 is shown."""
    return f"<{min_cell}"


def describe(min_cell: int) -> dict[str, object]:
    """The rule in words, for the export manifest."""
    return {
        "min_cell": min_cell,
        "primary": f"counts from 1 to {min_cell - 1} are shown as '{small_marker(min_cell)}'; 0 is shown",
        "complementary": (
            f"counts shown as '{COMPLEMENTARY_MARKER}' are withheld so that no withheld or small count can be "
            "derived by adding or subtracting shown counts (links in analytics/suppression.py)"
        ),
        "statistics": (
            f"rates, means, medians and intervals are empty unless their numerator and denominator are shown "
            f"and the denominator is at least {min_cell}; column {NOTE_COLUMN} names what was withheld"
        ),
        "not_covered": "bounds on withheld counts, second differences, linkage with other releases",
    }


def check_min_cell(min_cell: int) -> int:
    if int(min_cell) < 2:
        raise ValueError(f"the minimum cell size must be at least 2 (got {min_cell})")
    return int(min_cell)


# --- the auditor: primary and complementary suppression over linked counts --------------------


@dataclass(frozen=True)
class LinkedCounts:
    """Counts published together and the structure that links them.

    ``identities`` are linear relations that hold for every dataset (coefficients by cell, sum 0);
    ``nested`` are (superset, subset) pairs of sums of cells: every unit counted in the subset is
    counted in the superset, so their difference is a count too.
    """

    values: Mapping[Cell, int]
    identities: Sequence[Mapping[Cell, int]]
    nested: Sequence[tuple[tuple[Cell, ...], tuple[Cell, ...]]]
    cost: Callable[[Cell, int], float]
    """What withholding a cell (with its value) costs, e.g. the statistics it takes with it."""


def _closure(reach: np.ndarray) -> np.ndarray:
    """Transitive closure of a boolean adjacency matrix (Floyd–Warshall, one numpy step per node)."""
    reach = reach.copy()
    for m in range(len(reach)):
        reach |= reach[:, m : m + 1] & reach[m : m + 1, :]
    return reach


def _sensitive(counts: LinkedCounts, cells: list[Cell], index: dict[Cell, int], min_cell: int) -> np.ndarray:
    """Quantities that must not be derivable: small counts and small differences of nested sums."""
    values = np.array([counts.values[c] for c in cells], dtype=np.int64)
    groups: dict[tuple[Cell, ...], int] = {}
    edges = []
    for superset, subset in counts.nested:
        if all(c in index for c in (*superset, *subset)):
            a = groups.setdefault(tuple(sorted(superset, key=index.get)), len(groups))
            b = groups.setdefault(tuple(sorted(subset, key=index.get)), len(groups))
            edges.append((a, b))
    vectors = np.zeros((len(groups), len(cells)), dtype=np.int64)
    for group, g in groups.items():
        for c in group:
            vectors[g, index[c]] += 1
    reach = np.zeros((len(groups), len(groups)), dtype=bool)
    for a, b in edges:
        reach[a, b] = True
    superset, subset = np.nonzero(_closure(reach))
    differences = vectors[superset] - vectors[subset]
    candidates = np.vstack([np.eye(len(cells), dtype=np.int64), differences])
    small = (candidates @ values >= 1) & (candidates @ values <= min_cell - 1) & candidates.any(axis=1)
    return np.unique(candidates[small], axis=0)


def _determined(quantities: np.ndarray, identities: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """Which quantities (rows over cells) follow from the shown cells and the identities."""
    q = quantities[:, hidden].astype("float64")
    if q.size == 0:
        return np.ones(len(quantities), dtype=bool)
    relations = identities[:, hidden].astype("float64")
    if relations.size and relations.any():
        _, singular, vt = np.linalg.svd(relations, full_matrices=False)
        basis = vt[singular > 1e-9]
        q = q - (q @ basis.T) @ basis
    return np.abs(q).max(axis=1) < 1e-9


def _equal_classes(identities: np.ndarray) -> list[np.ndarray]:
    """Cells that an identity makes equal (a − b = 0) are withheld together: hiding one alone hides nothing."""
    parent = list(range(identities.shape[1]))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for row in identities:
        members = np.flatnonzero(row)
        if len(members) == 2 and row[members].sum() == 0:
            parent[root(int(members[0]))] = root(int(members[1]))
    roots = np.array([root(i) for i in range(len(parent))])
    return [np.flatnonzero(roots == r) for r in dict.fromkeys(roots.tolist())]


def suppress(counts: LinkedCounts, min_cell: int) -> dict[Cell, str]:
    """Each cell's status: ``shown``, ``primary`` (1 to K−1) or ``complementary``.

    Greedy complementary suppression: while some sensitive quantity is determined, withhold the
    cheapest class of equal cells whose withholding makes it undetermined (cost: the summed
    ``LinkedCounts.cost`` of the class, then its summed value); then show again every withheld class
    that is not needed. Deterministic for a given table; not guaranteed minimal.
    """
    min_cell = check_min_cell(min_cell)
    cells = list(counts.values)
    index = {c: i for i, c in enumerate(cells)}
    values = np.array([counts.values[c] for c in cells], dtype=np.int64)
    identities = np.zeros((len(counts.identities), len(cells)), dtype=np.int64)
    for row, identity in enumerate(counts.identities):
        if all(c in index for c in identity):
            for c, coefficient in identity.items():
                identities[row, index[c]] = coefficient
    sensitive = _sensitive(counts, cells, index, min_cell)
    primary = (values >= 1) & (values <= min_cell - 1)
    hidden = primary.copy()
    weights = [counts.cost(c, int(values[i])) for i, c in enumerate(cells)]
    classes = sorted(
        _equal_classes(identities), key=lambda m: (sum(weights[i] for i in m), int(values[m].sum()), int(m[0]))
    )
    while True:
        open_ = np.flatnonzero(_determined(sensitive, identities, hidden))
        if open_.size == 0:
            break
        quantity = sensitive[open_[:1]]
        candidates = [m for m in classes if not hidden[m].all()]
        choice = next((m for m in candidates if not _determined(quantity, identities, _with(hidden, m))[0]), None)
        if choice is None:
            # No single class breaks every derivation: withhold the cheapest one the quantity
            # involves (directly or through an identity) and look again.
            support = quantity[0] != 0
            involved = support | (identities[(identities[:, support] != 0).any(axis=1)] != 0).any(axis=0)
            choice = next((m for m in candidates if involved[m].any()), candidates[0])
        hidden[choice] = True
    # Greedy choices depend on the order quantities are met; give back every complement (dearest
    # first) that is no longer needed.
    for members in reversed(classes):
        if hidden[members].all() and not primary[members].any():
            trial = hidden.copy()
            trial[members] = False
            if not _determined(sensitive, identities, trial).any():
                hidden = trial
    return {c: PRIMARY if primary[i] else COMPLEMENTARY if hidden[i] else SHOWN for i, c in enumerate(cells)}


def _with(hidden: np.ndarray, members: np.ndarray) -> np.ndarray:
    out = hidden.copy()
    out[members] = True
    return out


def _shown_text(value: int, status: str, min_cell: int) -> str:
    if status == PRIMARY:
        return small_marker(min_cell)
    if status == COMPLEMENTARY:
        return COMPLEMENTARY_MARKER
    return str(int(value))


# --- cohort_cycles --------------------------------------------------------------------------------

T, E, R = "n_treated", "n_evaluable", "responder_50_n"
CD, CN = "cum_responder_50_completers_denom", "cum_responder_50_completers_n"
ID, IN = "cum_responder_50_itt_denom", "cum_responder_50_itt_n"
P, NR = "prior_nonresponder_denom", "new_responder_50_n"
COUNT_COLUMNS = (T, E, R, CN, CD, IN, ID, NR, P)
RATES = {  # rate prefix -> (numerator, denominator)
    "responder_50": (R, E),
    "cum_responder_50_completers": (CN, CD),
    "cum_responder_50_itt": (IN, ID),
    "new_responder_50": (NR, P),
}
MEANS = ("mean_mhd", "mean_mhd_change", "mean_mhd_change_ci_low", "mean_mhd_change_ci_high", "median_mhd_change")
"""Statistics over the n_evaluable patients of their cycle."""
STATISTIC_COLUMNS = (*MEANS, *(f"{p}_{s}" for p in RATES for s in ("rate", "ci_low", "ci_high")))
NESTED_WITHIN_CYCLE = ((T, CD), (CD, E), (E, R), (R, NR), (CD, CN), (CN, R), (E, P), (P, NR), (ID, IN))
NESTED_ACROSS_CYCLES = (T, CD, ID)
# What withholding a count costs when choosing complements (the statistics that go with it):
# n_treated is no statistic's denominator; n_evaluable of a treated cycle carries the mean change,
# its interval, the median and the responder rate, the table's main results; at cycle 0 it
# carries only the baseline mean.
COMPLEMENT_COST = {T: 1, NR: 3, P: 3, IN: 4, ID: 4, CN: 5, CD: 5, R: 6, E: 9}
BASELINE_EVALUABLE_COST = 3


def _complement_cost(cell: Cell, value: int) -> float:
    cycle, column = cell
    return BASELINE_EVALUABLE_COST if (cycle, column) == (0, E) else COMPLEMENT_COST[column]


def cohort_linkage(table: pd.DataFrame) -> LinkedCounts:
    """The counts of a cohort_cycles table with their identities and nesting (module docstring)."""
    cycles = [int(c) for c in table["cycle"]]
    values = {
        (cycle, column): int(value)
        for column in COUNT_COLUMNS
        if column in table
        for cycle, value in zip(cycles, table[column], strict=True)
        if not pd.isna(value)
    }
    equal = [((0, T), (1, T)), ((0, E), (1, CD)), ((1, P), (1, E)), ((1, NR), (1, R)), ((1, CN), (1, R))]
    nested: list[tuple[tuple[Cell, ...], tuple[Cell, ...]]] = [(((0, T),), ((0, E),))]
    for a, b in equal:
        nested += [((a,), (b,)), ((b,), (a,))]
    treated = [c for c in cycles if c >= 1]
    for k in treated:
        nested += [(((k, sup),), ((k, sub),)) for sup, sub in NESTED_WITHIN_CYCLE]
        nested += [(((k, col),), ((k + 1, col),)) for col in NESTED_ACROSS_CYCLES if k + 1 in treated]
        nested.append((((1, CD),), ((k, ID),)))
        first_responders = tuple((j, NR) for j in range(1, k + 1))
        if all(j in treated for j in range(1, k + 1)):  # a table of some cycles only has no such sums
            nested += [(first_responders, ((k, CN),)), (first_responders, ((k, IN),)), (((1, CD),), first_responders)]
            if k > 1:
                nested.append((first_responders, first_responders[:-1]))
    return LinkedCounts(
        values=values,
        identities=[{a: 1, b: -1} for a, b in equal],
        nested=nested,
        cost=_complement_cost,
    )


def suppress_cohort_cycles(table: pd.DataFrame, k: int = DEFAULT_MIN_CELL) -> pd.DataFrame:
    """A cohort_cycles table fit to share outside the clinic, with cells below ``k`` suppressed.

    Counts become text: the number, ``"<k"`` (1 to k−1) or ``"suppressed"`` (complementary);
    withheld statistics become empty, and ``suppressed_columns`` lists the columns withheld in each
    row. Columns whose disclosure risk is not assessed here are dropped.
    """
    k = check_min_cell(k)
    status = suppress(cohort_linkage(table), k)
    columns = [c for c in table.columns if c == "cycle" or c in COUNT_COLUMNS or c in STATISTIC_COLUMNS]
    out = table[columns].copy().reset_index(drop=True)
    cycles = [int(c) for c in out["cycle"]]
    withheld: list[list[str]] = [[] for _ in cycles]
    for column in (c for c in columns if c in COUNT_COLUMNS):
        text = []
        for row, (cycle, value) in enumerate(zip(cycles, out[column], strict=True)):
            if pd.isna(value):
                text.append(None)
                continue
            cell_status = status[(cycle, column)]
            text.append(_shown_text(value, cell_status, k))
            if cell_status != SHOWN:
                withheld[row].append(column)
        out[column] = pd.Series(text, dtype=object)

    def usable(cycle: int, column: str) -> bool:
        return status.get((cycle, column)) == SHOWN

    def large(cycle: int, column: str) -> bool:
        return usable(cycle, column) and int(table[column].iloc[cycles.index(cycle)]) >= k

    for row, cycle in enumerate(cycles):
        rules = {m: large(cycle, E) for m in MEANS}
        for prefix, (numerator, denominator) in RATES.items():
            keep = usable(cycle, numerator) and large(cycle, denominator)
            rules.update({f"{prefix}_{s}": keep for s in ("rate", "ci_low", "ci_high")})
        for column, keep in rules.items():
            if column in out and not keep and not pd.isna(out.at[row, column]):
                out.at[row, column] = pd.NA
                withheld[row].append(column)
    out[NOTE_COLUMN] = [", ".join(w) for w in withheld]
    return out


# --- rejection counts -----------------------------------------------------------------------------


def suppress_rejections(
    files: pd.DataFrame, rejected: pd.DataFrame, k: int = DEFAULT_MIN_CELL
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rejected rows as counts per file and reason, and rows read/accepted/rejected per file, suppressed.

    ``files`` has file, rows_read, rows_accepted, rows_rejected (``Dataset.file_summary()``);
    ``rejected`` is the rejection report (only file and reason are used, never a patient_id), or
    counts per file and reason in a ``rows`` column (``Dataset.rejection_counts()``).
    Per file, read = accepted + rejected and rejected = the sum over reasons; rejected ⊆ read.
    """
    k = check_min_cell(k)
    grouped = rejected.groupby(["file", "reason"], sort=True)
    reasons = (grouped["rows"].sum() if "rows" in rejected else grouped.size()).rename("rows").reset_index()
    values: dict[Cell, int] = {}
    identities: list[dict[Cell, int]] = []
    nested: list[tuple[tuple[Cell, ...], tuple[Cell, ...]]] = []
    for f in files.itertuples():
        read, accepted, total = (f.file, "rows_read"), (f.file, "rows_accepted"), (f.file, "rows_rejected")
        values.update({read: int(f.rows_read), accepted: int(f.rows_accepted), total: int(f.rows_rejected)})
        in_file = reasons[reasons["file"] == f.file]
        parts = [(f.file, f"reason:{reason}") for reason in in_file["reason"]]
        values.update({cell: int(n) for cell, n in zip(parts, in_file["rows"], strict=True)})
        identities += [{read: 1, accepted: -1, total: -1}, {total: 1, **{p: -1 for p in parts}}]
        nested += [((read,), (accepted,)), ((read,), (total,))] + [((total,), (p,)) for p in parts]
    # Reasons are withheld first as complements, the file's rows read last.
    order = {"rows_rejected": 1, "rows_accepted": 2, "rows_read": 3}
    status = suppress(LinkedCounts(values, identities, nested, cost=lambda cell, value: order.get(cell[1], 0)), k)
    reason_table = pd.DataFrame(
        {
            "file": reasons["file"],
            "reason": reasons["reason"],
            "rows": [
                _shown_text(n, status[(f, f"reason:{r}")], k)
                for f, r, n in zip(reasons["file"], reasons["reason"], reasons["rows"], strict=True)
            ],
        }
    )
    file_table = pd.DataFrame(
        {
            "file": files["file"],
            **{
                column: [_shown_text(values[(f, column)], status[(f, column)], k) for f in files["file"]]
                for column in ("rows_read", "rows_accepted", "rows_rejected")
            },
        }
    )
    return reason_table, file_table
