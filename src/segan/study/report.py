"""`segan study report`: Table 3 from the votes: the share of votes for SeGAN against each
baseline, with 95% Wilson score intervals.

Participants: "passed" answered every attention check and chose the ground truth in each;
"failed" chose the broken painting at least once; "incomplete" has not reached every check
yet. Only the passed participants' votes count; the others are counted and listed as
excluded. The attention-check pass rate is passed / (passed + failed). The intervals treat the
votes as independent draws, as a crowd study with one vote per worker and pair does; votes of
one participant are correlated, so read them as a lower bound on the uncertainty.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from segan.data.atomic import write_bytes_atomic

from .db import connect
from .design import GROUND_TRUTH

REPORT_FORMAT = "segan-study-report"
Z95 = 1.959963984540054  # the normal quantile of 0.975
# Table 3 of the paper: how often each method's painting was chosen as the best, three shown
# at once (Mechanical Turk); not the same question as our pairwise one
PAPER_TABLE3 = {"nearest_neighbour": 0.0046, "pix2pix": 0.2974, "segan": 0.6978}


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion k / n (n >= 1)."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def study_report(study_dir: str | os.PathLike) -> dict[str, Any]:
    """Table 3 of the votes in STUDY (see the module docstring)."""
    con = connect(study_dir)
    try:
        study = dict(con.execute("SELECT * FROM studies").fetchone())
        items = {r["id"]: dict(r) for r in con.execute("SELECT * FROM items")}
        participants = [dict(r) for r in con.execute("SELECT id FROM participants")]
        votes = [dict(r) for r in con.execute("SELECT participant_id, item_id, choice FROM votes")]
    finally:
        con.close()
    checks = [i for i, it in items.items() if it["kind"] == "check"]
    by_participant: dict[int, list[dict]] = {p["id"]: [] for p in participants}
    for v in votes:
        by_participant[v["participant_id"]].append(v)

    def chosen(v: dict) -> str:
        it = items[v["item_id"]]
        return it["left_method"] if v["choice"] == "left" else it["right_method"]

    status = {}
    for pid, vs in by_participant.items():
        answered = [v for v in vs if items[v["item_id"]]["kind"] == "check"]
        if any(chosen(v) != GROUND_TRUTH for v in answered):
            status[pid] = "failed"
        elif len(answered) == len(checks):
            status[pid] = "passed"
        else:
            status[pid] = "incomplete"
    counts = {s: sum(1 for x in status.values() if x == s)
              for s in ("passed", "failed", "incomplete")}
    check_votes = [v for v in votes if items[v["item_id"]]["kind"] == "check"]

    ours, baselines = study["ours"], json.loads(study["baselines"])
    rows = []
    for b in baselines:
        vs = [v for v in votes if items[v["item_id"]]["baseline"] == b
              and status[v["participant_id"]] == "passed"]
        n, k = len(vs), sum(chosen(v) == ours for v in vs)
        lo, hi = wilson_interval(k, n) if n else (None, None)
        rows.append({"baseline": b, "votes": n, "votes_for_ours": k,
                     "share_ours": k / n if n else None, "ci95": [lo, hi],
                     "participants": len({v["participant_id"] for v in vs}),
                     "pairs": sum(1 for it in items.values() if it["baseline"] == b)})
    decided = counts["passed"] + counts["failed"]
    return {
        "format": REPORT_FORMAT, "version": 1, "study": str(study_dir), "ours": ours,
        "question": study["question"], "interval": "Wilson score, 95%",
        "rows": rows,
        "participants": {"total": len(participants), **counts,
                         "excluded": counts["failed"] + counts["incomplete"]},
        "attention_checks": {
            "items": len(checks), "pass_rate": counts["passed"] / decided if decided else None,
            "answers": len(check_votes),
            "answers_correct": sum(chosen(v) == GROUND_TRUTH for v in check_votes)},
        "votes": {"total": len(votes), "counted": sum(r["votes"] for r in rows)},
        "design": {"eval_dir": study["eval_dir"], "pairs_per_baseline":
                   study["pairs_per_baseline"], "seed": study["seed"],
                   "created_at": study["created_at"]},
        "paper_table3": PAPER_TABLE3,
    }


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def format_report(rep: dict[str, Any]) -> str:
    """Table 3 as Markdown."""
    p, a = rep["participants"], rep["attention_checks"]
    lines = [
        "# Human preference study (Table 3)", "",
        f"Question: \"{rep['question']}\". Share of votes for {rep['ours']} against each "
        f"baseline, shown side by side in a random order; 95% Wilson score intervals.", "",
        f"| {rep['ours']} against | votes for {rep['ours']} | 95% CI | votes | participants "
        "| pairs |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for r in rep["rows"]:
        lo, hi = r["ci95"]
        ci = "n/a" if lo is None else f"{_pct(lo)} to {_pct(hi)}"
        lines.append(f"| {r['baseline']} | {_pct(r['share_ours'])} ({r['votes_for_ours']}) | "
                     f"{ci} | {r['votes']} | {r['participants']} | {r['pairs']} |")
    lines += [
        "",
        f"Participants: {p['total']}; counted (passed every attention check): {p['passed']}; "
        f"excluded: {p['excluded']} ({p['failed']} failed a check, {p['incomplete']} did not "
        f"reach every check).",
        f"Attention checks: {a['items']} items (the ground-truth appearance against a broken "
        f"painting); pass rate {_pct(a['pass_rate'])} of the participants who answered them "
        f"all or failed one; {a['answers_correct']} of {a['answers']} answers correct.",
        f"Votes: {rep['votes']['total']} recorded, {rep['votes']['counted']} counted.", "",
        "The paper's Table 3 asks for the best of three paintings at once (NN 0.46%, "
        "Pix2Pix 29.74%, SeGAN 69.78%), so its numbers are not directly comparable.", "",
    ]
    return "\n".join(lines)


def plot_report(rep: dict[str, Any], path: str | os.PathLike) -> None:
    """Bars of the share of votes for ours, with the 95% intervals and the 50% line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rep["rows"] if r["votes"]]
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * max(1, len(rows)), 3.2), dpi=120)
    xs = range(len(rows))
    shares = [100 * r["share_ours"] for r in rows]
    err = [[100 * (r["share_ours"] - r["ci95"][0]) for r in rows],
           [100 * (r["ci95"][1] - r["share_ours"]) for r in rows]]
    ax.bar(xs, shares, yerr=err, capsize=5, color="#4c72b0")
    ax.axhline(50, color="grey", linestyle="--", linewidth=1)
    ax.set_xticks(list(xs), [f"vs {r['baseline']}\n(n={r['votes']})" for r in rows])
    ax.set_ylim(0, 100)
    ax.set_ylabel(f"votes for {rep['ours']} (%)")
    ax.set_title("Which one looks more realistic?", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(study_dir: str | os.PathLike, out: str | os.PathLike | None = None
                 ) -> dict[str, Any]:
    """OUT (default STUDY/report)/table3.{md,json,png}; returns the report dict."""
    rep = study_report(study_dir)
    out = Path(out) if out is not None else Path(study_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out / "table3.json", json.dumps(rep, indent=1).encode())
    write_bytes_atomic(out / "table3.md", format_report(rep).encode())
    plot_report(rep, out / "table3.png")
    rep["files"] = [str(out / f) for f in ("table3.md", "table3.json", "table3.png")]
    return rep
