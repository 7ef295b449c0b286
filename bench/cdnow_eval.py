"""How well the nightly scores predict, on the CDNOW purchases that ship inside `lifetimes`.

Scores every customer as of 1997-09-30 with the service's own scoring SQL (the offline path of
`flask campaigns score`), then looks at the next 39 weeks (to 1998-06-30): the event to predict
is "does not buy again". Prints the AUC of each score for that event, and the precision of the
lapsing and lapsed statuses (the share of customers in the status who really did not buy).

    .venv/bin/python bench/cdnow_eval.py [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CALIBRATION_END = date(1997, 9, 30)
HOLDOUT_END = CALIBRATION_END + timedelta(weeks=39)


def load_cdnow() -> list[tuple[str, date, str]]:
    import lifetimes

    path = os.path.join(os.path.dirname(lifetimes.__file__), "datasets", "CDNOW_master.txt")
    rows = []
    with open(path) as f:
        next(f)  # header
        for line in f:
            customer, day, _cds, amount = line.split()
            rows.append((customer, datetime.strptime(day, "%Y%m%d").date(), amount))
    return rows


def auc(scores: list[float], positives: list[bool]) -> float:
    """P(score of a random positive > score of a random negative), ties counting half (Mann-Whitney)."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    n_pos = sum(positives)
    n_neg = len(positives) - n_pos
    rank_sum = sum(rank for rank, positive in zip(ranks, positives, strict=True) if positive)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def raw_bgnbd_p_alive(scores: list[dict], params: dict) -> list[float]:
    """What BG/NBD itself says (1 for every one-time buyer), for comparison with the service's p_alive."""
    import numpy as np
    import pandas as pd
    from lifetimes import BetaGeoFitter

    model = BetaGeoFitter()
    model.params_ = pd.Series(params)
    x = np.array([row["visits"] - 1 for row in scores])
    t = np.array([row["tenure_days"] for row in scores], dtype=float)
    t_x = t - np.array([row["recency_days"] for row in scores], dtype=float)
    return [float(p) for p in model.conditional_probability_alive(x, t_x, t)]


def evaluate() -> dict:
    from app.campaigns.scoring import ScoringRules, score_history

    history = load_cdnow()
    started = time.perf_counter()
    scores, prepared = score_history(history, as_of=CALIBRATION_END, rules=ScoringRules())
    seconds = time.perf_counter() - started
    returned = {customer for customer, day, _ in history if CALIBRATION_END < day <= HOLDOUT_END}
    gone = [row["customer_id"] not in returned for row in scores]
    one_time = [row["visits"] == 1 for row in scores]
    figures = {
        "customers": len(scores),
        "did_not_buy_again": round(sum(gone) / len(gone), 4),
        "one_time_buyers": round(sum(one_time) / len(one_time), 4),
        "program_gap_days": prepared.program_gap,
        "model": prepared.model,
        "scoring_seconds": round(seconds, 2),
        "auc": {
            "overdue_factor": auc([row["overdue_factor"] for row in scores], gone),
            "p_alive (BG/NBD, MBG/NBD for one-time buyers)": auc([-row["p_alive"] for row in scores], gone),
            "p_alive raw BG/NBD": auc([-p for p in raw_bgnbd_p_alive(scores, prepared.model["bgnbd"])], gone),
            "p_return (30 days)": auc([-row["p_return"] for row in scores], gone),
            "days since last visit": auc([row["recency_days"] for row in scores], gone),
        },
        "status": {},
    }
    for status in ("active", "won_back", "lapsing", "lapsed", "new"):
        members = [g for row, g in zip(scores, gone, strict=True) if row["status"] == status]
        figures["status"][status] = {
            "customers": len(members),
            "precision": round(sum(members) / len(members), 4) if members else None,
        }
    at_risk = [g for row, g in zip(scores, gone, strict=True) if row["status"] in ("lapsing", "lapsed")]
    figures["status"]["lapsing or lapsed"] = {
        "customers": len(at_risk),
        "precision": round(sum(at_risk) / len(at_risk), 4),
    }
    figures["auc"] = {name: round(value, 4) for name, value in figures["auc"].items()}
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = evaluate()
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(
        f"CDNOW: {figures['customers']} customers scored as of {CALIBRATION_END} "
        f"in {figures['scoring_seconds']} s; {figures['did_not_buy_again']:.1%} did not buy again "
        f"by {HOLDOUT_END}; {figures['one_time_buyers']:.1%} had bought once."
    )
    print(f"program's typical gap {figures['program_gap_days']:g} days")
    print("\nAUC for 'does not buy again in the 39 weeks':")
    for name, value in figures["auc"].items():
        print(f"  {name:50} {value:.3f}")
    print("\nprecision (share who did not buy again) by status:")
    for name, value in figures["status"].items():
        precision = "-" if value["precision"] is None else f"{value['precision']:.3f}"
        print(f"  {name:20} {value['customers']:6}  {precision}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
