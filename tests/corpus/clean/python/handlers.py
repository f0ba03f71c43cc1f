"""HTTP handlers for the notes service."""

import sqlite3
from http import HTTPStatus

from flask import Blueprint, abort, g, jsonify, request

bp = Blueprint("notes", __name__, url_prefix="/notes")

PAGE_SIZE = 50
SORT_COLUMNS = {"created": "created_at", "title": "title"}


def get_db() -> sqlite3.Connection:
    """Return the request's database connection, opening it on first use."""
    if "db" not in g:
        g.db = sqlite3.connect("notes.db")
        g.db.row_factory = sqlite3.Row
    return g.db


@bp.get("/")
def list_notes():
    """List notes, newest first, with simple paging."""
    page = request.args.get("page", default=1, type=int)
    sort = SORT_COLUMNS.get(request.args.get("sort", "created"), "created_at")
    offset = (page - 1) * PAGE_SIZE
    rows = get_db().execute(
        "SELECT id, title, created_at FROM notes ORDER BY ? DESC LIMIT ? OFFSET ?",
        (sort, PAGE_SIZE, offset),
    ).fetchall()
    return jsonify([dict(row) for row in rows])


@bp.get("/<int:note_id>")
def get_note(note_id: int):
    """Return one note or 404."""
    row = get_db().execute("SELECT * FROM notes WHERE id = ?", (note_id,)).fetchone()
    if row is None:
        abort(HTTPStatus.NOT_FOUND)
    return jsonify(dict(row))


@bp.post("/")
def create_note():
    """Create a note from a JSON body with `title` and `body`."""
    payload = request.get_json(silent=True) or {}
    title = payload.get("title")
    if not isinstance(title, str) or not title.strip():
        return jsonify(error="title is required"), HTTPStatus.BAD_REQUEST
    db = get_db()
    with db:
        cur = db.execute(
            "INSERT INTO notes (title, body) VALUES (?, ?)",
            (title.strip(), payload.get("body", "")),
        )
    return jsonify(id=cur.lastrowid), HTTPStatus.CREATED


@bp.delete("/<int:note_id>")
def delete_note(note_id: int):
    """Delete a note; deleting a missing note is not an error."""
    db = get_db()
    with db:
        db.execute("DELETE FROM notes WHERE id = ?", (note_id,))
    return "", HTTPStatus.NO_CONTENT


@bp.teardown_app_request
def close_db(exc):
    db = g.pop("db", None)
    if db is not None:
        db.close()
