"""Provides PickerScreen: presets grouped by lecture section; Enter trains all variants.

Typing filters the list (any printable key but the bound e, r, q and ?; ``/`` always
starts a filter): the text matches a preset's name, title, section or description.
"""

from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from tui_trainer.tui.messages import StartRequested
from tui_trainer.tui.presets_view import PresetEntry, describe, load_entries, sections
from tui_trainer.tui.screens.edit import EditScreen

__all__ = ["PickerScreen"]


class PickerScreen(Screen[None]):
    """The first screen: choose an experiment from the lecture and train it."""

    BINDINGS = [
        Binding("question_mark", "app.help", "help"),
        Binding("enter", "start", "train all variants", priority=True),
        Binding("e", "edit", "edit & train"),
        Binding("r", "app.show_runs", "runs"),
        Binding("slash", "filter", "filter"),
    ]
    FILTER_KEYS_RESERVED = frozenset("erq?/")
    AUTO_FOCUS = "#presets"  # not the filter: plain letters are commands until one filters

    def __init__(self, presets_dir: str | None = None) -> None:
        super().__init__()
        self.presets_dir = presets_dir
        self.entries: dict[str, PresetEntry] = {}
        self.all_entries: list[PresetEntry] = []
        self.error = ""
        self._typing = False  # a filter was begun: letters are text, not commands

    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="preset-column"):
                yield Input(
                    placeholder="type to filter, esc clears", id="filter", select_on_focus=False
                )
                yield OptionList(Option("loading presets…", disabled=True), id="presets")
            with VerticalScroll(id="preset-detail", classes="panel"):
                yield Static(id="detail")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#presets").border_title = "presets"
        self.query_one("#preset-detail").border_title = "preset"
        self.load()

    @work(thread=True, exit_on_error=False, group="presets")
    def load(self) -> None:
        try:
            entries = load_entries(self.presets_dir)
            error = ""
        except Exception as exc:  # --presets-dir is not a directory, ...
            entries, error = [], str(exc)
        self.app.call_from_thread(self._loaded, entries, error)

    def _loaded(self, entries: list[PresetEntry], error: str) -> None:
        self.all_entries, self.error = entries, error
        self._show(entries, error)

    @staticmethod
    def matches(entry: PresetEntry, text: str) -> bool:
        """Every word of the filter appears in the name, title, section or description."""
        cfg = entry.config
        hay = " ".join(
            [entry.name, entry.error]
            + ([cfg.title, cfg.section, cfg.description] if cfg is not None else [])
        ).lower()
        return all(word in hay for word in text.lower().split())

    # -- filtering ------------------------------------------------------------------------
    def on_key(self, event: events.Key) -> None:
        filt = self.query_one("#filter", Input)
        if filt.has_focus:
            if event.key in ("down", "up", "pagedown", "pageup"):
                ol = self.query_one("#presets", OptionList)
                getattr(ol, f"action_{'cursor' if event.key in ('down', 'up') else 'page'}_"
                        f"{'down' if 'down' in event.key else 'up'}")()
                event.stop()
            elif event.key == "escape":
                filt.value = ""
                self._typing = False
                self.query_one("#presets", OptionList).focus()
                event.stop()
            return
        ch = event.character
        if not ch or not ch.isprintable() or ch.isspace():
            return
        # Once a filter has begun (keys typed faster than focus moves), every letter is text.
        if ch == "/":
            self._typing = True
            filt.focus()
            event.stop()
            event.prevent_default()
        elif ch not in self.FILTER_KEYS_RESERVED or filt.value or self._typing:
            self._typing = True
            filt.focus()
            filt.value += ch
            filt.cursor_position = len(filt.value)
            event.stop()
            event.prevent_default()

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        text = event.value.strip()
        shown = [e for e in self.all_entries if self.matches(e, text)] if text else self.all_entries
        self._show(shown, self.error if not text else f"no preset matches {text!r}", focus=False)

    def _show(self, entries: list[PresetEntry], error: str, focus: bool = True) -> None:
        options: list[Option | None] = []
        self.entries = {e.name: e for e in entries}
        for section, items in sections(entries):
            if options:
                options.append(None)
            options.append(Option(Text(section, "bold underline"), disabled=True))
            for e in items:
                claim = f"{e.claim:>2}" if e.claim else " ·"
                label = Text(f"{claim} ", "dim")
                label.append(e.name, "bold" if not e.error else "red")
                if e.preset is not None and e.preset.variant_names:
                    label.append(f" ×{len(e.preset.variant_names)}", "cyan")
                options.append(Option(label, id=e.name))
        if not entries:
            options = [Option(Text(error or "no presets found", "red"), disabled=True)]
        ol = self.query_one("#presets", OptionList)
        current = self._current()  # keep the highlighted preset when the list changes
        ol.clear_options()
        ol.add_options(options)
        keep = current.name if current is not None else None
        first = next(
            (i for i, o in enumerate(options) if o is not None and o.id == keep and keep), None
        )
        if first is None:
            first = next(
                (i for i, o in enumerate(options) if o is not None and not o.disabled), None
            )
        if first is not None:
            ol.highlighted = sum(1 for o in options[:first] if o is not None)
        if focus:
            ol.focus()

    def _current(self) -> PresetEntry | None:
        ol = self.query_one("#presets", OptionList)
        if ol.highlighted is None:
            return None
        option = ol.get_option_at_index(ol.highlighted)
        return self.entries.get(option.id or "")

    @on(OptionList.OptionHighlighted)
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        entry = self.entries.get(event.option.id or "")
        self.query_one("#detail", Static).update(self._detail(entry) if entry else "")

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.action_start()

    @staticmethod
    def _detail(e: PresetEntry) -> Group:
        if e.error or e.config is None or e.preset is None:
            return Group(Text(e.name, "bold red"), Text(e.error, "red"), Text(str(e.path), "dim"))
        cfg = e.config
        parts = [Text(cfg.title or e.name, "bold")]
        meta = Text(f"claim {cfg.claim}" if cfg.claim else "no lecture claim", "cyan")
        meta.append(f" · {cfg.section}" if cfg.section else "", "dim")
        parts += [meta, Text("")]
        if cfg.description:
            parts += [Text(" ".join(cfg.description.split())), Text("")]
        if cfg.look_at:
            look = Text("Look at: ", "bold yellow")
            look.append(cfg.look_at)
            parts += [look, Text("")]
        names = e.preset.variant_names
        if names:
            variants = Text("Variants: ", "bold")
            for i, v in enumerate(names):
                variants.append(("" if i == 0 else ", ") + v)
                if v == e.preset.default_variant:
                    variants.append(" (default)", "dim")
            parts.append(variants)
        parts.append(Text(describe(cfg), "dim"))
        parts.append(Text(str(e.path), "dim italic"))
        return Group(*parts)

    def action_start(self) -> None:
        e = self._current()
        if e is None or e.preset is None:
            if e is not None:
                self.notify(e.error, severity="error")
            return
        variants: list[str | None] = list(e.preset.variant_names) or [None]
        self.post_message(StartRequested(e.name, variants, []))

    def action_edit(self) -> None:
        e = self._current()
        if e is None or e.preset is None:
            return

        def start(request: StartRequested | None) -> None:
            if request is not None:
                self.post_message(request)

        self.app.push_screen(EditScreen(e.name, e.preset), start)
