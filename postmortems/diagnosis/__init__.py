"""Diagnosis: what likely broke, from a breach's numbers and from what people confirmed before, each with a
confidence and a reason; and guards, the detectors a postmortem adds so the same failure is caught next time."""
