"""Submit a page's form the way a browser would: every named input, select and textarea with
its current value (unchecked boxes left out), so admin POSTs carry exactly what the page
rendered — management forms, hidden ids and read-only inlines included."""

from __future__ import annotations

from html.parser import HTMLParser


class _FormParser(HTMLParser):
    def __init__(self, form_id: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.data: dict[str, str] = {}
        self._select: str | None = None
        self._select_first: str | None = None
        self._select_chosen = False
        self._option_value: str | None = None
        self._option_text: list[str] = []
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        attributes = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self.inside = self.form_id is None or attributes.get("id") == self.form_id
            return
        if not self.inside:
            return
        name = attributes.get("name")
        if tag == "input" and name:
            kind = attributes.get("type", "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in attributes:
                return
            self.data[name] = attributes.get("value", "on" if kind == "checkbox" else "")
        elif tag == "select" and name:
            self._select, self._select_first, self._select_chosen = name, None, False
        elif tag == "option" and self._select:
            self._option_value = attributes.get("value")
            self._option_text = []
            if "selected" in attributes:
                self._select_chosen = True
                self._pending_selected = True
            else:
                self._pending_selected = False
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)
        elif self._option_value is None and self._select is not None:
            self._option_text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "option" and self._select:
            value = self._option_value
            if value is None:
                value = "".join(self._option_text).strip()
            if self._select_first is None:
                self._select_first = value
            if getattr(self, "_pending_selected", False):
                self.data[self._select] = value
            self._option_value = None
        elif tag == "select" and self._select:
            if not self._select_chosen and self._select_first is not None:
                self.data[self._select] = self._select_first
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            # Browsers drop the one newline that follows <textarea>.
            self.data[self._textarea] = "".join(self._text).removeprefix("\n")
            self._textarea = None


def form_data(html: str, form_id: str | None = None) -> dict[str, str]:
    """The fields a browser would submit from the page's form (``form_id`` picks one)."""
    parser = _FormParser(form_id)
    parser.feed(html)
    return parser.data
