"""Watchtower: watches production ML models, acts when they break, remembers every failure."""
