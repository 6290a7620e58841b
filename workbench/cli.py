"""The `workbench` command: train | show | doctor | download | chat.

Only argparse and the config load at start-up, so `workbench --help` answers at once; each
subcommand imports what it needs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import threading
import warnings
from pathlib import Path

from workbench import config as config_mod
from workbench.errors import WorkbenchError

EXAMPLES = """examples:
  workbench train recipes/quickstart.yaml
  workbench train recipes/quickstart.yaml train.max_steps=50 adapter.r=8
  workbench train train.max_steps=50            # the defaults, with overrides
  workbench train runs/quickstart-20260101-120000/resolved.yaml --resume
  workbench train recipes/quickstart.yaml --detach   (in the background)
  workbench stop runs/quickstart-20260101-120000
  workbench show recipes/quickstart.yaml
  workbench chat runs/quickstart-20260101-120000
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="workbench",
        description="Fine-tune and align language models on Ascend NPUs, CUDA GPUs or a CPU.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="run a recipe (section.key=value overrides allowed)")
    t.add_argument("recipe", nargs="?")
    t.add_argument("overrides", nargs="*", metavar="section.key=value")
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    t.add_argument("--detach", action="store_true", help="train in the background; print the run directory")
    t.add_argument("--run-dir", help="train in this run directory, made by a run handle (workbench.launch)")
    st = sub.add_parser("stop", help="ask a running run to stop after this step (it saves a checkpoint)")
    st.add_argument("run_dir")
    f = sub.add_parser("profile", help="profile a few steps of a recipe and say where the time goes")
    f.add_argument("recipe", nargs="?")
    f.add_argument("overrides", nargs="*", metavar="section.key=value")
    s = sub.add_parser("show", help="print the resolved config of a recipe")
    s.add_argument("recipe", nargs="?")
    s.add_argument("overrides", nargs="*", metavar="section.key=value")
    o = sub.add_parser("doctor", help="versions, the device found, its precision, known problems")
    o.add_argument("--json", action="store_true", help="print the report as JSON (for the notebook panels)")
    d = sub.add_parser("download", help="fetch a model (catalogue name or hub ID) into the local cache")
    d.add_argument("name")
    d.add_argument("--hub", choices=["huggingface", "modelscope"], default="huggingface")
    d.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the hub (default 10)")
    d.add_argument("--trust-remote-code", action="store_true", help="also fetch the repo's Python code")
    c = sub.add_parser("chat", help="talk to the result of a run")
    c.add_argument("run_dir")
    c.add_argument("--message", action="append", help="send this and exit (repeatable); else interactive")
    c.add_argument("--max-new-tokens", type=int, default=64)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # Library deprecation chatter is for library developers; users see the workbench's own lines.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        return COMMANDS[args.command](args)
    except WorkbenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def train(args: argparse.Namespace) -> int:
    from workbench import lines
    from workbench.training import train as run_train

    if args.run_dir:
        return _train_in(args.run_dir, args.resume)
    cfg = _config(args)
    if args.detach:
        return _detach(cfg, args)
    stop = threading.Event()
    with _stop_on_signals(stop):
        result = run_train(cfg, should_stop=stop.is_set, resume=args.resume or None, recipe=args.recipe)
    for effect in lines.effects(result.summary):
        print(f"held-out {effect}")
    print(f"run directory: {result.run_dir}")
    return 0 if result.status == "finished" else 130


def _detach(cfg: config_mod.RunConfig, args: argparse.Namespace) -> int:
    """Start the run in a child process (it outlives this command) and say how to follow and stop it."""
    from workbench import launch

    handle = launch.start(cfg, "subprocess", resume=args.resume, recipe=args.recipe)
    print(f"run directory: {handle.run_dir}")
    print(
        f"training in the background (pid {handle.process.pid}); its output: {handle.run_dir / 'console.log'}"
    )
    print(f"stop it with: workbench stop {handle.run_dir}")
    print(f"watch it in a notebook: widgets.LossPlot({str(handle.run_dir)!r}, follow=True)")
    return 0


def _config(args: argparse.Namespace) -> config_mod.RunConfig:
    """The recipe with its overrides; with overrides alone (no file), the defaults the panels start from."""
    if args.recipe and "=" in args.recipe and not os.path.exists(args.recipe):
        args.overrides, args.recipe = [args.recipe, *args.overrides], None
    if args.recipe:
        return config_mod.load(args.recipe, args.overrides)
    return config_mod.override(config_mod.RunConfig(), args.overrides)


def _train_in(run_dir: str, resume: bool) -> int:
    """The child side of a run handle: train the run directory's own resolved.yaml in it."""
    from workbench import runs
    from workbench.errors import describe
    from workbench.training import train as run_train

    stop = threading.Event()
    try:
        cfg = config_mod.load(os.path.join(run_dir, "resolved.yaml"))
        with _stop_on_signals(stop):
            result = run_train(cfg, should_stop=stop.is_set, resume=resume, run_dir=run_dir)
    except BaseException as error:
        if runs.status(run_dir) not in (
            "failed",
            "finished",
            "stopped",
        ):  # failed before the run could say so
            runs.Run(Path(run_dir)).event("error", reason=describe(error))
        raise
    return 0 if result.status == "finished" else 130


def stop(args: argparse.Namespace) -> int:
    from workbench import launch

    handle = launch.attach(args.run_dir)
    if not (Path(args.run_dir) / "events.jsonl").is_file():
        raise config_mod.ConfigError(f"{args.run_dir} is not a run directory (it has no events.jsonl)")
    if handle.status not in ("starting", "running", "stopping"):
        print(f"{args.run_dir} is not running ({handle.status}): nothing to stop")
        return 0
    handle.stop()
    print(f"asked {args.run_dir} to stop after its current step (it saves a checkpoint first)")
    return 0


class _stop_on_signals:
    """First Ctrl-C (or SIGTERM) asks for a clean stop with a checkpoint; a second one aborts."""

    def __init__(self, stop: threading.Event):
        self.stop, self.previous = stop, {}

    def _handle(self, signum, frame):
        if self.stop.is_set():
            raise KeyboardInterrupt
        self.stop.set()
        print(
            "\nstopping after this step (a checkpoint is saved); press Ctrl-C again to abort", file=sys.stderr
        )

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def profile(args: argparse.Namespace) -> int:
    """A short, bounded run of the recipe with the profiler on (no evaluation, no saved result)."""
    from workbench import profiling, runs
    from workbench.training import train as run_train

    cfg = _config(args)
    p = cfg.profile
    short = {"profile.enabled": True, "train.max_steps": p.wait + p.warmup + p.active + 1,
             "train.logging_steps": 1, "train.save_steps": 10**9, "eval.before": False, "eval.after": False,
             "output.save_result": False, "output.name": f"{runs.run_name(cfg)}-profile"}  # fmt: skip
    if not any(o.startswith("profile.profile_memory=") for o in args.overrides):
        short["profile.profile_memory"] = True  # a few steps can afford the memory timeline
    result = run_train(config_mod.override(cfg, short), echo=False)
    print(profiling.report(result.run_dir))
    return 0


def show(args: argparse.Namespace) -> int:
    print(config_mod.dump(_config(args)), end="")
    return 0


def doctor(args: argparse.Namespace) -> int:
    from workbench import doctor as doctor_mod  # this function is called doctor too

    report = doctor_mod.report()
    print(json.dumps(dataclasses.asdict(report)) if args.json else doctor_mod.format_report(report))
    return 0


def download(args: argparse.Namespace) -> int:
    from workbench import hub

    path = hub.download(
        args.name, hub=args.hub, timeout=args.timeout, trust_remote_code=args.trust_remote_code
    )
    print(f"downloaded to {path}")
    return 0


def chat(args: argparse.Namespace) -> int:
    from transformers import TextStreamer

    from workbench.chat import load_result, reply

    model, tokenizer = load_result(args.run_dir)
    streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)  # tokens appear as made
    history: list[dict] = []
    for text in args.message or _prompts():
        history.append({"role": "user", "content": text})
        print("assistant: ", end="", flush=True)
        history.append(
            {"role": "assistant", "content": reply(model, tokenizer, history, args.max_new_tokens, streamer)}
        )
    return 0


def _prompts():
    print("chat with the model; an empty line or Ctrl-D ends", file=sys.stderr)
    while True:
        try:
            text = input("you: ").strip()
        except EOFError:
            return
        if not text:
            return
        yield text


COMMANDS = {
    "train": train,
    "stop": stop,
    "profile": profile,
    "show": show,
    "doctor": doctor,
    "download": download,
    "chat": chat,
}
