"""Live-paper runs: the LSTM strategy on live feeds with a paper broker, a journal and resume (docs/paper.md)."""

from .broker import PaperBroker
from .feed import LiveFeed
from .hub import BarHub, ReleasedDay
from .journal import Journal
from .session import PaperSession
from .sources import BarSource, Delivery, DirectorySource, ReplaySource, SourceError
from .sqlite import StateError
from .status import paper_status
from .store import BarStore
from .strategy import PaperStrategy

__all__ = [
    "BarHub", "BarSource", "BarStore", "Delivery", "DirectorySource", "Journal", "LiveFeed", "PaperBroker",
    "PaperSession", "PaperStrategy", "ReleasedDay", "ReplaySource", "SourceError", "StateError", "paper_status",
]
