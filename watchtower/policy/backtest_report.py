"""A backtest in plain text for the terminal: one line per policy, then the candidate's passes."""

import re
from datetime import datetime, timedelta

from watchtower.clock import to_utc
from watchtower.policy.backtest import BacktestResult, PassLine

UNITS = {"d": "days", "h": "hours", "m": "minutes"}
SHOWN = 30  # passes listed per policy; the tally counts them all


def moment(text: str, now: datetime) -> datetime:
    """`30d`, `12h`, `90m` back from now, or an ISO datetime (UTC unless it says otherwise)."""
    found = re.fullmatch(r"(\d+)([dhm])", text.strip())
    if found:
        return now - timedelta(**{UNITS[found[2]]: int(found[1])})
    try:
        return to_utc(datetime.fromisoformat(text))
    except ValueError:
        raise ValueError(f"'{text}' is neither a duration (30d, 12h, 90m) nor a datetime") from None


def render(result: BacktestResult, has_candidate: bool) -> str:
    """The comparison table and the candidate's passes (or the current policy's, without a candidate)."""
    lines = [f"Backtest of {result.model}, {_at(result.since)} to {_at(result.until)} UTC: "
             f"{result.passes} passes, {result.verdicts} with a verdict",
             "", f"{'':34}{'incidents':>10}{'pages':>7}{'pauses':>8}{'swaps':>7}"]
    rows = [(f"what happened ({result.current_scope} policy)", result.actual),
            ("current policy, replayed", result.current)]
    if has_candidate:
        rows.append(("candidate", result.candidate))
    for label, replay in rows:
        t = replay.tally
        lines.append(f"{label:34}{t.incidents:>10}{t.pages:>7}{t.pauses:>8}{t.swaps:>7}")
    held, failed = result.actual.tally.held, result.actual.tally.failed
    if held or failed:
        lines.append(f"(what happened also had {held} held and {failed} failed actions)")
    shown = result.candidate if has_candidate else result.current
    lines += ["", f"{'candidate' if has_candidate else 'current policy'}: passes on which a rule fired"]
    lines += [_line(p) for p in shown.passes[:SHOWN]] or ["  none"]
    if len(shown.passes) > SHOWN:
        lines.append(f"  ... and {len(shown.passes) - SHOWN} more")
    return "\n".join(lines)


def _line(p: PassLine) -> str:
    did = ", ".join(p.actions) or "nothing new"
    dry = f"; dry run: {', '.join(p.dry_run)}" if p.dry_run else ""
    incident = f" (replayed incident {p.incident})" if p.incident else ""
    return f"  {_at(p.at)}  {p.monitor:16} {', '.join(p.fired):28} {did}{dry}{incident}"


def _at(value: datetime) -> str:
    return to_utc(value).strftime("%Y-%m-%d %H:%M:%S")

