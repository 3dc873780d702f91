"""Diagnosis: what likely broke, from the evidence and from what people confirmed before; guards against it."""
