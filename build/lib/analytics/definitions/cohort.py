"""Cohort statistics per cycle (SPEC §3): the cohort_cycles table.

Input is the per-patient-cycle table from ``cycles.patient_cycles``; output has one row per
cycle 0..K. Statistics are computed with group-bys over cycles and one patient × cycle grid
for the intention-to-treat rate; every rate carries its numerator and denominator and a 95%
Wilson interval, every mean its n and a 95% t-interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.definitions.config import AnalysisConfig
from analytics.statistics.stats import t_interval, wilson_interval

COHORT_CYCLE_COLUMNS = [
    "cycle",
    "n_treated",
    "n_evaluable",
    "mean_mhd",
    "mean_mhd_change",
    "mean_mhd_change_ci_low",
    "mean_mhd_change_ci_high",
    "median_mhd_change",
    "responder_50_n",
    "responder_50_rate",
    "responder_50_ci_low",
    "responder_50_ci_high",
    "cum_responder_50_completers_n",
    "cum_responder_50_completers_denom",
    "cum_responder_50_completers_rate",
    "cum_responder_50_completers_ci_low",
    "cum_responder_50_completers_ci_high",
    "cum_responder_50_itt_n",
    "cum_responder_50_itt_denom",
    "cum_responder_50_itt_rate",
    "cum_responder_50_itt_ci_low",
    "cum_responder_50_itt_ci_high",
    "new_responder_50_n",
    "prior_nonresponder_denom",
    "new_responder_50_rate",
]


def _rate(out: pd.DataFrame, prefix: str, numerator: pd.Series, denominator: pd.Series, with_ci: bool = True) -> None:
    num = numerator.to_numpy(dtype="float64")
    den = denominator.to_numpy(dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out[f"{prefix}_rate"] = np.where(den > 0, num / den, np.nan)
    if with_ci:
        out[f"{prefix}_ci_low"], out[f"{prefix}_ci_high"] = wilson_interval(num, den)


def itt_grid(table: pd.DataFrame, as_of: pd.Timestamp, config: AnalysisConfig) -> pd.DataFrame:
    """Eligible patients × cycles 1..K: had time to complete k cycles, and responded by then.

    A patient who stopped keeps the response status of their last cycle (a responder stays a
    cumulative responder; a non-responder counts as one from then on).
    """
    treated = table[(table["cycle"] >= 1) & table["eligible"]]
    if treated.empty:
        return pd.DataFrame(columns=["patient_id", "cycle", "had_time", "responded"])
    k_max = int(treated["cycle"].max())
    responded = (
        treated.pivot(index="patient_id", columns="cycle", values="cumulative_responder_50")
        .reindex(columns=range(1, k_max + 1))
        .astype("float64")
        .ffill(axis=1)
        .fillna(0)
        .astype(bool)
    )
    first_session = treated.loc[treated["cycle"] == 1].set_index("patient_id")["start_date"].reindex(responded.index)
    cycles = np.arange(1, k_max + 1)
    completes_by = (
        first_session.to_numpy()[:, None]
        + pd.to_timedelta(cycles * config.cycle_days - 1, unit="D").to_numpy()[None, :]
    )
    had_time = completes_by <= as_of.to_datetime64()
    return pd.DataFrame(
        {
            "patient_id": np.repeat(responded.index.to_numpy(), k_max),
            "cycle": np.tile(cycles, len(responded)),
            "had_time": had_time.ravel(),
            "responded": responded.to_numpy().ravel(),
        }
    )


def cohort_cycles(table: pd.DataFrame, as_of: pd.Timestamp, config: AnalysisConfig) -> pd.DataFrame:
    """One row per cycle 0..K with the SPEC §3 cohort statistics."""
    k_max = int(table["cycle"].max()) if len(table) else 0
    out = pd.DataFrame({"cycle": np.arange(0, k_max + 1)})
    rows = table.assign(
        evaluable_change=table["mhd_change"].notna(),
        responder=table["responder_50"].fillna(False).astype(bool),
        cum_responder=table["cumulative_responder_50"].fillna(False).astype(bool),
    )
    prior = rows.groupby("patient_id", sort=False)["cum_responder"].shift(1, fill_value=False).astype(bool)
    rows["prior_nonresponder"] = rows["evaluable_change"] & ~prior

    by_cycle = rows.groupby("cycle")
    out["n_treated"] = by_cycle.size().reindex(out["cycle"], fill_value=0).to_numpy()
    evaluable = rows[rows["evaluable_change"] | ((rows["cycle"] == 0) & rows["eligible"])]
    ev = evaluable.groupby("cycle")
    out["n_evaluable"] = ev.size().reindex(out["cycle"], fill_value=0).to_numpy()
    out["mean_mhd"] = ev["mhd"].mean().reindex(out["cycle"]).to_numpy()
    change = ev["mhd_change"]
    out["mean_mhd_change"] = change.mean().reindex(out["cycle"]).to_numpy()
    sd = change.std(ddof=1).reindex(out["cycle"]).to_numpy()
    out["mean_mhd_change_ci_low"], out["mean_mhd_change_ci_high"] = t_interval(
        out["mean_mhd_change"], sd, out["n_evaluable"]
    )
    out["median_mhd_change"] = change.median().reindex(out["cycle"]).to_numpy()
    out["responder_50_n"] = ev["responder"].sum().reindex(out["cycle"], fill_value=0).to_numpy()
    _rate(out, "responder_50", out["responder_50_n"], out["n_evaluable"])

    completers = rows[rows["eligible"]].groupby("cycle")
    out["cum_responder_50_completers_n"] = (
        completers["cum_responder"].sum().reindex(out["cycle"], fill_value=0).to_numpy()
    )
    out["cum_responder_50_completers_denom"] = completers.size().reindex(out["cycle"], fill_value=0).to_numpy()
    _rate(
        out,
        "cum_responder_50_completers",
        out["cum_responder_50_completers_n"],
        out["cum_responder_50_completers_denom"],
    )

    grid = itt_grid(table, as_of, config)
    itt = grid[grid["had_time"].astype(bool)].groupby("cycle")
    out["cum_responder_50_itt_n"] = itt["responded"].sum().reindex(out["cycle"], fill_value=0).to_numpy()
    out["cum_responder_50_itt_denom"] = itt.size().reindex(out["cycle"], fill_value=0).to_numpy()
    _rate(out, "cum_responder_50_itt", out["cum_responder_50_itt_n"], out["cum_responder_50_itt_denom"])

    conditional = rows[rows["prior_nonresponder"]].groupby("cycle")
    out["new_responder_50_n"] = conditional["responder"].sum().reindex(out["cycle"], fill_value=0).to_numpy()
    out["prior_nonresponder_denom"] = conditional.size().reindex(out["cycle"], fill_value=0).to_numpy()
    _rate(out, "new_responder_50", out["new_responder_50_n"], out["prior_nonresponder_denom"], with_ci=True)

    # Columns that do not apply to the baseline are empty there.
    baseline_only = ["cycle", "n_treated", "n_evaluable", "mean_mhd"]
    out = out.astype({c: "Float64" for c in out.columns if c not in ("cycle",)})
    out.loc[out["cycle"] == 0, [c for c in out.columns if c not in baseline_only]] = pd.NA
    counts = [c for c in out.columns if c.endswith(("_n", "_denom")) or c in ("n_treated", "n_evaluable")]
    out[counts] = out[counts].round().astype("Int64")
    extra = [c for c in out.columns if c not in COHORT_CYCLE_COLUMNS]
    return out[COHORT_CYCLE_COLUMNS + extra]
