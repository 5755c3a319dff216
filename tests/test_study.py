"""`segan study` (Table 3's preference study): the evaluation's painted crops, the study design,
the database schema and its migrations, the vote rules, the real server under 20 concurrent
participants, a SIGKILLed server restarted, malformed posts, a port in use, the report on a
known answer, and the page answered with the keyboard in headless Chromium (playwright)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segan.cli import main
from segan.study import (
    SCHEMA_VERSION,
    StudyError,
    StudyStore,
    connect,
    create_study,
    migrate,
    study_report,
    wilson_interval,
    write_report,
)
from segan.study.db import APPLICATION_ID, DB_NAME
from segan.study.design import BROKEN, GROUND_TRUTH, broken_painting
from segan.study.store import AlreadyVoted, RequestError, UnknownParticipant

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BASELINES = ["nearest_neighbour", "oracle"]
PAIRS, CHECKS = 3, 2
N_ITEMS = PAIRS * len(BASELINES) + CHECKS


@pytest.fixture(scope="module")
def evaluated(tiny_data, tiny_run, tiny_cache_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("study_eval") / "eval"
    rc = main(["evaluate", "--checkpoint", str(tiny_run), "--data", str(tiny_data),
               "--out", str(out), "--method", "segan", "--method", "nearest_neighbour",
               "--method", "oracle", "--method", "visible_as_full", "--save-crops", "5",
               "--best-worst", "0", "--cache-dir", str(tiny_cache_dir), "--device", "cpu",
               "--quiet"])
    assert rc == 0
    return out


@pytest.fixture
def study(evaluated, tmp_path) -> Path:
    create_study(evaluated, tmp_path / "study", baselines=BASELINES, pairs=PAIRS,
                 checks=CHECKS, seed=1)
    return tmp_path / "study"


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


# ----------------------------------------------------------------------------- crops, design


def test_evaluate_saves_the_painted_crops(evaluated):
    results = json.loads((evaluated / "results.json").read_text())
    crops = evaluated / "crops"
    index = json.loads((crops / "index.json").read_text())
    painting = ["segan", "nearest_neighbour", "oracle"]  # visible_as_full does not paint
    assert results["crops"] == {"folder": "crops", "count": 5, "methods": painting}
    assert index["methods"] == painting and len(index["objects"]) == 5
    assert not (crops / "visible_as_full").exists()
    assert "--save-crops 5" in results["command"]
    for obj in index["objects"]:
        assert obj["key"] == f"{obj['image_id']}_{obj['ann_id']}"
        assert 0 < obj["occlusion_rate"] < 1  # occluded objects only
        f = f"{obj['key']}.png"
        shapes = {_png(crops / d / f).shape for d in ("input", "target", *painting)}
        assert shapes == {(64, 64, 3)}  # configs/tiny.yaml crop_size
        # the oracle paints the target: its crop is the target crop, bit for bit
        assert np.array_equal(_png(crops / "oracle" / f), _png(crops / "target" / f))
        assert not np.array_equal(_png(crops / "segan" / f), _png(crops / "target" / f))


def test_create_design(study, evaluated, tmp_path):
    con = connect(study)
    items = [dict(r) for r in con.execute("SELECT * FROM items ORDER BY id")]
    st = dict(con.execute("SELECT * FROM studies").fetchone())
    con.close()
    assert len(items) == N_ITEMS and json.loads(st["baselines"]) == BASELINES
    pairs = [i for i in items if i["kind"] == "pair"]
    checks = [i for i in items if i["kind"] == "check"]
    assert len(checks) == CHECKS
    for b in BASELINES:  # the same objects for every baseline
        assert sorted(i["object_key"] for i in pairs if i["baseline"] == b) == sorted(
            i["object_key"] for i in pairs if i["baseline"] == BASELINES[0])
    for i in pairs:
        assert {i["left_method"], i["right_method"]} == {"segan", i["baseline"]}
    for i in checks:
        assert {i["left_method"], i["right_method"]} == {GROUND_TRUTH, BROKEN}
    assert {i["left_method"] == "segan" for i in pairs} == {True, False}  # both sides used
    for i in items:  # content-hash names: the address does not tell the method
        for f in (i["left_image"], i["right_image"], i["input_image"]):
            assert (study / "images" / f).is_file() and len(f) == 24
        check_truth = i["left_image"] if i["left_method"] == GROUND_TRUTH else i["right_image"]
        if i["kind"] == "check":
            target = evaluated / "crops" / "target" / f"{i['object_key']}.png"
            assert np.array_equal(_png(study / "images" / check_truth), _png(target))
    # the same seed, the same design
    create_study(evaluated, tmp_path / "again", baselines=BASELINES, pairs=PAIRS,
                 checks=CHECKS, seed=1)
    con = connect(tmp_path / "again")
    again = [dict(r) for r in con.execute("SELECT * FROM items ORDER BY id")]
    con.close()
    assert [{k: v for k, v in i.items() if k != "study_id"} for i in again] == [
        {k: v for k, v in i.items() if k != "study_id"} for i in items]


def test_broken_painting_is_broken():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    broken = broken_painting(target, rng)
    assert broken.shape == target.shape
    assert np.abs(broken.astype(int) - target).mean() > 50
    # the same pixel values (blocks moved), colours inverted
    assert np.array_equal(np.sort((255 - broken).ravel()), np.sort(target.ravel()))


def test_create_refuses_bad_input(evaluated, tmp_path, capsys):
    with pytest.raises(StudyError, match="no results file"):
        create_study(tmp_path, tmp_path / "s1")
    no_crops = tmp_path / "no_crops"
    no_crops.mkdir()
    res = json.loads((evaluated / "results.json").read_text())
    (no_crops / "results.json").write_text(json.dumps({**res, "crops": None}))
    with pytest.raises(StudyError, match="no painted crops: re-run `segan evaluate` with "
                       "--save-crops"):
        create_study(no_crops, tmp_path / "s2")
    (no_crops / "results.json").write_text("{not json")
    with pytest.raises(StudyError, match="not JSON"):
        create_study(no_crops, tmp_path / "s3")
    with pytest.raises(StudyError, match="baseline 'pix2pix' has no painted crops"):
        create_study(evaluated, tmp_path / "s4", baselines=["segan", "pix2pix"])
    with pytest.raises(StudyError, match="saved crops of 5 objects"):
        create_study(evaluated, tmp_path / "s5", pairs=6)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        create_study(evaluated, tmp_path / "full", pairs=2)
    assert main(["study", "create", "--eval", str(tmp_path), "--out",
                 str(tmp_path / "s6")]) == 2
    assert "segan study: error: " in capsys.readouterr().err
    # the CLI: segan listed among --methods is ours, not a baseline
    assert main(["study", "create", "--eval", str(evaluated), "--methods", "segan", "oracle",
                 "--pairs", "2", "--checks", "1", "--out", str(tmp_path / "s7")]) == 0
    assert json.loads(capsys.readouterr().out)["baselines"] == ["oracle"]


# ----------------------------------------------------------------------------- the database


def test_schema_and_migrations(study, tmp_path):
    con = connect(study)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"studies", "items", "participants", "votes"}
    con.close()

    # a version-1 database with a vote: migrated to 2 on open, the vote kept
    old = tmp_path / "v1.sqlite"
    raw = sqlite3.connect(old, isolation_level=None)
    assert migrate(raw, target=1) == 0
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 1
    raw.execute("INSERT INTO studies VALUES (1, 't', 'e', 'h', 'segan', '[\"oracle\"]', 1, 0, "
                "0, 'q')")
    raw.execute("INSERT INTO items VALUES (1, 1, 'pair', 'k', 'oracle', 'segan', 'oracle', "
                "'a.png', 'b.png', 'c.png')")
    raw.execute("INSERT INTO participants VALUES (1, 'tok', 7, 't')")
    raw.execute("INSERT INTO votes VALUES (1, 1, 1, 'left', 't')")
    with pytest.raises(sqlite3.OperationalError):  # no response_ms in version 1
        raw.execute("SELECT response_ms FROM votes")
    raw.close()
    with pytest.raises(StudyError, match="has schema version 1, this segan reads 2"):
        connect(old, upgrade=False)
    con = connect(old)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    assert [tuple(r) for r in con.execute("SELECT item_id, choice, response_ms FROM votes")] == [
        (1, "left", None)]
    assert con.execute("SELECT finished_at FROM participants").fetchone()[0] is None
    with pytest.raises(sqlite3.IntegrityError):  # one vote per participant and item
        con.execute("INSERT INTO votes (participant_id, item_id, choice, created_at) "
                    "VALUES (1, 1, 'right', 't')")
    with pytest.raises(sqlite3.IntegrityError):  # choices are left or right
        con.execute("INSERT INTO votes (participant_id, item_id, choice, created_at) "
                    "VALUES (1, 1, 'up', 't')")
    con.close()

    # a newer schema, another SQLite database, not a database at all
    con = sqlite3.connect(old)
    con.execute("PRAGMA user_version = 9")
    con.close()
    with pytest.raises(StudyError, match="schema version 9, newer than this segan reads"):
        connect(old)
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t (x)")
    con.close()
    with pytest.raises(StudyError, match="not a segan study database"):
        connect(other)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"x" * 4096)
    with pytest.raises(StudyError, match="is not a study database"):
        connect(junk)
    with pytest.raises(FileNotFoundError, match="segan study create"):
        connect(tmp_path / "missing.sqlite")


def test_vote_rules(study):
    store = StudyStore(study)
    token = store.new_participant()
    state = store.state(token)
    assert state["done"] == 0 and state["total"] == N_ITEMS
    item = state["item"]["id"]
    assert "segan" not in json.dumps(state)  # no method names reach the page
    for bad, msg in [(("up", item), "choice must be 'left' or 'right'"),
                     (("left", "x"), "item must be an item id"),
                     (("left", 999), "no item 999")]:
        with pytest.raises(RequestError, match=msg):
            store.vote(token, bad[1], bad[0])
    with pytest.raises(RequestError, match="response_ms out of range"):
        store.vote(token, item, "left", response_ms=-5)
    with pytest.raises(UnknownParticipant):
        store.vote("nobody", item, "left")
    assert store.vote(token, item, "left", response_ms=1200)["done"] == 1
    with pytest.raises(AlreadyVoted):
        store.vote(token, item, "right")
    con = connect(study)
    assert [tuple(r) for r in con.execute("SELECT choice, response_ms FROM votes")] == [
        ("left", 1200)]
    con.close()


# ----------------------------------------------------------------------------- the report


def test_wilson_known_answers():
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)


def _answer(store: StudyStore, token: str, pick) -> None:
    """Vote on every item for `token`: pick(item row) -> the method to choose (None: skip)."""
    for i, row in store.items.items():
        method = pick(row)
        if method is not None:
            store.vote(token, i, "left" if row["left_method"] == method else "right")


def test_report_known_answer(study, tmp_path):
    store = StudyStore(study)
    nn = "nearest_neighbour"

    def truth(row):  # the checks answered right
        return GROUND_TRUTH

    p1, p2, p3, p4 = (store.new_participant() for _ in range(4))
    # p1 passes and always picks segan: 3 + 3 votes for segan
    _answer(store, p1, lambda r: truth(r) if r["kind"] == "check" else "segan")
    # p2 passes; segan on one of the 3 NN pairs (the first object), oracle on every pair
    first_nn = min(r["object_key"] for r in store.items.values() if r["baseline"] == nn)
    _answer(store, p2, lambda r: truth(r) if r["kind"] == "check" else (
        "segan" if r["baseline"] == nn and r["object_key"] == first_nn else r["baseline"]))
    # p3 picks the broken painting in its first check: excluded, though it votes segan
    first_check = min(i for i, r in store.items.items() if r["kind"] == "check")
    _answer(store, p3, lambda r: "segan" if r["kind"] == "pair" else (
        BROKEN if r["id"] == first_check else GROUND_TRUTH))
    # p4 answers the pairs only: incomplete, excluded
    _answer(store, p4, lambda r: None if r["kind"] == "check" else "segan")

    rep = study_report(study)
    rows = {r["baseline"]: r for r in rep["rows"]}
    assert (rows[nn]["votes"], rows[nn]["votes_for_ours"], rows[nn]["participants"]) == (6, 4, 2)
    assert rows[nn]["share_ours"] == pytest.approx(4 / 6)
    assert rows[nn]["ci95"] == pytest.approx(list(wilson_interval(4, 6)))
    assert (rows["oracle"]["votes"], rows["oracle"]["votes_for_ours"]) == (6, 3)
    assert rep["participants"] == {"total": 4, "passed": 2, "failed": 1, "incomplete": 1,
                                   "excluded": 2}
    assert rep["attention_checks"]["pass_rate"] == pytest.approx(2 / 3)
    assert rep["attention_checks"]["answers"] == 3 * CHECKS
    assert rep["attention_checks"]["answers_correct"] == 3 * CHECKS - 1
    assert rep["votes"] == {"total": 3 * N_ITEMS + PAIRS * len(BASELINES), "counted": 12}

    assert main(["study", "report", str(study), "--out", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "table3.md").read_text()
    assert f"| {nn} | 66.7% (4) | {100 * rows[nn]['ci95'][0]:.1f}% to" in md
    assert "excluded: 2 (1 failed a check, 1 did not reach every check)" in md
    assert json.loads((tmp_path / "rep" / "table3.json").read_text())["rows"] == rep["rows"]
    assert Image.open(tmp_path / "rep" / "table3.png").size[0] > 100


# ----------------------------------------------------------------------------- the server


@contextmanager
def running_server(study: Path, port: int = 0):
    """`segan study serve STUDY` in a child process; yields (url, process)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "segan.cli", "study", "serve", str(study),
                             "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert "segan study on http://" in line, line + proc.stdout.read()
        yield line.split(" on ")[1].split()[0], proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _request(url: str, data: bytes | dict | None = None, content_type: str = "application/json"
             ) -> tuple[int, dict]:
    if isinstance(data, dict):
        data = json.dumps(data).encode()
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                 headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _votes(study: Path) -> list[tuple]:
    con = connect(study)
    rows = [tuple(r) for r in con.execute(
        "SELECT p.token, v.item_id, v.choice FROM votes v JOIN participants p "
        "ON p.id = v.participant_id ORDER BY p.token, v.item_id")]
    con.close()
    return rows


def test_concurrent_participants_and_malformed_posts(study):
    n = 20
    cast: list[list[tuple]] = [[] for _ in range(n)]
    duplicates: list[int] = []
    errors: list[BaseException] = []
    with running_server(study) as (url, _):
        start = threading.Barrier(n)

        def participant(j: int) -> None:
            try:
                rng = np.random.default_rng(j)
                status, body = _request(url + "api/participants", b"")
                assert status == 200
                token = body["token"]
                start.wait()
                state = _request(f"{url}api/next?token={token}")[1]
                first = state["item"]["id"]
                while state["item"] is not None:
                    choice = ["left", "right"][int(rng.integers(2))]
                    status, state = _request(url + "api/votes", {
                        "token": token, "item": state["item"]["id"], "choice": choice})
                    assert status == 200, state
                    cast[j].append((token, len(cast[j]), choice))
                # a second vote on an answered pair: refused, nothing recorded
                duplicates.append(_request(url + "api/votes", {
                    "token": token, "item": first, "choice": "left"})[0])
            except BaseException as e:  # noqa: BLE001 - re-raised below
                errors.append(e)

        threads = [threading.Thread(target=participant, args=(j,)) for j in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert duplicates == [409] * n
        votes = _votes(study)
        assert len(votes) == n * N_ITEMS  # no vote lost, none duplicated
        assert len({v[:2] for v in votes}) == n * N_ITEMS
        for mine in cast:
            token = mine[0][0]
            assert sorted(v[2] for v in votes if v[0] == token) == sorted(c for *_, c in mine)

        # malformed posts: each a clear error, nothing recorded
        token = _request(url + "api/participants", b"")[1]["token"]
        item = _request(f"{url}api/next?token={token}")[1]["item"]["id"]
        for body, ctype, code, msg in [
                (b"{oops", "application/json", 400, "malformed JSON"),
                (b"[1, 2]", "application/json", 400, "must be a JSON object"),
                (json.dumps({"token": token, "item": item, "choice": "up"}).encode(),
                 "application/json", 400, "choice must be 'left' or 'right'"),
                (json.dumps({"token": token, "item": "x", "choice": "left"}).encode(),
                 "application/json", 400, "item must be an item id"),
                (json.dumps({"item": item, "choice": "left"}).encode(), "application/json",
                 400, "missing participant token"),
                (json.dumps({"token": "nobody", "item": item, "choice": "left"}).encode(),
                 "application/json", 404, "unknown participant token"),
                (f"token={token}&item={item}&choice=left&choice=right".encode(),
                 "application/x-www-form-urlencoded", 400, "given twice"),
                (b"choice=left", "text/plain", 400, "application/json or a url-encoded form"),
                (b"x" * 5000, "application/json", 400, "over 4096 bytes")]:
            status, answer = _request(url + "api/votes", body, ctype)
            assert (status, msg in answer.get("error", "")) == (code, True), (body, answer)
        assert len(_votes(study)) == n * N_ITEMS
        # a well-formed url-encoded form is taken
        status, state = _request(url + "api/votes", f"token={token}&item={item}&choice=right"
                                 .encode(), "application/x-www-form-urlencoded")
        assert status == 200 and state["done"] == 1
        assert len(_votes(study)) == n * N_ITEMS + 1


def test_sigkilled_server_keeps_every_vote(study):
    answered = []
    with running_server(study) as (url, proc):
        token = _request(url + "api/participants", b"")[1]["token"]
        state = _request(f"{url}api/next?token={token}")[1]
        for _ in range(N_ITEMS // 2):
            item = state["item"]["id"]
            status, state = _request(url + "api/votes", {"token": token, "item": item,
                                                         "choice": "left"})
            assert status == 200
            answered.append(item)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with running_server(study) as (url, _):
        state = _request(f"{url}api/next?token={token}")[1]
        assert state["done"] == len(answered)  # every vote answered before the kill
        while state["item"] is not None:
            status, state = _request(url + "api/votes", {"token": token,
                                                         "item": state["item"]["id"],
                                                         "choice": "right"})
            assert status == 200
    votes = _votes(study)
    assert len(votes) == N_ITEMS
    assert sorted(i for _, i, c in votes if c == "left") == sorted(answered)


def test_serve_refuses_a_port_in_use_and_another_version(study, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        assert main(["study", "serve", str(study), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "pass another --port" in err
    con = sqlite3.connect(study / DB_NAME)
    con.execute("PRAGMA user_version = 7")
    con.close()
    assert main(["study", "serve", str(study), "--port", "0"]) == 2
    assert "schema version 7, newer than this segan reads" in capsys.readouterr().err


@pytest.fixture
def browser_study(request) -> Path:
    """The study the browser test answers: SEGAN_STUDY_DIR=STUDY (a fresh folder of `segan
    study create`, no participant yet) or the tiny evaluation's study."""
    given = os.environ.get("SEGAN_STUDY_DIR")
    return Path(given) if given else request.getfixturevalue("study")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian chromium (scripts/setup installs it)")
def test_page_answered_with_the_keyboard(browser_study, tmp_path):
    """A participant answers every item with the keyboard (F / J / arrows) in headless
    Chromium; the report counts each vote. The participant is this test: it knows which side
    holds the ground truth of a check (votes labelled as the browser test's in the docs).

    SEGAN_STUDY_DIR=STUDY: it votes on that study and writes STUDY/report/ (docs/study.md)."""
    from playwright.sync_api import expect, sync_playwright

    study = browser_study
    given = "SEGAN_STUDY_DIR" in os.environ
    store = StudyStore(study)
    con = connect(study)
    assert con.execute("SELECT COUNT(*) FROM participants").fetchone()[0] == 0, (
        f"{study} has participants already: the browser test votes on a fresh study")
    con.close()
    n_items = len(store.items)
    pairs = [i for i in store.items.values() if i["kind"] == "pair"]
    keys = ["f", "j", "ArrowLeft", "ArrowRight"]
    by_images = {(f"images/{i['left_image']}", f"images/{i['right_image']}"): i
                 for i in store.items.values()}
    assert len(by_images) == n_items
    # SEGAN_STUDY_DOCS=docs/images: the page's screenshot (and the tiny study's plot) go there
    docs = Path(os.environ.get("SEGAN_STUDY_DOCS", tmp_path))
    outside: list[str] = []
    with running_server(study) as (url, _), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 900, "height": 640})
        page.on("request", lambda r: None if r.url.startswith(url) else outside.append(r.url))
        page.goto(url)
        expect(page.locator("#count")).to_have_text(f"0 / {n_items}", timeout=30_000)
        expect(page.locator("#question")).to_have_text("Which one looks more realistic?")
        for k in range(n_items):
            shown = (page.locator("#left-img").get_attribute("src"),
                     page.locator("#right-img").get_attribute("src"))
            item = by_images[shown]
            if item["kind"] == "check":  # the ground-truth side
                key = "f" if item["left_method"] == GROUND_TRUTH else "j"
            else:  # blind to the images: the share for segan is the left/right draw's
                key = keys[k % len(keys)]
            if k == 1:
                page.screenshot(path=str(docs / "study_page.png"))
            page.keyboard.press(key)
            expect(page.locator("#count")).to_have_text(f"{k + 1} / {n_items}",
                                                        timeout=30_000)
        expect(page.locator("#done")).to_be_visible()
        # a reload keeps the participant (localStorage token): still done
        page.reload()
        expect(page.locator("#count")).to_have_text(f"{n_items} / {n_items}", timeout=30_000)
        browser.close()
    assert outside == []
    report = study / "report" if given else tmp_path / "report"
    rep = write_report(study, report)
    assert rep["participants"] == {"total": 1, "passed": 1, "failed": 0, "incomplete": 0,
                                   "excluded": 0}
    assert rep["votes"] == {"total": n_items, "counted": len(pairs)}
    assert {r["baseline"]: r["votes"] for r in rep["rows"]} == {  # one vote per pair
        b: sum(i["baseline"] == b for i in pairs) for b in {i["baseline"] for i in pairs}}
    assert (docs / "study_page.png").is_file()
    if not given:
        assert rep["votes"]["counted"] == PAIRS * len(BASELINES)
    if "SEGAN_STUDY_DOCS" in os.environ:
        if not given:
            shutil.copyfile(report / "table3.png", docs / "study_table3_browser_test.png")
        print((report / "table3.md").read_text())
