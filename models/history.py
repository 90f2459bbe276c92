"""The append-only history of a model key, and its champion/challenger aliases.

history.jsonl gets one JSON line per action (register, promote, rollback, challenger, reject,
delete, import) with time, actor and reason. Appends are fsynced; a line torn by a crash is
skipped when reading.

aliases.json is small and replaced atomically, so a reader sees either the old or the new
champion, never a partial file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from models.atomic import append_line, write_atomic
from models.registry_errors import RegistryError
from models.versions import dumps, utc_now

ACTIONS = ("register", "promote", "rollback", "challenger", "reject", "delete", "import")


@dataclass(frozen=True)
class HistoryEvent:
    """One line of history.jsonl. ``previous`` is the alias value the action replaced."""

    ts: str
    action: str
    model: str
    key: str | None
    version: int | None
    previous: int | None
    actor: str
    reason: str
    # register/import: sha256 of the version's metadata.json, which names every file by its
    # checksum, so one version's content is recognised in another store or an archive.
    digest: str | None = None

    @classmethod
    def now(
        cls,
        action: str,
        model: str,
        key: str | None,
        version: int | None,
        *,
        actor: str,
        reason: str,
        previous: int | None = None,
        digest: str | None = None,
    ) -> HistoryEvent:
        if action not in ACTIONS:
            raise ValueError(f"unknown history action {action!r}")
        return cls(utc_now(), action, model, key, version, previous, actor, reason, digest)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.digest is None:
            del data["digest"]  # lines of actions that concern no version's content
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HistoryEvent:
        version, previous = data.get("version"), data.get("previous")
        return cls(
            ts=str(data["ts"]),
            action=str(data["action"]),
            model=str(data["model"]),
            key=data.get("key"),
            version=None if version is None else int(version),
            previous=None if previous is None else int(previous),
            actor=str(data.get("actor", "")),
            reason=str(data.get("reason", "")),
            digest=data.get("digest"),
        )


def append_event(path: Path, event: HistoryEvent) -> None:
    line = json.dumps(event.to_dict(), sort_keys=True).encode() + b"\n"
    append_line(path, line, "history entry")


def read_events(path: Path) -> list[HistoryEvent]:
    """All events, oldest first.

    A line that does not parse was torn by a crash mid-append (appends that fail cleanly are
    truncated away); it is skipped, and the next append starts on a fresh line.
    """
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise RegistryError(f"cannot read history {path}: {exc.strerror or exc}") from exc
    events = []
    for line in lines:
        try:
            events.append(HistoryEvent.from_dict(json.loads(line)))
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
    return events


def champion_stack(events: list[HistoryEvent]) -> list[int]:
    """Champions in the order they took over, with rolled-back ones popped off the top."""
    stack: list[int] = []
    for event in events:
        if event.version is None:
            continue
        if event.action == "promote" and (not stack or stack[-1] != event.version):
            stack.append(event.version)
        elif event.action == "rollback":
            while stack and stack[-1] != event.version:
                stack.pop()
            if not stack:
                stack.append(event.version)
    return stack


# A champion alias is never cleared once set: none while the history records one means
# aliases.json was lost or could not be read, never a key that is new.
LOST_CHAMPION = (
    "{label} has no champion alias, though its history records v{version} as champion "
    "(aliases.json lost or unreadable); restore the champion with `driftline models promote`"
)


def lost_champion(champion: int | None, history: Path) -> int | None:
    """The champion the history at ``history`` records when the alias ``champion`` is None."""
    if champion is not None:
        return None
    stack = champion_stack(read_events(history))
    return stack[-1] if stack else None


def highest_version(events: list[HistoryEvent]) -> int:
    """Largest version number the history mentions (0 if none), so numbers are never reused."""
    return max((e.version for e in events if e.version is not None), default=0)


@dataclass(frozen=True)
class Aliases:
    """Contents of aliases.json."""

    champion: int | None = None
    challenger: int | None = None
    updated_at: str | None = None
    # How the champion became the champion ("promote", "rollback"): the history line a
    # writer killed before appending it is recovered from this.
    champion_by: str | None = None

    def pointing_at(self, version: int) -> list[str]:
        return [
            n
            for n, v in (("champion", self.champion), ("challenger", self.challenger))
            if v == version
        ]


def read_aliases(path: Path) -> Aliases:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return Aliases()
    except (OSError, ValueError) as exc:
        raise RegistryError(f"cannot read aliases {path}: {exc}") from exc
    fields = ("champion", "challenger", "updated_at", "champion_by")
    return Aliases(*(data.get(name) for name in fields))


def write_aliases(
    path: Path,
    champion: int | None,
    challenger: int | None,
    champion_by: str | None = None,
    *,
    previous: Aliases | None = None,
) -> Aliases:
    """Replace aliases.json. ``champion_by``: the action that made ``champion`` the
    champion now; kept from ``previous`` when the champion does not change."""
    if champion_by is None and previous is not None and previous.champion == champion:
        champion_by = previous.champion_by
    aliases = Aliases(champion, challenger, utc_now(), champion_by)
    write_atomic(path, dumps(asdict(aliases)), "aliases")
    return aliases
