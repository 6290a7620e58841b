"""The chat panel: talk to a finished run, side by side with the model it started from.

Models load on the first Send or Enter (torch only then) and stay cached while the run stays chosen.
Answers fill token by token as readable text: generation runs in a background thread and widget values
are set from there, never through `with output:` (DESIGN 5).
"""

from __future__ import annotations

import html
import threading
import time
from pathlib import Path

import ipywidgets as w

from widgets.form import Field, shown_path
from workbench import chat, runs

SIDES = {"result": "this run", "start": "starting model"}


class Side(w.VBox):
    """One model's half of the conversation: its turns so far and the answer being written."""

    def __init__(self, which: str):
        self.which, self.history, self.answer = which, [], ""  # answer: the reply being written, as text
        self.header, self.transcript, self.reply = w.HTML(f"<b>{SIDES[which]}</b>"), w.HTML(), w.HTML()
        super().__init__([self.header, self.transcript, self.reply])
        self.layout.width = "50%"
        self.add_class(f"wb-chat-{which}")

    def name(self, run: str | None) -> None:
        """Head this side with the run it talks to."""
        self.header.value = (
            f"<b>{html.escape(run)}</b> ({SIDES[self.which]})" if run else f"<b>{SIDES[self.which]}</b>"
        )

    def clear(self) -> None:
        self.history, self.transcript.value = [], ""
        self._write("")

    def _write(self, answer: str, empty: str = "") -> None:
        self.answer = answer
        shown = html.escape(answer) if answer else f"<i style='color:#555'>{empty}</i>" if empty else ""
        style = "white-space:pre-wrap;border-left:3px solid #1976d2;padding:2px 8px;min-height:1.5em"
        self.reply.value = f"<div style='{style}'>{shown}</div>" if answer or empty else ""

    def turn(self, text: str, model, tokenizer, max_new_tokens: int) -> str:
        """Ask `text` and return the answer, which the reply box shows as it is generated."""
        from transformers import TextIteratorStreamer

        self.history.append({"role": "user", "content": text})
        self.transcript.value = _transcript(self.history)
        self._write("")
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        out: dict = {}
        thread = threading.Thread(target=_generate, args=(out, model, tokenizer, self.history[:],
                                                          max_new_tokens, streamer), daemon=True)  # fmt: skip
        thread.start()
        for piece in streamer:
            self._write(self.answer + piece)
        thread.join()
        if "error" in out:
            self.history.pop()  # the question stays unanswered, so it leaves the history
            raise out["error"]
        self._write(out["text"], "(no answer: the model wrote only whitespace)")  # reply() strips its text
        self.history.append({"role": "assistant", "content": out["text"]})
        return out["text"]


class ChatPanel(w.VBox):
    """Chat with a finished run; optionally the same messages go to its starting model alongside."""

    def __init__(
        self, root: str | Path = "runs", run_dir: str | Path | None = None, max_new_tokens: int = 64
    ):
        self.root, self.max_new_tokens = Path(root).expanduser(), max_new_tokens
        self.run = Field(w.Dropdown(), "Run", tip="finished runs that can chat (a reward model only scores)")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        # Enter sends: without continuous updates the value changes only on Enter (or leaving the box).
        self.message = Field(
            w.Text(placeholder="Reverse: abc (Enter sends)", continuous_update=False), "Message"
        )
        self.send_button = w.Button(description="Send", button_style="primary", icon="paper-plane")
        self.compare_box = w.Checkbox(value=True, description="compare with the starting model", indent=False)
        self.clear_button = w.Button(description="Clear", icon="eraser")
        self.sides = {which: Side(which) for which in SIDES}
        self.last: tuple[str, str | None] | None = None  # the replies of the last finished turn
        self._models: dict = {}  # "result" / "start" -> (model, tokenizer), for the run in self._loaded
        self._loaded, self._job, self._sent_at = None, None, -1e9
        super().__init__([w.HBox([self.run, self.refresh_button]), w.HBox([self.message, self.send_button]),
                          w.HBox([self.compare_box, self.clear_button]), w.HBox(list(self.sides.values()))])  # fmt: skip
        self.add_class("wb-chat")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.send_button.on_click(lambda _: self._clicked())
        self.message.control.observe(self._entered, names="value")
        self.clear_button.on_click(lambda _: self.clear())
        self._refreshing = False
        self.run.control.observe(self._switched, names="value")
        self.compare_box.observe(self._show_start, names="value")
        self.refresh(run_dir)

    def refresh(self, run_dir: str | Path | None = None) -> list[str]:
        """List the runs that can chat again; `run_dir` (any folder) becomes the chosen one."""
        rows = runs.listing(self.root) if self.root.is_dir() else []
        options = [(r["name"], str(r["path"].resolve())) for r in rows if _can_chat(r)]
        chosen = str(Path(run_dir).expanduser().resolve()) if run_dir else self.run.value
        if chosen and chosen not in dict(options).values():  # kept, so that Send can say why it cannot chat
            options.append((Path(chosen).name, chosen))
        self._refreshing = True  # new options reset the value on the way: not a new conversation
        try:
            self.run.control.options = options
            self.run.value = chosen or (options[0][1] if options else None)
        finally:
            self._refreshing = False
        self.run.show(hint=f"{len(options)} run(s) to chat with under {shown_path(self.root)}")
        self._name()
        return [value for _, value in options]

    def _name(self) -> None:
        self.sides["result"].name(Path(self.run.value).name if self.run.value else None)

    def _switched(self, change) -> None:
        self._name()
        if not self._refreshing:
            self.clear()  # another model, a new conversation

    def _entered(self, change) -> None:
        if change["new"].strip():
            self.send(wait=False)

    def _clicked(self) -> None:
        # Leaving the box for the button sent the message just before the click: not "type a message".
        if self.message.value.strip() or time.monotonic() - self._sent_at > 2:
            self.send(wait=False)

    def send(self, text: str | None = None, wait: bool = True) -> tuple[str, str | None] | None:
        """Send `text` (else the message box); returns (reply, starting model's reply or None) when waiting."""
        text = (self.message.value if text is None else text).strip()
        if not self._ready(text):
            return None
        self.message.value, self.send_button.disabled, self.last = "", True, None
        self._sent_at = time.monotonic()
        self._job = threading.Thread(target=self._turn, args=(self.run.value, text, self.compare_box.value))
        self._job.start()
        if wait:
            self._job.join()
        return self.last

    def _ready(self, text: str) -> bool:
        if self._job is not None and self._job.is_alive():
            self.run.show(error="still answering the last message")
        elif not self.run.value:
            self.run.show(error=f"choose a run first: none that can chat under {shown_path(self.root)}")
        else:
            self.run.show()  # an earlier problem (say, a run that failed to load) is gone
        self.message.show(error=None if text else "type a message first")
        return not (self.run.error or self.message.error)

    def _turn(self, run_dir: str, text: str, compare: bool) -> None:
        which = ["result", "start"] if compare else ["result"]
        try:
            loaded = {side: self._model(run_dir, side) for side in which}
            self.run.show(hint="answering …")
            answers = [self.sides[s].turn(text, *loaded[s], self.max_new_tokens) for s in which]
            self.last = (answers[0], answers[1] if compare else None)
            self.run.show(hint=f"{Path(run_dir).name}: {len(self.sides['result'].history) // 2} turn(s)")
        except Exception as error:  # a background thread has nowhere else to report: the panel shows it
            known = isinstance(error, chat.ChatError)
            self.run.show(error=str(error) if known else f"{type(error).__name__}: {error}")
        finally:
            self.send_button.disabled = False

    def _model(self, run_dir: str, which: str):
        if self._loaded != run_dir:  # one run's models at a time: large models do not fit twice
            self._models, self._loaded = {}, run_dir
        if which not in self._models:
            self.run.show(hint=f"loading the {SIDES[which]} …")
            self._models[which] = (chat.load_result if which == "result" else chat.load_start)(run_dir)
        return self._models[which]

    def clear(self) -> None:
        """Start a new conversation on both sides."""
        for side in self.sides.values():
            side.clear()
        self.last = None

    def _show_start(self, change) -> None:
        self.sides["start"].layout.display = None if change["new"] else "none"


def _can_chat(row: dict) -> bool:
    has_result = (row["path"] / "adapter").is_dir() or (row["path"] / "model").is_dir()
    return row["status"] == "finished" and row["method"] != "reward" and has_result


def _generate(out: dict, model, tokenizer, history: list[dict], max_new_tokens: int, streamer) -> None:
    try:
        out["text"] = chat.reply(model, tokenizer, history, max_new_tokens, streamer)
    except Exception as error:  # handed to the reading thread, which re-raises it
        out["error"] = error
        streamer.end()  # else the reading thread waits for tokens forever


def _transcript(history: list[dict]) -> str:
    speaker = {"user": "you", "assistant": "assistant"}
    return "".join(
        f"<div><b>{speaker.get(m['role'], m['role'])}:</b> {html.escape(m['content'])}</div>" for m in history
    )
