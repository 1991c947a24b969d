"""The ``agentsession`` command: ``plugins`` (what is installed), ``doctor`` (what is missing), ``report``,
``fakes`` (scripted provider servers on loopback)."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata as metadata
import json
import os
import re
import shlex
import signal
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from . import __version__, hookspecs
from ._errors import PluginError
from ._fakes import FakeService
from ._manager import DISABLE_ENV, ENTRY_POINT_GROUP, create_manager, discover, provided
from ._report import Recording, latency_stats, plot_timeline, render_latency, render_text, table
from ._secrets import env_secret, mask

#: where the usual modes come from, for fixes
MODE_DISTRIBUTIONS = {
    "console": "agentsession-console-io",
    "playground": "agentsession-webrtc",
    "room": "agentsession-videosdk",
}
#: the environment variables holding each provider plugin's key (any one of them)
PROVIDER_KEYS = {
    "agentsession-openai": ("OPENAI_API_KEY",),
    "agentsession-gemini": ("GOOGLE_API_KEY", "GEMINI_API_KEY"),
    "agentsession-deepgram": ("DEEPGRAM_API_KEY",),
    "agentsession-cartesia": ("CARTESIA_API_KEY",),
    "agentsession-videosdk": ("VIDEOSDK_AUTH_TOKEN",),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = argparse.ArgumentParser(prog="agentsession", description="Inspect and diagnose an agentsession install.")
    parser.add_argument("--version", action="version", version=f"agentsession {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("plugins", help="list the installed plugins, what they provide, and which are broken")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    d = sub.add_parser("doctor", help="check what a mode needs (devices, keys, browser, plugins); exit 1 if missing")
    d.add_argument("--mode", help="the mode you want to run (console, playground, room, file, ...)")
    d.add_argument("--json", action="store_true", help="machine-readable output")
    r = sub.add_parser("report", help="summarise a session recording (agentsession-recorder's .jsonl)")
    r.add_argument("recordings", type=Path, nargs="+", metavar="recording",
                   help="SESSION.jsonl files, SESSION.cassette folders, or folders of recordings (several: each "
                        "is reported, then the latencies over all of them)")
    r.add_argument("--plot", type=Path, metavar="PNG", help="also draw the conversation timeline to this PNG "
                                                            "(several recordings: PNG-<recording name>.png each)")
    r.add_argument("--json", action="store_true", help="machine-readable output")
    f = sub.add_parser("fakes", help="serve scripted provider servers (OpenAI, Gemini, ...) on loopback: run "
                                     "agents offline", description=FAKES_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("names", nargs="*", metavar="NAME", help="the fakes to serve (default: every installed one)")
    f.add_argument("--set", action="append", default=[], metavar="NAME.KNOB=VALUE", dest="knobs",
                   help="change a script knob (VALUE: text, or JSON); --list says what each does")
    f.add_argument("--list", action="store_true", help="list the installed fakes and their knobs, then exit")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return _run(args)
    except BrokenPipeError:  # `agentsession plugins --json | head`: the reader has what it wanted
        _silence_stdout()
        return 0


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not fail again on the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _run(args: argparse.Namespace) -> int:
    if args.command == "plugins":
        return _plugins(args.json)
    if args.command == "doctor":
        return _doctor(args.mode, args.json)
    if args.command == "fakes":
        return _fakes(args.names, args.knobs, args.list)
    return _report(args.recordings, args.plot, args.json)


# ---------------------------------------------------------------------- plugins


@dataclass
class PluginRow:
    """One plugin as ``agentsession plugins`` shows it."""

    name: str
    value: str
    distribution: str | None
    version: str | None
    status: str  # "loaded", "built-in", "blocked" or "broken"
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    transports: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)


def inspect_plugins() -> list[PluginRow]:
    """Every plugin: core's built-in one, then each entry point (loaded, blocked or broken)."""
    from . import _builtin

    rows = [_inspect("(core)", "agentsession._builtin", "agentsession", _dist_version("agentsession"), _builtin)]
    rows[0].status = "built-in"
    for info in discover():
        if info.blocked:
            rows.append(PluginRow(info.name, info.value, info.distribution, info.version, "blocked",
                                  f"blocked by {DISABLE_ENV}"))
        elif info.error is not None or info.module is None:
            rows.append(PluginRow(info.name, info.value, info.distribution, info.version, "broken", info.error))
        else:
            rows.append(_inspect(info.name, info.value, info.distribution, info.version, info.module))
    return rows


def _inspect(name: str, value: str, dist: str | None, version: str | None, module: object) -> PluginRow:
    row = PluginRow(name, value, dist, version, "loaded")
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    try:
        pm.register(module, name=name)
    except Exception as exc:  # e.g. a hook implementation with unknown arguments
        row.status, row.error = "broken", f"{type(exc).__name__}: {exc}"
        return row
    row.hooks = sorted(caller.name for caller in pm.get_hookcallers(module) or [])
    problems: list[str] = []
    row.transports = _provided(pm, "agentsession_transports", problems)
    row.models = _provided(pm, "agentsession_models", problems)
    if problems:
        row.status, row.error = "broken", "; ".join(problems)
    return row


def _provided(pm: pluggy.PluginManager, hook: str, problems: list[str]) -> list[str]:
    names: list[str] = []
    for impl in getattr(pm.hook, hook).get_hookimpls():
        try:
            provided = impl.function()
        except Exception as exc:
            problems.append(f"{hook}() raised {type(exc).__name__}: {exc}")
            continue
        if not isinstance(provided, dict):
            problems.append(f"{hook}() returned {type(provided).__name__}, not a dict")
            continue
        names += [str(k) for k in provided]
    return sorted(names)


#: the width ``agentsession plugins`` fits in
TABLE_WIDTH = 100


def plugins_table(rows: list[PluginRow], width: int = TABLE_WIDTH) -> list[str]:
    """One row per plugin; what it provides (modes, models, hooks) wrapped in the last column to fit ``width``."""
    cells = [[r.name, r.distribution or "?", r.version or "?", r.status.upper() if r.status == "broken" else r.status]
             for r in rows]
    lines = table(["ENTRY POINT", "DISTRIBUTION", "VERSION", "STATUS", "PROVIDES"], [[*c, ""] for c in cells])
    indent = len(lines[1]) - len(lines[1].split()[-1])  # where the last column starts
    out = [lines[0], lines[1][:indent] + "-" * (width - indent)]
    for line, r in zip(lines[2:], rows, strict=True):
        provides = [f"modes: {', '.join(r.transports)}"] if r.transports else []
        provides += [f"models: {', '.join(r.models)}"] if r.models else []
        provides += [f"hooks: {', '.join(h.removeprefix('agentsession_') for h in r.hooks)}"] if r.hooks else []
        wrapped = textwrap.wrap("; ".join(provides) or "-", max(20, width - indent), break_on_hyphens=False)
        out.append(line.ljust(indent) + wrapped[0])
        out += [" " * indent + more for more in wrapped[1:]]
    return out


def _plugins(as_json: bool) -> int:
    rows = inspect_plugins()
    if as_json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return 0
    print("\n".join(plugins_table(rows)))
    for r in rows:
        if r.status == "broken":
            print("\n" + textwrap.fill(f"broken: {r.name} = {r.value} ({r.distribution or '?'}): {r.error}",
                                       TABLE_WIDTH, subsequent_indent="  ", break_on_hyphens=False))
            print(textwrap.fill(f"  fix: install what it is missing, `pip uninstall {r.distribution or r.name}`, "
                                f"or export {DISABLE_ENV}={r.name}", TABLE_WIDTH, subsequent_indent="  ",
                                break_on_hyphens=False))
        elif r.status == "blocked":
            print(f"\nblocked: {r.name} ({r.distribution or '?'}) is listed in {DISABLE_ENV}")
    return 0


# ---------------------------------------------------------------------- fakes

FAKES_HELP = """\
Serve the installed plugins' scripted provider servers on loopback and print the environment variables that
point the providers' SDKs at them: paste them into the shell that runs your agent, and it runs offline.

  agentsession fakes                                   # every installed fake
  agentsession fakes openai --set openai.heard="What is the weather in Paris? get_weather"
  agentsession fakes --list                            # the fakes and their script knobs
"""


def installed_fakes() -> dict[str, Callable[[], Any]]:
    """Every fake the installed plugins offer (``agentsession_fakes``), by name; the first of a name wins."""
    fakes: dict[str, Callable[[], Any]] = {}
    for _, name, factory in provided(create_manager(), "agentsession_fakes"):
        fakes.setdefault(name, factory)
    return fakes


def _fakes(names: list[str], knobs: list[str], listing: bool) -> int:
    try:
        available = installed_fakes()
    except PluginError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not available:
        print("error: no installed plugin offers a fake: pip install agentsession-openai (or agentsession-gemini)",
              file=sys.stderr)
        return 2
    unknown = [n for n in names if n not in available]
    if unknown:
        print(f"error: no fake named {', '.join(map(repr, unknown))}; installed: {', '.join(sorted(available))}",
              file=sys.stderr)
        return 2
    services: dict[str, FakeService] = {}
    for name in names or sorted(available):
        service = available[name]()
        if not isinstance(service, FakeService):
            print(f"error: the fake {name!r} is not a FakeService ({type(service).__name__})", file=sys.stderr)
            return 2
        services[name] = service
    for knob in knobs:
        target, _, value = knob.partition("=")
        name, dot, key = target.partition(".")
        if not dot and len(services) == 1:
            name, key = next(iter(services)), target
        try:
            if name not in services:
                raise ValueError(f"no fake named {name!r} is served (serving: {', '.join(services)})")
            services[name].set(key, value)
        except ValueError as exc:
            print(f"error: --set {knob}: {exc}", file=sys.stderr)
            return 2
    if listing:
        for name, service in services.items():
            print(f"{name}: {service.description}")
            for key, help_text in service.knobs.items():
                print(f"  --set {name}.{key}={json.dumps(getattr(service, key))}")
                print(textwrap.fill(help_text, 96, initial_indent="      ", subsequent_indent="      "))
        return 0
    return asyncio.run(_serve(services))


async def _serve(services: dict[str, FakeService]) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started: list[FakeService] = []
    try:
        env: dict[str, str] = {}
        for service in services.values():
            env.update(await service.start())
            started.append(service)
        print(f"agentsession fakes: serving {', '.join(f'{n} ({s.description})' for n, s in services.items())} "
              "on loopback; Ctrl-C stops them")
        print("paste into the shell that runs your agent:\n")
        print("\n".join(f"export {key}={shlex.quote(value)}" for key, value in env.items()))
        print("\nscript knobs (change with --set NAME.KNOB=VALUE; `agentsession fakes --list` says what each does):")
        for name, service in services.items():
            print("\n".join(f"  {name}.{key} = {json.dumps(value)}" for key, value in service.values().items()))
        print("serving", flush=True)
        await stop.wait()
    finally:
        for service in reversed(started):
            await service.stop()
    return 0


# ---------------------------------------------------------------------- doctor


@dataclass
class Check:
    """One thing the doctor looked at. ``needed_by``: the modes that cannot run without it (None: every mode)."""

    label: str
    ok: bool
    detail: str
    fix: str = ""
    needed_by: frozenset[str] | None = frozenset()

    def status(self, mode: str | None) -> str:
        """``ok``, ``FAIL`` (the chosen mode, or every mode, needs it) or ``warn``."""
        if self.ok:
            return "ok"
        if self.needed_by is None or (mode is not None and mode in self.needed_by):
            return "FAIL"
        return "warn"


def run_checks(mode: str | None) -> list[Check]:
    """Every check, in display order: Python, the plugins (a broken one stops every mode), the modes (with
    ``mode``: that mode's own ``TransportMode.problems()`` only; core knows nothing of what a plugin's mode
    needs), the provider keys."""
    checks = [
        Check("python", sys.version_info >= (3, 11), sys.version.split()[0], "use Python 3.11 or newer", None),
        Check("agentsession", True, f"{_dist_version('agentsession') or __version__} (core)"),
    ]
    rows = inspect_plugins()
    for row in rows[1:]:
        checks += [c for c in _plugin_checks(row)  # with a mode: the requirements of that mode's plugin, or missing
                   if mode is None or not c.label.startswith("  ") or not c.ok or mode in (c.needed_by or ())]
    checks += _modes_checks(mode)
    for row in rows:
        names = PROVIDER_KEYS.get(row.distribution or "")
        if names and row.status != "blocked":
            secret = env_secret(*names)
            checks.append(
                Check(f"{names[0]}", secret is not None,
                      f"set ({mask(secret)}) for {row.distribution}" if secret else f"not set; {row.distribution} needs it",
                      f"export {names[0]}=... (or pass the key to the model / RoomOptions in code)")
            )
    return checks


def _plugin_checks(row: PluginRow) -> list[Check]:
    who = f"plugin {row.name!r} ({row.distribution or '?'} {row.version or '?'})"
    if row.status == "blocked":
        return [Check(f"plugin {row.name}", True, f"{who} is blocked by {DISABLE_ENV}")]
    if row.status == "broken":
        return [Check(f"plugin {row.name}", False, f"{who} does not load: {row.error}",
                      f"install what it is missing, `pip uninstall {row.distribution or row.name}`, or export "
                      f"{DISABLE_ENV}={row.name} (a broken plugin stops every session at start())", None)]
    provides = [f"modes {', '.join(row.transports)}"] if row.transports else []
    provides += [f"models {', '.join(row.models)}"] if row.models else []
    checks = [Check(f"plugin {row.name}", True, f"{who} loads" + (f"; {'; '.join(provides)}" if provides else ""))]
    for requirement in _requirements(row.distribution):
        version = _dist_version(requirement)
        checks.append(
            Check(f"  {requirement}", version is not None,
                  f"{version} (for {row.distribution})" if version else f"not installed; {row.distribution} needs it",
                  f"pip install {requirement}", frozenset(row.transports))
        )
    return checks


def _modes_checks(mode: str | None) -> list[Check]:
    from ._modes import transport_modes

    try:
        modes = transport_modes()
    except PluginError:
        return [Check("modes", False, "unknown: a plugin is broken (see above)", "", None)]
    names = ", ".join(sorted(modes))
    if mode is not None and mode not in modes:
        dist = MODE_DISTRIBUTIONS.get(mode)
        return [Check("modes", False, f"no installed plugin provides mode {mode!r} (installed: {names})",
                      f"pip install {dist}" if dist else "install the plugin that provides it", frozenset({mode}))]
    checks = [Check("modes", True, names)]
    for name in sorted(modes) if mode is None else [mode]:
        try:
            problems = modes[name].problems()
        except Exception as exc:  # a plugin's check must not take the doctor down
            problems = [(f"its check failed: {type(exc).__name__}: {exc}", f"report it to {modes[name].provider}")]
        checks += [Check(f"mode {name}", False, problem, fix, frozenset({name})) for problem, fix in problems]
        if mode is not None and not problems:
            checks.append(Check(f"mode {name}", True, f"has what it needs (checked by {modes[name].provider})"))
    return checks


def _doctor(mode: str | None, as_json: bool) -> int:
    checks = run_checks(mode)
    failed = [c for c in checks if c.status(mode) == "FAIL"]
    if as_json:
        print(json.dumps({"mode": mode, "ok": not failed,
                          "checks": [{**asdict(c), "needed_by": None if c.needed_by is None else sorted(c.needed_by),
                                      "status": c.status(mode)} for c in checks]}, indent=2))
        return 1 if failed else 0
    print(f"agentsession doctor{f' (mode: {mode})' if mode else ''}")
    for c in checks:
        status = c.status(mode)
        print(f"  {status:<5} {c.label}: {c.detail}")
        if status != "ok" and c.fix:
            print(f"        fix: {c.fix}")
    warned = sum(c.status(mode) == "warn" for c in checks)
    if failed:
        what = f"mode {mode!r}" if mode else "every mode"
        print(f"{len(failed)} problem(s) stop {what}; {warned} warning(s)")
        return 1
    print(f"all set{f' for mode {mode!r}' if mode else ''}; {warned} warning(s)"
          + ("" if mode else " (pass --mode MODE to check what that mode needs)"))
    return 0


def _requirements(distribution: str | None) -> list[str]:
    """The names of ``distribution``'s unconditional requirements, other than agentsession itself."""
    if distribution is None:
        return []
    try:
        requires = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        return []
    names: list[str] = []
    for requirement in requires:
        if "extra ==" in requirement.replace('"', "").replace("'", ""):
            continue
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
        if match and match.group(0).lower() != "agentsession" and match.group(0) not in names:
            names.append(match.group(0))
    return names


def _dist_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------------- report


def _report(given: list[Path], plot: Path | None, as_json: bool) -> int:
    recordings: list[Recording] = []
    code = 0
    paths: list[Path] = []
    for path in given:  # a folder stands for the recordings in it (the recorder's folder, say)
        if path.is_dir() and (path / "cassette.json").is_file():  # a cassette: the recording it carries
            paths.append(path / "recording.jsonl")
        elif path.is_dir():
            found = sorted(path.glob("*.jsonl"))
            if not found:
                print(f"error: {path} holds no recordings (*.jsonl files; record with AGENTSESSION_RECORD=1)",
                      file=sys.stderr)
                code = 2
            paths += found
        else:
            paths.append(path)
    for path in paths:
        try:
            rec = Recording.load(path)
        except OSError as exc:
            print(f"error: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
            code = 2
            continue
        except UnicodeDecodeError:
            print(f"error: {path} is not a session recording (not text; a recording is the .jsonl file "
                  "agentsession-recorder writes)", file=sys.stderr)
            code = 2
            continue
        if not rec.records:
            print(f"error: {path} holds no recording (no JSON lines with 'event' and 't')", file=sys.stderr)
            code = 2
            continue
        recordings.append(rec)
    if not recordings:
        return code
    if as_json:
        summaries = [rec.summary() for rec in recordings]
        print(json.dumps(summaries[0] if len(paths) == 1 else
                         {"recordings": summaries, "latency": latency_stats(recordings)}, indent=2))
    else:
        print("\n\n".join(render_text(rec) for rec in recordings))
        if len(recordings) > 1:
            print(f"\nover all {len(recordings)} recordings:")
            print("\n".join(render_latency(latency_stats(recordings))))
    if plot is not None:
        for rec in recordings:
            target = plot if len(paths) == 1 else plot.with_name(f"{plot.stem}-{rec.path.stem}{plot.suffix or '.png'}")
            try:
                plot_timeline(rec, target)
            except ImportError:
                print("error: --plot needs matplotlib: pip install 'agentsession[plot]'", file=sys.stderr)
                return 2
            if not as_json:
                print(f"timeline written to {target}")
    return code
