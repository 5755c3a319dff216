"""What the study page does to the database: participants, their next item, their votes.

One `StudyStore` serves all requests; each call opens its own connection (WAL: readers never
block the writer, writers queue on the lock), and a vote is one IMMEDIATE transaction, so
concurrent participants cannot lose or duplicate a vote and a vote answered is on disk.
"""

from __future__ import annotations

import os
import random
import secrets
import sqlite3
from pathlib import Path
from typing import Any

from .db import DB_NAME, StudyError, connect, transaction
from .design import now

CHOICES = ("left", "right")
MAX_RESPONSE_MS = 24 * 3600 * 1000


class RequestError(StudyError):
    """A request the study cannot take; `status` is its HTTP status."""

    status = 400


class UnknownParticipant(RequestError):
    status = 404


class AlreadyVoted(RequestError):
    status = 409


class StudyStore:
    """The study at STUDY (a folder made by `segan study create`)."""

    def __init__(self, study_dir: str | os.PathLike):
        self.folder = Path(study_dir)
        self.db_path = self.folder / DB_NAME
        con = connect(self.db_path)  # migrates, or refuses another version, once at start
        try:
            study = con.execute("SELECT * FROM studies").fetchone()
            if study is None:
                raise StudyError(f"{self.db_path} holds no study design")
            self.question = study["question"]
            self.items = {r["id"]: dict(r) for r in con.execute("SELECT * FROM items")}
        finally:
            con.close()
        self.item_ids = sorted(self.items)

    def _connect(self) -> sqlite3.Connection:
        return connect(self.db_path, upgrade=False)

    def order(self, order_seed: int) -> list[int]:
        """A participant's item order: the items shuffled by their seed."""
        return random.Random(order_seed).sample(self.item_ids, len(self.item_ids))

    def new_participant(self) -> str:
        """A new participant; returns their random token (nothing else is stored)."""
        token = secrets.token_urlsafe(18)
        con = self._connect()
        try:
            with transaction(con):
                con.execute("INSERT INTO participants (token, order_seed, created_at) "
                            "VALUES (?, ?, ?)", (token, secrets.randbits(31), now()))
        finally:
            con.close()
        return token

    def _participant(self, con: sqlite3.Connection, token: Any) -> sqlite3.Row:
        if not isinstance(token, str) or not token:
            raise RequestError("missing participant token")
        row = con.execute("SELECT * FROM participants WHERE token = ?", (token,)).fetchone()
        if row is None:
            raise UnknownParticipant("unknown participant token: start again from the page")
        return row

    def _state(self, con: sqlite3.Connection, participant: sqlite3.Row) -> dict[str, Any]:
        answered = {r[0] for r in con.execute(
            "SELECT item_id FROM votes WHERE participant_id = ?", (participant["id"],))}
        item = next((i for i in self.order(participant["order_seed"]) if i not in answered),
                    None)
        shown = None
        if item is not None:
            it = self.items[item]
            shown = {"id": item, "left": f"images/{it['left_image']}",
                     "right": f"images/{it['right_image']}",
                     "input": f"images/{it['input_image']}"}
        return {"question": self.question, "done": len(answered), "total": len(self.items),
                "item": shown}

    def state(self, token: Any) -> dict[str, Any]:
        """{"question", "done", "total", "item": {"id", "left", "right", "input"} or None}:
        the participant's progress and next item (no method names)."""
        con = self._connect()
        try:
            return self._state(con, self._participant(con, token))
        finally:
            con.close()

    def vote(self, token: Any, item_id: Any, choice: Any, response_ms: Any = None
             ) -> dict[str, Any]:
        """Record one vote (one transaction) and return the participant's new state.
        Raises RequestError (400) for a malformed vote, UnknownParticipant (404), and
        AlreadyVoted (409) for a second vote on the same item (nothing is recorded)."""
        if choice not in CHOICES:
            raise RequestError(f"choice must be 'left' or 'right', got {choice!r}")
        try:
            item_id = int(item_id)
        except (TypeError, ValueError):
            raise RequestError(f"item must be an item id, got {item_id!r}") from None
        if item_id not in self.items:
            raise RequestError(f"no item {item_id} in this study")
        if response_ms is not None:
            try:
                response_ms = int(response_ms)
            except (TypeError, ValueError):
                raise RequestError(f"response_ms must be an integer, got {response_ms!r}"
                                   ) from None
            if not 0 <= response_ms <= MAX_RESPONSE_MS:
                raise RequestError(f"response_ms out of range: {response_ms}")
        con = self._connect()
        try:
            with transaction(con):
                participant = self._participant(con, token)
                cur = con.execute(
                    "INSERT INTO votes (participant_id, item_id, choice, created_at, "
                    "response_ms) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (participant_id, item_id) DO NOTHING",
                    (participant["id"], item_id, choice, now(), response_ms))
                if cur.rowcount == 0:
                    raise AlreadyVoted(f"this participant has voted on item {item_id} already")
                state = self._state(con, participant)
                if state["item"] is None and participant["finished_at"] is None:
                    con.execute("UPDATE participants SET finished_at = ? WHERE id = ?",
                                (now(), participant["id"]))
            return state
        finally:
            con.close()
