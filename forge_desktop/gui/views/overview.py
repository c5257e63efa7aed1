"""The Overview page, the window's first: a card per runtime (``overview_data``) that wraps
to the page's width, never sideways. A click (or Enter, Space) on a card asks for that
runtime's trend.

The sparklines are painted with QPainter, not pyqtgraph: the Overview is on screen at every
open, and pyqtgraph brings numpy (about 0.3 s) that the window otherwise imports only when a
plot is first shown; a polyline of at most 30 points needs none of it.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, QObject, QPointF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
)
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from forge_desktop.gui.views.overview_data import Card, Overview

CARD_MIN_WIDTH = 260
"""A card's narrowest: the page puts as many side by side as fit, then wraps."""
CHANGE_COLOUR = QColor(200, 40, 40)


class Sparkline(QWidget):
    """A polyline of the values, oldest left, scaled to their own range; the newest is a
    dot."""

    def __init__(self, values: Sequence[float], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.values = list(values)
        self.setMinimumSize(80, 28)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setAccessibleName("startup history")
        if self.values:
            self.setToolTip(f"last {len(self.values)} medians: {min(self.values):,.0f}–"
                            f"{max(self.values):,.0f} ms, newest {self.values[-1]:,.0f} ms")

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(200, 36)

    def points(self) -> list[QPointF]:
        """Where each value is drawn, in widget coordinates (2 px margin)."""
        if not self.values:
            return []
        lo, hi = min(self.values), max(self.values)
        span = (hi - lo) or 1.0
        w, h = self.width() - 4, self.height() - 4
        step = w / max(len(self.values) - 1, 1)
        return [QPointF(2 + i * step, 2 + h - (v - lo) / span * h if hi > lo else 2 + h / 2)
                for i, v in enumerate(self.values)]

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802
        pts = self.points()
        if not pts:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        colour = self.palette().color(QPalette.ColorRole.Highlight)
        painter.setPen(QPen(colour, 1.5))
        painter.drawPolyline(pts)
        painter.setBrush(colour)
        painter.drawEllipse(pts[-1], 2.5, 2.5)
        painter.end()


class CardWidget(QFrame):
    """One runtime's card; ``activated`` when clicked or on Enter/Space."""

    activated = Signal(str)

    def __init__(self, card: Card, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.card = card
        self.setObjectName(f"card-{card.runtime}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setAccessibleName(f"{card.runtime}: {card.median_text()}")
        self.setToolTip(f"Show the trend of {card.runtime}'s startup")
        self.setMinimumWidth(CARD_MIN_WIDTH)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        layout = QVBoxLayout(self)
        title = QLabel(card.runtime)
        font = QFont(title.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.2)
        title.setFont(font)
        self.median = QLabel(card.median_text())
        self.median.setObjectName("median")
        font = QFont(self.median.font())
        font.setPointSizeF(font.pointSizeF() * 1.5)
        self.median.setFont(font)
        self.median.setToolTip("median startup, with its 95% confidence interval")
        self.sparkline = Sparkline(card.sparkline)
        self.memory = QLabel(card.memory_text())
        self.memory.setObjectName("memory")
        self.canary = QLabel(card.canary_text())
        self.canary.setObjectName("canary")
        self.changes = QLabel()
        self.changes.setObjectName("changes")
        self.changes.setWordWrap(True)
        for widget in (title, self.median, self.sparkline, self.memory, self.canary,
                       self.changes):
            layout.addWidget(widget)
        self.set_changes(card)

    def set_changes(self, card: Card) -> None:
        self.card = card
        lines = card.change_lines()
        if lines:
            self.changes.setText("\n".join(f"▲ {line}" for line in lines))
            palette = self.changes.palette()
            palette.setColor(QPalette.ColorRole.WindowText, CHANGE_COLOUR)
            self.changes.setPalette(palette)
        else:
            self.changes.setText("no open change points")
            self.changes.setPalette(self.palette())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(
                event.position().toPoint()):
            self.activated.emit(self.card.runtime)
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.activated.emit(self.card.runtime)
            return
        super().keyPressEvent(event)


class OverviewPage(QWidget):
    """The cards in a grid as wide as the page, wrapping to more rows when narrow."""

    open_trend = Signal(str)
    """A runtime's card was activated."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("overview")
        self.data = Overview("", "", (), 0)
        self.cards: dict[str, CardWidget] = {}
        self.heading = QLabel("Reading the results…")
        self.heading.setObjectName("overview-heading")
        self.heading.setWordWrap(True)
        font = QFont(self.heading.font())
        font.setBold(True)
        self.heading.setFont(font)
        self.changes_note = QLabel("")
        self.changes_note.setObjectName("changes-note")
        self.changes_note.setWordWrap(True)
        self.grid_host = QWidget()
        self.grid_host.setObjectName("overview-cards")
        self.grid = QGridLayout(self.grid_host)
        self.area = QScrollArea()
        self.area.setWidgetResizable(True)
        self.area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.area.setFrameShape(QFrame.Shape.NoFrame)
        self.area.setWidget(self.grid_host)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.changes_note)
        layout.addWidget(self.area, 1)
        self._columns = 0
        self.area.viewport().installEventFilter(self)

    def set_overview(self, data: Overview) -> None:
        self.data = data
        for widget in self.cards.values():
            self.grid.removeWidget(widget)
            widget.deleteLater()
        self.cards = {}
        for card in data.cards:
            widget = CardWidget(card)
            widget.activated.connect(self.open_trend.emit)
            self.cards[card.runtime] = widget
        self.heading.setText(data.title())
        self._columns = 0
        self._place()
        self.grid_host.update()  # painted as populated even when no card changed it

    def set_changes(self, data: Overview, note: str = "") -> None:
        """The same cards with their open change points (asked for after the cards)."""
        self.data = data
        for card in data.cards:
            if (widget := self.cards.get(card.runtime)) is not None:
                widget.set_changes(card)
        self.changes_note.setText(note)

    def columns_for(self, width: int) -> int:
        spacing = self.grid.horizontalSpacing()
        margins = self.grid.contentsMargins()
        room = width - margins.left() - margins.right()
        return max(1, (room + spacing) // (CARD_MIN_WIDTH + spacing))

    def _place(self) -> None:
        columns = self.columns_for(self.area.viewport().width())
        if columns == self._columns:
            return
        self._columns = columns
        for widget in self.cards.values():
            self.grid.removeWidget(widget)
        for i, widget in enumerate(self.cards.values()):
            self.grid.addWidget(widget, i // columns, i % columns)
        for c in range(self.grid.columnCount()):
            self.grid.setColumnStretch(c, 1 if c < columns else 0)
        # The room below the cards goes to an empty last row: each card row keeps the height
        # its wrapped lines need at its width (a top alignment would give them their size
        # hint's, computed at another width, and cut the change lines).
        rows = -(-len(self.cards) // columns)
        for r in range(max(self.grid.rowCount(), rows + 1)):
            self.grid.setRowStretch(r, 1 if r == rows else 0)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.area.viewport() and event.type() == QEvent.Type.Resize:
            self._place()
        return super().eventFilter(watched, event)
