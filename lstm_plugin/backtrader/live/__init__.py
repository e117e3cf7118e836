"""Live-paper runs: the LSTM strategy on live feeds with a paper broker, a journal and resume
(docs/paper.md)."""

from lstm_plugin.backtrader.live.broker import PaperBroker
from lstm_plugin.backtrader.live.feed import LiveFeed
from lstm_plugin.backtrader.live.hub import BarHub, ReleasedDay
from lstm_plugin.backtrader.live.journal import Journal
from lstm_plugin.backtrader.live.session import PaperSession
from lstm_plugin.backtrader.live.sources import (
    BarSource,
    Delivery,
    DirectorySource,
    ReplaySource,
    SourceError,
)
from lstm_plugin.backtrader.live.sqlite import StateError
from lstm_plugin.backtrader.live.status import paper_status
from lstm_plugin.backtrader.live.store import BarStore
from lstm_plugin.backtrader.live.strategy import PaperStrategy

__all__ = [
    "BarHub",
    "BarSource",
    "BarStore",
    "Delivery",
    "DirectorySource",
    "Journal",
    "LiveFeed",
    "PaperBroker",
    "PaperSession",
    "PaperStrategy",
    "ReleasedDay",
    "ReplaySource",
    "SourceError",
    "StateError",
    "paper_status",
]
