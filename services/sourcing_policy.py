"""The sourcing policy a channel's orders are planned with, checkout and allocation alike."""

from sqlmodel import Session

from sourcing.model import SourcingPolicy
from sourcing.optimizer import DEFAULT_POLICY


def policy_for(session: Session, channel: str) -> SourcingPolicy:
    """The money model for the channel's carts and orders."""
    return DEFAULT_POLICY
