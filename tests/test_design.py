"""The package matches ../shared/DESIGN.md: its rooms, who imports which library, and how big a module may grow.

Like sqlite-utils' test_docs.py, the documentation is read and compared with the code, so that one cannot drift
from the other unnoticed. DESIGN.md sits beside the repository (read-only); the room tests skip without it.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

from .conftest import REPO

PACKAGE = REPO / "stormwatch"
DESIGN = REPO.parent / "shared" / "DESIGN.md"
# Rooms DESIGN.md lists that later issues build. A room here may be missing; once it is built, take it out.
AWAITING: dict[str, str] = {}
MAX_MODULE_LINES = 700
# Rooms a room must not import beyond what its "never touches" cell names. The report shows storm intelligence,
# never the other way round: intel/ once imported report/'s naming rules, the one cycle between rooms (issue 19).
NEVER_IMPORTS_TOO: dict[str, tuple[str, ...]] = {"intel/": ("report/",)}
# Each third-party library and the one room that may import it (a module path, or a package ending in "/").
LIBRARY_ROOMS = {
    "tweepy": ("sources/x.py",),
    "mastodon": ("sources/mastodon.py",),
    # The simulator's own servers stand in for the outside world: they may speak these protocols too.
    "atproto": ("sources/bluesky.py", "simulator/"),
    "atproto_client": ("sources/bluesky.py", "simulator/"),
    "atproto_core": ("sources/bluesky.py", "simulator/"),
    "websockets": ("sources/bluesky.py", "simulator/"),
    "apscheduler": ("scheduler.py",),
    "matplotlib": ("report/charts.py",),
    "rich": ("dashboard.py", "console.py"),
    "click": ("cli.py",),
    "sqlite_utils": ("store/",),
    "datasketch": ("intel/copypaste.py",),
    "numpy": ("intel/copypaste.py",),
    # The live page (web/): the ASGI framework, its server, its templates and the terminal's QR code.
    "starlette": ("web/",),
    "uvicorn": ("web/",),
    "jinja2": ("web/",),
    "segno": ("web/",),
}
# The room that must import each library (so that a rule above never outlives the code it guards).
LIBRARY_HOMES = {"tweepy": "sources/x.py", "mastodon": "sources/mastodon.py", "atproto_client": "sources/bluesky.py",
                 "websockets": "sources/bluesky.py", "apscheduler": "scheduler.py", "matplotlib": "report/charts.py",
                 "rich": "dashboard.py", "click": "cli.py", "sqlite_utils": "store/",
                 "datasketch": "intel/copypaste.py", "starlette": "web/", "uvicorn": "web/", "jinja2": "web/",
                 "segno": "web/"}


def design_rows() -> list[tuple[tuple[str, ...], str]]:
    """The rows of DESIGN.md's "Rooms" table: the rooms of the first column (`cli.py`, `sources/`, ...) and the
    row's "never touches" cell."""
    if not DESIGN.exists():
        pytest.skip(f"{DESIGN} is not here (it lives beside the repository, not in it)")
    text = DESIGN.read_text(encoding="utf-8")
    section = text.split("## Rooms", 1)[1].split("\n## ", 1)[0]
    rows: list[tuple[tuple[str, ...], str]] = []
    for line in section.splitlines():
        cells = line.split("|")
        if len(cells) < 5 or not cells[1].strip().startswith("`"):
            continue  # prose, the header row or the separator row
        rows.append((tuple(re.findall(r"`([^`]+)`", cells[1])), cells[3].strip()))
    assert rows, f"no rooms found in the Rooms table of {DESIGN}"
    return rows


def design_rooms() -> set[str]:
    """The rooms DESIGN.md's "Rooms" table lists in its first column (`cli.py`, `sources/`, ...)."""
    return {room for rooms, _ in design_rows() for room in rooms}


def never_imported() -> dict[str, set[str]]:
    """For each room, the rooms it must not import: those its "never touches" cell names (`metrics, report`), and
    `NEVER_IMPORTS_TOO`."""
    rooms = design_rooms()
    forbidden: dict[str, set[str]] = {}
    for named, never in design_rows():
        words = {word.strip() for word in never.split(",")}
        banned = {room for word in words for room in (f"{word}/", f"{word}.py") if room in rooms}
        for room in named:
            forbidden.setdefault(room, set()).update(banned)
    for room, more in NEVER_IMPORTS_TOO.items():
        forbidden.setdefault(room, set()).update(more)
    return forbidden


def package_rooms() -> set[str]:
    """The package's top-level modules (`cli.py`) and packages (`sources/`)."""
    rooms = {path.name for path in PACKAGE.glob("*.py")}
    rooms |= {f"{path.name}/" for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    return rooms


def modules() -> list[Path]:
    """Every module of the package."""
    return sorted(PACKAGE.rglob("*.py"))


def room_path(path: Path) -> str:
    """A module's path inside the package, `sources/x.py`."""
    return path.relative_to(PACKAGE).as_posix()


@functools.cache
def imported_modules(path: Path) -> frozenset[str]:
    """The absolute names of every module `path` imports, anywhere in it (relative imports resolved)."""
    package = ["stormwatch", *path.relative_to(PACKAGE).parent.parts]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            names.add(module)
            if node.module is None:  # `from . import texts`: the names are modules themselves
                names.update(f"{module}.{alias.name}" for alias in node.names)
    return frozenset(names)


def room_of(module: str) -> str | None:
    """The room an imported module belongs to (`stormwatch.report.names` -> `report/`), None outside the package."""
    parts = module.split(".")
    if parts[0] != "stormwatch" or len(parts) < 2:
        return None
    return f"{parts[1]}/" if (PACKAGE / parts[1]).is_dir() else f"{parts[1]}.py"


def in_room(module: str, rooms: tuple[str, ...]) -> bool:
    """Whether a module path (`store/database.py`) belongs to one of `rooms` (modules or packages)."""
    return any(module == room or (room.endswith("/") and module.startswith(room)) for room in rooms)


# --- rooms --------------------------------------------------------------------------------------


def test_every_room_the_design_lists_exists() -> None:
    missing = design_rooms() - package_rooms() - set(AWAITING)
    assert not missing, f"DESIGN.md lists rooms stormwatch/ does not have: {sorted(missing)}"


def test_the_package_has_no_room_the_design_does_not_list() -> None:
    unlisted = package_rooms() - design_rooms()
    assert not unlisted, (f"stormwatch/ has rooms DESIGN.md does not list: {sorted(unlisted)} "
                          "(a new top-level room is a design change: add it to the Rooms table)")


@pytest.mark.parametrize("room", sorted(AWAITING))
def test_a_room_awaiting_a_later_issue_is_listed_and_not_built_yet(room: str) -> None:
    assert room in design_rooms(), f"{room} is awaited ({AWAITING[room]}) but DESIGN.md no longer lists it"
    assert room not in package_rooms(), f"{room} is built now: take it out of AWAITING ({AWAITING[room]})"


# --- imports ------------------------------------------------------------------------------------


def test_each_library_is_imported_only_in_its_room() -> None:
    strays = []
    for path in modules():
        module = room_path(path)
        for name in imported_modules(path):
            allowed = LIBRARY_ROOMS.get(name.split(".", 1)[0])
            if allowed is not None and not in_room(module, allowed):
                strays.append(f"{module} imports {name} (only {', '.join(allowed)} may)")
    assert not strays, "\n".join(strays)


@pytest.mark.parametrize("library", sorted(LIBRARY_HOMES))
def test_each_library_has_its_importer(library: str) -> None:
    home = LIBRARY_HOMES[library]
    importers = [room_path(path) for path in modules()
                 if any(name.split(".", 1)[0] == library for name in imported_modules(path))]
    assert any(in_room(module, (home,)) for module in importers), f"{home} no longer imports {library}"


def test_the_simulator_imports_nothing_of_stormwatch_but_through_its_wiring() -> None:
    reaching_out = []
    for path in (PACKAGE / "simulator").rglob("*.py"):
        if path.name == "wiring.py":
            continue  # builds the simulated platforms from a stormwatch config, for the demo and `simulate`
        for name in imported_modules(path):
            if (name == "stormwatch" or name.startswith("stormwatch.")) and not name.startswith("stormwatch.simulator"):
                reaching_out.append(f"{room_path(path)} imports {name}")
    assert not reaching_out, "\n".join(reaching_out)


def test_no_room_imports_a_room_it_never_touches() -> None:
    forbidden = never_imported()
    assert forbidden["privacy/"] >= {"metrics/", "report/"}, "the Rooms table's \"never touches\" cells were misread"
    breaches = []
    for path in modules():
        module = room_path(path)
        room = module.split("/", 1)[0] + "/" if "/" in module else module
        for name in sorted(imported_modules(path)):
            target = room_of(name)
            if target in forbidden.get(room, ()):
                breaches.append(f"{module} imports {name}: {room} never touches {target}")
    assert not breaches, "\n".join(breaches)


def test_imports_are_read_with_relative_ones_resolved() -> None:
    # the checks above are only as good as this reading
    assert "stormwatch.simulator.spec" in imported_modules(PACKAGE / "simulator" / "population.py")
    assert "stormwatch.config" in imported_modules(PACKAGE / "sources" / "x.py")
    assert "tweepy" in imported_modules(PACKAGE / "sources" / "x.py")
    # imports inside functions count: report/__init__.py imports its charts only when a report is written
    assert "stormwatch.report.charts" in imported_modules(PACKAGE / "report" / "__init__.py")
    assert room_of("stormwatch.privacy.naming") == "privacy/" and room_of("stormwatch.alerts") == "alerts.py"


# --- size ---------------------------------------------------------------------------------------


def test_no_module_grows_past_700_lines() -> None:
    sizes = {room_path(path): len(path.read_text(encoding="utf-8").splitlines()) for path in modules()}
    too_big = {module: lines for module, lines in sizes.items() if lines > MAX_MODULE_LINES}
    assert not too_big, f"modules over {MAX_MODULE_LINES} lines (two concerns each?): {too_big}"
