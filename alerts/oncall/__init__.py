"""On-call: schedules of layered rotations and overrides (who is on call at t), their API, pages and .ics feeds."""
