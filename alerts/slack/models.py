"""Where each incident's Slack message is, so it can be edited (chat.update) and replied to (thread_ts)."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from watchtower.clock import utcnow


class SlackMessage(SQLModel, table=True):
    """The incident's message as chat.postMessage answered: the channel's id (not its #name) and the ts."""

    __tablename__ = "slack_message"
    incident_id: int = Field(foreign_key="incident.id", primary_key=True)
    channel: str = Field(max_length=64)
    ts: str = Field(max_length=32)
    posted_at: datetime = Field(default_factory=utcnow)
