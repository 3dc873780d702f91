"""Diagnosis: from a breach's numbers to likely root causes, each with a confidence and a reason."""
