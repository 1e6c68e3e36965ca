"""Small-cell suppression of aggregate tables shared outside the clinic (``export --min-cell K``).

The rule is the CMS cell-size rule generalised to K (default 11: no cell of 1 to 10 patients):

- **Primary suppression**: a count from 1 to K−1 is shown as ``"<K"``. Zero is shown: it
  describes nobody.
- **Complementary suppression** (``cohort_cycles``): a count is also withheld (shown as
  ``"suppressed"``, whatever its size; never a zero, so ``"suppressed"`` is always at least K) when
  otherwise an outsider who knows the definitions could narrow down a *small quantity*: a count
  from 1 to K−1, or a group of 1 to K−1 patients that is the difference of two nested counts
  (every patient counted in B is counted in A, so A − B counts patients too: the *complement*).
  The outsider is modelled exactly (``cohort_model``): every count of the table is a sum of
  unknown non-negative numbers of patients of each kind, and the outsider knows each shown count,
  that ``"<K"`` is 1 to K−1 and that ``"suppressed"`` is at least K. Linear programming (HiGHS,
  through scipy) gives the least and greatest value each small quantity can take over every table
  consistent with what is shown: whatever adding, subtracting and bounding can conclude. The
  auditor (``suppress_ranges``) withholds more until each small quantity keeps at least K−1
  possible whole values: for a withheld count, every value from 1 to K−1, exactly what its marker
  says. Where the markers themselves tell more (a ``"suppressed"`` count of at least K beside a
  ``"<K"`` one below it shows that the first counts someone the second does not), a quantity keeps
  what it would keep with every non-zero count withheld, the most any table can do; and a
  difference is never pinned to one value.
- **Statistics**: a rate and its Wilson interval are withheld unless its numerator and denominator
  are both shown and the denominator is at least K (a rate and one of its counts give the other);
  a mean, median and t-interval over ``n_evaluable`` patients are withheld unless ``n_evaluable``
  is shown and at least K. Withheld statistics are empty cells; the row's
  ``suppressed_columns`` names every column withheld in it, so an empty cell that was withheld is
  never mistaken for one that is missing.

What links the counts of ``cohort_cycles`` (SPEC §3 and ``analytics/definitions/cohort.py``; cycle k ≥ 1;
T n_treated, E n_evaluable, R responder_50_n, CD/CN cum_responder_50_completers_denom/_n,
ID/IN cum_responder_50_itt_denom/_n, P prior_nonresponder_denom, NR new_responder_50_n). A treated
patient is of a kind: eligible or not, n sessions, first 50% response at cycle f (or never), time
to complete m cycles by as_of, and at each cycle evaluable or not, responder or not. Then
T(k) counts n ≥ k (T(0) = T(1)); E(0) and CD(k) the eligible with n ≥ 0 and n ≥ k; CN(k) those with
n ≥ k and f ≤ k; NR(k) those with f = k; ID(k) the eligible with m ≥ k and IN(k) those of them
with f ≤ k (a patient who stopped keeps their last status). What follows, all encoded in the model:

- first responders are disjoint across cycles: S(k) = NR(1) + … + NR(k) is the eligible patients
  who responded by cycle k; CN(k) ≤ S(k) and IN(k) ≤ S(k) ≤ E(0);
- completers: CN(k) = CN(k−1) + NR(k) − (responders by k−1 with exactly k−1 sessions), so
  CN(k−1) + NR(k) − [CD(k−1) − CD(k)] ≤ CN(k) ≤ CN(k−1) + NR(k);
- intention to treat: ID(k) − IN(k) ≤ E(0) − S(k) (ITT non-responders are eligible
  non-responders) and −[ID(k) − ID(k+1)] ≤ IN(k+1) − IN(k) ≤ NR(k+1);
- within a cycle (earlier responders may respond again; a first responder is evaluable):
  0 ≤ R(k) − NR(k) ≤ E(k) − P(k) ≤ CN(k) − NR(k) and 0 ≤ P(k) − NR(k) ≤ CD(k) − CN(k), with
  NR ≤ P ≤ E ≤ CD ≤ T, R ≤ CN and P(1) = E(1), NR(1) = R(1) = CN(1);
- numerators against denominators: NR ≤ P, R ≤ E, CN ≤ CD, IN ≤ ID; T(k) − CD(k) (ineligible
  patients with k sessions or more) and CD(k), ID(k), T(k) shrink as k grows.

``tests/test_suppression.py`` checks that the model reaches exactly as far as an outsider who
enumerates every kind of patient, and attacks suppressed tables with that outsider. What this does
not cover: relations that hold only because of how a clinic schedules (if every re-injection comes
at least 12 weeks after the last, the patients evaluable at cycle k+1 are among the ITT
denominator of cycle k), what the choice of complements itself might suggest, and combinations
with other tables or earlier releases (another filter, the manifest's ``patients_treated``).
``rejected_counts.csv`` is protected by the earlier auditor (``suppress``: exact derivation along
its totals only, no bounds).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

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
            f"counts shown as '{COMPLEMENTARY_MARKER}' (at least {min_cell}) are withheld so that, in "
            f"cohort_cycles.csv, no count from 1 to {min_cell - 1}, and no difference of nested counts from 1 to "
            f"{min_cell - 1}, can be narrowed to fewer than {min_cell - 1} values by adding, subtracting and bounding "
            "shown counts, or to fewer than the markers alone allow (model in analytics/privacy/suppression.py); in "
            "rejected_counts.csv, that none can be derived exactly"
        ),
        "statistics": (
            f"rates, means, medians and intervals are empty unless their numerator and denominator are shown "
            f"and the denominator is at least {min_cell}; column {NOTE_COLUMN} names what was withheld"
        ),
        "not_covered": "relations due to scheduling, linkage with other tables or releases",
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
            a = groups.setdefault(tuple(sorted(superset, key=index.__getitem__)), len(groups))
            b = groups.setdefault(tuple(sorted(subset, key=index.__getitem__)), len(groups))
            edges.append((a, b))
    vectors = np.zeros((len(groups), len(cells)), dtype=np.int64)
    for group, g in groups.items():
        for c in group:
            vectors[g, index[c]] += 1
    reach = np.zeros((len(groups), len(groups)), dtype=bool)
    for a, b in edges:
        reach[a, b] = True
    superset_rows, subset_rows = np.nonzero(_closure(reach))
    differences = vectors[superset_rows] - vectors[subset_rows]
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


# --- the range auditor: how far an outsider can narrow a count down ---------------------------------


@dataclass(frozen=True)
class CountModel:
    """How a table's counts are made, as an outsider who knows the definitions can write it down.

    The variables are the table's count cells (``cells``, first) and unpublished counts of patients
    (``latent``), all non-negative; ``equalities`` (A x = 0) and ``inequalities`` (A x ≤ 0) hold for
    every dataset. Every table the definitions can produce is a solution; ``cohort_model`` is built
    so that, conversely, every solution in whole numbers is a table some set of patients produces.
    """

    cells: tuple[Cell, ...]
    latent: tuple[Hashable, ...]
    equalities: np.ndarray
    inequalities: np.ndarray


@dataclass(frozen=True)
class _Range:
    """The least and greatest value of a quantity over the tables consistent with what is shown."""

    low: float
    high: float
    x_low: np.ndarray
    """A solution (table and unpublished counts) where the quantity is ``low``; ``x_high`` likewise."""
    x_high: np.ndarray
    resting: np.ndarray
    """Cells whose value the two ends depend on; withholding any other cell leaves both ends as they are."""

    def spread(self) -> float:
        """How many whole numbers past the least the range reaches (1e-6 for solver round-off)."""
        if np.isinf(self.high) or np.isinf(self.low):
            return np.inf
        return float(np.floor(self.high + 1e-6) - np.ceil(self.low - 1e-6))

    def holds(self, members: np.ndarray, values: np.ndarray) -> bool:
        """Both solutions give ``members`` these values (so fixing them there moves neither end)."""
        return all(np.allclose(x[members], values, atol=1e-6, rtol=0) for x in (self.x_low, self.x_high))


class _Outsider:
    """Ranges of sums and differences of counts over every table consistent with the one shown.

    An outsider knows the model, each shown count, that ``"<K"`` is 1 to K−1 and that
    ``"suppressed"`` is at least K (zero is always shown, and 1 to K−1 would read ``"<K"``).
    Ranges are those of the linear relaxation, rounded inwards to whole numbers.
    """

    def __init__(self, model: CountModel, values: Mapping[Cell, int], min_cell: int) -> None:
        from scipy import sparse

        self.model, self.min_cell = model, min_cell
        self.size = len(model.cells) + len(model.latent)
        self.published = np.array([c in values for c in model.cells])
        self.values = np.array([values.get(c, -1) for c in model.cells], dtype=np.int64)
        self.a_eq = sparse.csr_matrix(model.equalities)
        self.a_ub = sparse.csr_matrix(model.inequalities)
        self.highs = _highs_solver(sparse.vstack([self.a_eq, self.a_ub]).tocsc(), self.a_eq.shape[0])
        self.highs_bounds: np.ndarray | None = None

    def bounds(self, hidden: np.ndarray) -> np.ndarray:
        """(lower, upper) per variable when the published cells flagged ``hidden`` are withheld."""
        out = np.zeros((self.size, 2))
        out[:, 1] = np.inf
        cells = len(self.model.cells)
        shown = self.published & ~hidden
        out[:cells][shown] = self.values[shown, None]
        small = self.published & hidden & (self.values >= 1) & (self.values < self.min_cell)
        out[:cells][small] = (1, self.min_cell - 1)
        large = self.published & hidden & ~small
        out[:cells][large, 0] = self.min_cell
        return out

    def extreme(self, quantity: np.ndarray, bounds: np.ndarray, sense: int) -> tuple[float, np.ndarray, np.ndarray]:
        """min (sense 1) or max (sense −1) of ``quantity`` (over cells): value, a solution reaching it,
        and the cells whose bounds it rests on (non-zero dual value)."""
        cost = np.zeros(self.size)
        cost[: len(quantity)] = sense * quantity
        cells = len(self.model.cells)
        solved = self._highs(cost, bounds) if self.highs is not None else None
        if solved is None:
            solved = self._linprog(cost, bounds)
        status, value, x, duals = solved
        if status == "unbounded":  # nothing in what is shown limits it
            return -sense * np.inf, np.full(self.size, np.nan), np.zeros(cells, dtype=bool)
        return sense * value, x, np.abs(duals[:cells]) > 1e-9

    def _highs(self, cost: np.ndarray, bounds: np.ndarray) -> tuple[str, float, np.ndarray, np.ndarray] | None:
        """Solve with the HiGHS instance kept between solves (each starts from the last basis)."""
        core, highs = cast("tuple[Any, Any]", self.highs)  # only called when self.highs is set
        columns = np.arange(self.size, dtype=np.int32)
        if self.highs_bounds is None or not np.array_equal(self.highs_bounds, bounds):
            upper = np.where(np.isinf(bounds[:, 1]), core.kHighsInf, bounds[:, 1])
            highs.changeColsBounds(self.size, columns, bounds[:, 0].copy(), upper)
            self.highs_bounds = bounds.copy()
        highs.changeColsCost(self.size, columns, cost)
        highs.run()
        status = highs.getModelStatus()
        if status in (core.HighsModelStatus.kUnbounded, core.HighsModelStatus.kUnboundedOrInfeasible):
            # Infeasible cannot be: the true table is always consistent with what is shown.
            return "unbounded", np.inf, np.array([]), np.array([])
        if status != core.HighsModelStatus.kOptimal:
            self.highs_bounds = None  # start afresh next time; this one goes to linprog
            return None
        solution = highs.getSolution()
        return (
            "optimal",
            highs.getInfo().objective_function_value,
            np.array(solution.col_value),
            np.array(solution.col_dual),
        )

    def _linprog(self, cost: np.ndarray, bounds: np.ndarray) -> tuple[str, float, np.ndarray, np.ndarray]:
        from scipy.optimize import linprog

        result = linprog(
            cost,
            A_ub=self.a_ub,
            b_ub=np.zeros(self.a_ub.shape[0]),
            A_eq=self.a_eq,
            b_eq=np.zeros(self.a_eq.shape[0]),
            bounds=bounds,
            method="highs",
        )
        if result.status == 3:
            return "unbounded", np.inf, np.array([]), np.array([])
        if result.status != 0:
            raise ValueError(f"the counts are inconsistent with the definitions ({result.message})")
        return "optimal", result.fun, result.x, np.abs(result.lower.marginals) + np.abs(result.upper.marginals)

    def range(self, quantity: np.ndarray, bounds: np.ndarray, pool: _Pool, enough: float) -> _Range:
        """The range of ``quantity``, or, once it spreads ``enough``, the part of it found so far.

        The least is solved for unless ``pool`` already spreads enough; the greatest only when the
        pool (with the least's solution) still does not. Solutions found join ``pool``.
        """
        reached = pool.range(quantity)
        if reached.spread() >= enough:
            return reached
        low, x_low, rest_low = self.extreme(quantity, bounds, 1)
        pool.add(x_low)
        reached = pool.range(quantity)
        if _Range(low, reached.high, x_low, reached.x_high, rest_low).spread() >= enough:
            return _Range(low, reached.high, x_low, reached.x_high, rest_low)
        high, x_high, rest_high = self.extreme(quantity, bounds, -1)
        pool.add(x_high)
        return _Range(low, high, x_low, x_high, rest_low | rest_high)

    def truth(self) -> np.ndarray:
        """A solution with every published cell at its true value; ``ValueError`` if there is none
        (the counts contradict the model: a check on the model itself)."""
        cells = len(self.model.cells)
        # linprog tells infeasible from unbounded; the ranges after this rely on the table being feasible.
        return self._linprog(np.zeros(self.size), self.bounds(np.zeros(cells, dtype=bool)))[2]


class _Pool:
    """Solutions (tables with their unpublished counts) known to be consistent with what is shown."""

    def __init__(self, cells: int, points: np.ndarray) -> None:
        self.cells = cells
        self.points = points.reshape(-1, points.shape[-1])
        self.found: list[np.ndarray] = []
        """Solutions added since this pool was made."""

    def add(self, x: np.ndarray) -> None:
        if np.isfinite(x).all():
            self.points = np.vstack([self.points, x])
            self.found.append(x)

    def branch(self) -> _Pool:
        """A pool for withholding more: every solution here stays consistent there."""
        return _Pool(self.cells, self.points)

    def merge(self, other: _Pool) -> None:
        """Take in what ``other`` found (solutions consistent with showing more than now is)."""
        if other.found:
            self.points = np.vstack([self.points, *other.found])
            self.found += other.found

    def holding(self, members: np.ndarray, values: np.ndarray) -> _Pool:
        """The solutions that give ``members`` these values: still consistent once they are shown."""
        keep = np.isclose(self.points[:, members], values, atol=1e-6, rtol=0).all(axis=1)
        return _Pool(self.cells, self.points[keep])

    def range(self, quantity: np.ndarray) -> _Range:
        """The part of the quantity's range these solutions span (resting on nothing known)."""
        reached = self.points[:, : self.cells] @ quantity
        low, high = int(np.argmin(reached)), int(np.argmax(reached))
        return _Range(
            reached[low], reached[high], self.points[low], self.points[high], np.zeros(self.cells, dtype=bool)
        )


def _highs_solver(matrix: object, equalities: int) -> tuple[Any, Any] | None:
    """scipy's own HiGHS solver object with the model loaded (rows: ``equalities`` rows = 0, the rest
    ≤ 0), or None where this scipy does not expose it (then every solve goes through ``linprog``).

    Kept between solves, each solve starts from the last one's basis: about ten times faster than
    ``linprog``, which starts afresh and checks its arguments each time.
    """
    try:
        from scipy.optimize._highspy import _core as core

        highs = core._Highs()
        highs.setOptionValue("output_flag", False)
        highs.setOptionValue("simplex_strategy", 4)  # primal: a new objective keeps the last basis feasible
        lp = core.HighsLp()
        rows, columns = matrix.shape  # type: ignore[attr-defined]
        lp.num_col_, lp.num_row_ = columns, rows
        lp.col_cost_ = np.zeros(columns)
        lp.col_lower_ = np.zeros(columns)
        lp.col_upper_ = np.full(columns, core.kHighsInf)
        lp.row_lower_ = np.r_[np.zeros(equalities), np.full(rows - equalities, -core.kHighsInf)]
        lp.row_upper_ = np.zeros(rows)
        lp.a_matrix_.format_ = core.MatrixFormat.kColwise
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = columns, rows
        lp.a_matrix_.start_ = matrix.indptr  # type: ignore[attr-defined]
        lp.a_matrix_.index_ = matrix.indices  # type: ignore[attr-defined]
        lp.a_matrix_.value_ = matrix.data  # type: ignore[attr-defined]
        if highs.passModel(lp) != core.HighsStatus.kOk:
            return None
        return core, highs
    except (ImportError, AttributeError, TypeError):
        return None


def suppress_ranges(counts: LinkedCounts, model: CountModel, min_cell: int) -> dict[Cell, str]:
    """Each cell's status (``shown``, ``primary``, ``complementary``), so that no sensitive quantity narrows.

    Sensitive quantities are the counts from 1 to K−1 and the differences of nested counts from 1 to
    K−1 (``counts.nested``). Over every table consistent with what is shown (``_Outsider``), each
    must keep a range of at least K−1 whole numbers: as many as ``"<K"`` itself leaves open (1 to
    K−1), so that no combination of shown cells tells more about a small count than its marker.
    A range that rests only on markers and zeros (no shown cell has a non-zero dual value in its
    solutions) cannot be widened by withholding anything more: it is kept as it is, which is what
    it would be with every non-zero count withheld. (For K = 2, where ``"<2"`` can only be 1, a
    difference must still not be pinned to one value.)

    Greedy: while a quantity is too narrow, withhold the cheapest class of equal cells
    (``counts.cost``, then value) among those its range rests on whose withholding widens it
    enough, or else the cheapest of them; then show again, dearest first, every withheld class that
    is no longer needed. Zero is never withheld. Deterministic; not guaranteed minimal.
    """
    min_cell = check_min_cell(min_cell)
    cells = list(model.cells)
    index = {c: i for i, c in enumerate(cells)}
    published = np.array([c in counts.values for c in cells])
    values = np.array([counts.values.get(c, 0) for c in cells], dtype=np.int64)
    identities = np.zeros((len(counts.identities), len(cells)), dtype=np.int64)
    for row, identity in enumerate(counts.identities):
        if all(c in counts.values for c in identity):
            for c, coefficient in identity.items():
                identities[row, index[c]] = coefficient
    shown_cells = [c for c in cells if c in counts.values]
    sensitive = np.zeros((0, len(cells)), dtype=np.int64)
    if shown_cells:
        rows = _sensitive(counts, shown_cells, {c: i for i, c in enumerate(shown_cells)}, min_cell)
        sensitive = np.zeros((len(rows), len(cells)), dtype=np.int64)
        sensitive[:, [index[c] for c in shown_cells]] = rows
        # Cells that are always equal are one count: T(0) − X and T(1) − X are one quantity.
        same = np.zeros((len(cells), len(cells)), dtype=np.int64)
        for members in _equal_classes(identities):
            same[members, members[0]] = 1
        sensitive = np.unique(sensitive @ same, axis=0)
        sensitive = sensitive[sensitive.any(axis=1)]
        # Single counts first (their solutions help to settle the differences), then by size.
        sensitive = sensitive[np.lexsort((np.arange(len(sensitive)), np.abs(sensitive).sum(axis=1)))]
    single = (np.abs(sensitive).sum(axis=1) == 1) & (sensitive.sum(axis=1) == 1)
    width = np.where(single, min_cell - 2, max(min_cell - 2, 1))
    most = max(min_cell - 2, 1)
    primary = published & (values >= 1) & (values <= min_cell - 1)
    weights = [counts.cost(c, int(values[i])) if published[i] else 0.0 for i, c in enumerate(cells)]
    classes = sorted(
        (m for m in _equal_classes(identities) if published[m].all() and (values[m] > 0).all()),
        key=lambda m: (sum(weights[i] for i in m), int(values[m].sum()), int(m[0])),
    )
    outsider = _Outsider(model, counts.values, min_cell)
    truth = outsider.truth()
    floor: dict[int, float] = {}  # quantities that no further withholding widens: keep this spread

    def enough(q: int, r: _Range) -> bool:
        return r.spread() >= floor.get(q, width[q])

    def assess(q: int, hidden: np.ndarray, pool: _Pool, cache: dict[bytes, _Range]) -> _Range:
        """Quantity q's range (or a part of it wide enough for any quantity) when ``hidden`` is withheld.

        Shown cells are constants, so q's spread is that of its withheld part, shared by every
        quantity with the same part (``cache``). Solutions found join ``pool``: a spread the pool
        already reaches needs no solving.
        """
        own = (sensitive[q] != 0) & ~hidden  # its range rests on its own shown cells too
        part = np.where(hidden, sensitive[q], 0)
        if not part.any():  # known exactly
            return _Range(0.0, 0.0, truth, truth, own)
        part = part if part[np.flatnonzero(part)[0]] > 0 else -part
        key = part.tobytes()
        if key not in cache:
            cache[key] = outsider.range(part, outsider.bounds(hidden), pool, most)
        found = cache[key]
        return _Range(found.low, found.high, found.x_low, found.x_high, found.resting | own)

    hidden = primary.copy()
    pool = _Pool(len(cells), truth)
    cache: dict[bytes, _Range] = {}
    ranges: dict[int, _Range] = {}
    stale = set(range(len(sensitive)))  # not assessed since something it rests on was withheld
    needed: dict[tuple[int, ...], list[int]] = {}  # the quantities each complement was withheld for
    for q in range(len(sensitive)):
        while True:
            if q in stale:
                ranges[q] = assess(q, hidden, pool, cache)
                stale.discard(q)
            if enough(q, ranges[q]):
                break
            candidates = [m for m in classes if not hidden[m].all() and ranges[q].resting[m].any()]
            if not candidates:
                # The range rests only on withheld cells and zeros: no withholding can widen it (the
                # solver's dual solution stays optimal), so it is as wide as the rule can make it.
                floor[q] = ranges[q].spread()
                break
            chosen = None
            for members in candidates:  # cheapest first
                trial: tuple[np.ndarray, _Pool, dict[bytes, _Range]] = (_with(hidden, members), pool.branch(), {})
                if enough(q, assess(q, *trial)):
                    chosen = members, trial
                    break
            if chosen is None:  # none is enough alone: withhold the cheapest and look again
                changed = candidates[0]
                hidden = _with(hidden, changed)
                cache = {key: r for key, r in cache.items() if r.spread() >= most}
            else:
                changed, (hidden, pool, cache) = chosen
            needed.setdefault(tuple(changed), []).append(q)
            # A range that does not rest on the cells just withheld stays as it is, and one wide
            # enough stays so (withholding only adds tables consistent with what is shown).
            stale.update(p for p in ranges if p >= q and ranges[p].resting[changed].any())
    # Greedy choices depend on the order quantities are met; give back every complement (dearest
    # first) that is no longer needed. A range whose two ends are reached by tables holding the true
    # values of the class keeps its spread when the class is shown again: it is not solved again.
    for members in reversed(classes):
        if not hidden[members].all() or primary[members].any():
            continue
        trial_hidden = hidden.copy()
        trial_hidden[members] = False
        trial_pool, trial_cache = pool.holding(members, values[members]), cast("dict[bytes, _Range]", {})
        updated: dict[int, _Range] = {}
        # The likeliest to narrow again first (a trial that fails should fail early): those it was
        # withheld for, those whose range rests on it, those that count it.
        order = sorted(
            ranges,
            key=lambda p: (
                p not in needed.get(tuple(members), ()),
                not ranges[p].resting[members].any(),
                not sensitive[p, members].any(),
                p,
            ),
        )
        for q in order:
            if ranges[q].holds(members, values[members]):
                continue
            updated[q] = assess(q, trial_hidden, trial_pool, trial_cache)
            if not enough(q, updated[q]):
                break
        else:
            hidden, pool = trial_hidden, trial_pool
            ranges.update(updated)
            continue
        pool.merge(trial_pool)  # consistent with showing less, so with showing what is shown now
    return {
        c: PRIMARY if primary[i] else COMPLEMENTARY if hidden[i] else SHOWN for i, c in enumerate(cells) if published[i]
    }


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
    values: dict[Cell, int] = {
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


def cohort_model(last_cycle: int) -> CountModel:
    """SPEC §3's cohort counts for cycles 0..``last_cycle`` as sums of counts of kinds of patients.

    A treated patient is summed up by: eligible or not; n, the number of sessions (1..N, N the last
    cycle of the table); f, the cycle of the first 50% response (1..n, or 0 for none); m, the number
    of cycles they had the time to complete by as_of (0..N; more counts as N). Then, for cycle k ≥ 1
    (every sum over eligible patients unless said otherwise):

    - T(k) = treated patients with n ≥ k (T(0) = T(1)); E(0) = CD(k)'s whole = eligible patients;
    - CD(k) = n ≥ k; CN(k) = n ≥ k and 1 ≤ f ≤ k; NR(k) = f = k (first responders are evaluable
      responders at their cycle k ≤ n);
    - ID(k) = m ≥ k; IN(k) = m ≥ k and 1 ≤ f ≤ k;
    - at cycle k the patients with n ≥ k fall into earlier responders (f < k, CN(k) − NR(k) of
      them), first responders (NR(k)) and the rest (CD(k) − CN(k)); of the first, eL(k) are
      evaluable and rL(k) ≤ eL(k) of those respond again; of the last, eG(k) are evaluable (none
      responds: they would be first responders). So E(k) = eL + NR + eG, R(k) = rL + NR and
      P(k) = NR + eG (no response before k).

    Sessions and time are not linked (a session may come early), so the patients of each f are
    counted twice, by n (``b``) and by m (``c``), with the same total for each f; whole-number
    counts with these totals always fit together as patients. Per cycle the evaluable and responder
    counts of each kind of patient can be chosen freely, so every whole-number solution is a table
    that some patients produce.
    """
    last = int(last_cycle)
    cells: list[Cell] = [(0, T), (0, E), *((k, c) for k in range(1, last + 1) for c in COUNT_COLUMNS)]
    latent: list[Hashable] = []

    def new(name: Hashable) -> int:
        latent.append(name)
        return len(cells) + len(latent) - 1

    most = max(last, 1)  # a table of cycle 0 alone still counts patients with a session
    responses = [*range(1, most + 1), 0]  # 0: never responded
    ineligible = {n: new(("ineligible", n)) for n in range(1, most + 1)}
    by_sessions = {(n, f): new(("sessions", n, f)) for n in range(1, most + 1) for f in [*range(1, n + 1), 0]}
    by_time = {(m, f): new(("time", m, f)) for m in range(0, most + 1) for f in responses}
    earlier, again, rest = ({k: new((name, k)) for k in range(1, last + 1)} for name in ("eL", "rL", "eG"))
    size = len(cells) + len(latent)
    index = {c: i for i, c in enumerate(cells)}
    equalities: list[np.ndarray] = []
    inequalities: list[np.ndarray] = []

    def relation(rows: list[np.ndarray], plus: list[int], minus: list[int]) -> None:
        row = np.zeros(size)
        np.add.at(row, plus, 1.0)
        np.add.at(row, minus, -1.0)
        rows.append(row)

    def sessions(keep: Callable[..., bool]) -> list[int]:
        return [v for (n, f), v in by_sessions.items() if keep(n, f)]

    def time(keep: Callable[..., bool]) -> list[int]:
        return [v for (m, f), v in by_time.items() if keep(m, f)]

    for k in range(0, last + 1):
        first = max(k, 1)
        treated = [v for n, v in ineligible.items() if n >= first] + sessions(lambda n, f, j=first: n >= j)
        relation(equalities, [index[(k, T)]], treated)
    relation(equalities, [index[(0, E)]], list(by_sessions.values()))
    for k in range(1, last + 1):
        new_responders = sessions(lambda n, f, k=k: f == k)
        relation(equalities, [index[(k, CD)]], sessions(lambda n, f, k=k: n >= k))
        relation(equalities, [index[(k, CN)]], sessions(lambda n, f, k=k: n >= k and 1 <= f <= k))
        relation(equalities, [index[(k, NR)]], new_responders)
        relation(equalities, [index[(k, ID)]], time(lambda m, f, k=k: m >= k))
        relation(equalities, [index[(k, IN)]], time(lambda m, f, k=k: m >= k and 1 <= f <= k))
        relation(equalities, [index[(k, E)]], [earlier[k], rest[k], *new_responders])
        relation(equalities, [index[(k, R)]], [again[k], *new_responders])
        relation(equalities, [index[(k, P)]], [rest[k], *new_responders])
        relation(inequalities, [again[k]], [earlier[k]])
        relation(inequalities, [earlier[k]], sessions(lambda n, f, k=k: n >= k and 1 <= f < k))
        relation(inequalities, [rest[k]], sessions(lambda n, f, k=k: n >= k and (f == 0 or f > k)))
    for response in responses:
        relation(equalities, sessions(lambda n, f, r=response: f == r), time(lambda m, f, r=response: f == r))
    return CountModel(tuple(cells), tuple(latent), np.array(equalities), np.array(inequalities).reshape(-1, size))


def suppress_cohort_cycles(table: pd.DataFrame, k: int = DEFAULT_MIN_CELL) -> pd.DataFrame:
    """A cohort_cycles table fit to share outside the clinic, with cells below ``k`` suppressed.

    Counts become text: the number, ``"<k"`` (1 to k−1) or ``"suppressed"`` (complementary);
    withheld statistics become empty, and ``suppressed_columns`` lists the columns withheld in each
    row. Columns whose disclosure risk is not assessed here are dropped.
    """
    k = check_min_cell(k)
    last = int(table["cycle"].max()) if len(table) else 0
    status = suppress_ranges(cohort_linkage(table), cohort_model(last), k)
    columns = [c for c in table.columns if c == "cycle" or c in COUNT_COLUMNS or c in STATISTIC_COLUMNS]
    out = table[columns].copy().reset_index(drop=True)
    cycles = [int(c) for c in out["cycle"]]
    withheld: list[list[str]] = [[] for _ in cycles]
    for column in (c for c in columns if c in COUNT_COLUMNS):
        text: list[str | None] = []
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
    f: Any  # a row of files; pandas-stubs types each itertuples field as any scalar (the counts are ints)
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
