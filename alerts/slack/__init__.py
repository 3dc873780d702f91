"""Slack you can answer from: the incident message and its buttons, its updates, and the signed endpoint.

messages.py renders Block Kit (pure), updates.py queues edits and thread replies when an incident changes,
store.py reads and records where each incident's message is, sender.py delivers outbox payloads with
slack-sdk, and interactions.py answers button clicks (POST /slack/interactions).
"""
