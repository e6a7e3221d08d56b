"""Who may act on a run: the session that started it, or an admin; how many runs one session may queue; passwords,
login sessions, and the gate every page goes through in shared mode."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import fresh
from streamlit.testing.v1 import AppTest

from mnist_core import access, control, runs, ui
from mnist_core.access import Actor
from mnist_core.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]

TINY = TrainConfig.for_architecture("mlp", epochs=1, train_subset=600)
ALICE, BOB, ADMIN = Actor("alice"), Actor("bob"), Actor("teacher", admin=True)


def test_only_the_owner_or_an_admin_may_stop_or_continue_a_run(runs_dir):
    run = control.create_run(TINY, runs_dir, ALICE)
    assert fresh(run).status["owner"] == "alice"
    with pytest.raises(runs.RunError, match="only the browser session that started"):
        control.request_stop(run.run_id, runs_dir, actor=BOB)
    assert fresh(run).state == runs.QUEUED  # the refusal changed nothing
    assert control.request_stop(run.run_id, runs_dir, actor=ALICE).state == runs.STOPPED
    for verb, action in (
        ("continue", lambda: control.continue_run(run.run_id, 1, runs_dir, actor=BOB)),
        ("delete", lambda: control.delete_run(run.run_id, runs_dir, actor=BOB)),
    ):
        with pytest.raises(runs.RunError, match=f"may {verb} it"):
            action()
    control.delete_run(run.run_id, runs_dir, actor=ADMIN)
    assert not run.path.exists()


def test_runs_without_an_owner_are_anyones(runs_dir):
    run = control.create_run(TINY, runs_dir)  # started from the command line
    assert fresh(run).status["owner"] is None
    assert control.request_stop(run.run_id, runs_dir, actor=BOB).state == runs.STOPPED


def test_one_session_may_queue_only_so_many_runs(runs_dir, monkeypatch):
    monkeypatch.setenv("MNIST_MAX_QUEUED_PER_SESSION", "2")
    first = control.create_run(TINY, runs_dir, ALICE)
    control.create_run(TINY, runs_dir, ALICE)
    with pytest.raises(runs.RunError, match="already have 2 runs queued or running"):
        control.create_run(TINY, runs_dir, ALICE)
    assert len(runs.list_runs(runs_dir)) == 2  # nothing was made by the refused call
    control.create_run(TINY, runs_dir, BOB)  # others are not held back
    control.create_run(TINY, runs_dir, ADMIN)  # nor is an admin
    control.request_stop(first.run_id, runs_dir, actor=ALICE)
    control.create_run(TINY, runs_dir, ALICE)  # a stopped run frees a place
    assert len(runs.list_runs(runs_dir)) == 5


# Passwords


def test_a_password_hash_verifies_only_its_password_and_carries_its_parameters():
    encoded = access.hash_password("correct horse", n=2**12)
    assert encoded.startswith("scrypt$4096$8$1$") and "correct horse" not in encoded
    assert access.verify_password("correct horse", encoded)
    assert not access.verify_password("correct hors", encoded)
    assert not access.verify_password("", encoded)
    assert access.hash_password("correct horse", n=2**12) != encoded  # a fresh salt every time
    with pytest.raises(ValueError, match="empty"):
        access.hash_password("")


def test_a_tampered_hash_verifies_nothing():
    encoded = access.hash_password("secret", n=2**12)
    head, digest = encoded.rsplit("$", 1)
    raw = bytearray(base64.b64decode(digest))
    raw[0] ^= 1
    assert not access.verify_password("secret", f"{head}${base64.b64encode(bytes(raw)).decode()}")
    fields = encoded.split("$")
    fields[4] = base64.b64encode(b"another salt 16b").decode()  # a swapped salt
    assert not access.verify_password("secret", "$".join(fields))


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        ("hunter2", "expected scrypt\\$N\\$r\\$p"),
        ("scrypt16384", "expected scrypt"),
        ("bcrypt$16384$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==", "expected scrypt"),
        ("scrypt$many$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==", "expected scrypt"),
        ("scrypt$16384$8$1$not base64!$aGFzaGhhc2hoYXNoaGFzaA==", "expected scrypt"),
        ("scrypt$1000$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==", "out of range"),
        ("scrypt$16384$8$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==", "too short"),
    ],
)
def test_a_malformed_hash_is_an_error_that_says_what_is_expected(encoded, message):
    with pytest.raises(access.PasswordHashError, match=message):
        access.verify_password("anything", encoded)


def test_configured_passwords_come_from_the_environment_first_then_the_secrets():
    user, admin, other = (access.hash_password(word, n=2**12) for word in ("student", "teacher", "other"))
    assert not access.configured_passwords({}, {}).configured
    from_secrets = access.configured_passwords({"password_hash": user, "admin_password_hash": admin}, {})
    assert (from_secrets.user, from_secrets.admin) == (user, admin)
    mixed = access.configured_passwords({"password_hash": user}, {"MNIST_STUDIO_PASSWORD_HASH": other})
    assert (mixed.user, mixed.admin) == (other, None)  # the environment wins
    assert mixed.role_of("other") == access.USER and mixed.role_of("student") is None
    both = access.configured_passwords(
        None, {"MNIST_STUDIO_PASSWORD_HASH": user, "MNIST_STUDIO_ADMIN_PASSWORD_HASH": admin}
    )
    assert (both.role_of("student"), both.role_of("teacher"), both.role_of("nope")) == ("user", "admin", None)
    with pytest.raises(access.PasswordHashError, match=r"^MNIST_STUDIO_ADMIN_PASSWORD_HASH: expected"):
        access.configured_passwords(None, {"MNIST_STUDIO_ADMIN_PASSWORD_HASH": "scrypt"})
    with pytest.raises(access.PasswordHashError, match=r"^password_hash in \.streamlit/secrets\.toml: expected"):
        access.configured_passwords({"password_hash": "plain text"}, {})


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        *[("127.0.0.1", True), ("127.1.2.3", True), ("localhost", True), ("::1", True), ("[::1]", True)],
        *[("0.0.0.0", False), ("", False), (None, False), ("192.168.1.10", False), ("::", False), ("x.org", False)],
    ],
)
def test_only_loopback_addresses_count_as_local(address, loopback):
    assert access.is_loopback_address(address) is loopback


# Login sessions


def test_a_login_token_is_found_by_a_new_store_on_the_same_file_and_a_wrong_one_is_not(runs_dir):
    passwords = access.Passwords(user=access.hash_password("student", n=2**12))
    token = access.SessionStore(runs_dir).issue(access.USER, passwords.fingerprint(access.USER))
    store = access.SessionStore(runs_dir)  # as after a server restart
    session = store.lookup(token)
    assert session is not None and session.role == access.USER and session.valid_under(passwords)
    assert store.lookup(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert store.lookup("") is None and store.lookup(None) is None and store.lookup("../../etc/passwd") is None
    stored = (runs_dir / access.SESSIONS_FILE).read_text()
    assert token not in stored and access.token_key(token) in stored
    assert (runs_dir / access.SESSIONS_FILE).stat().st_mode & 0o777 == 0o600
    owner = session.actor
    assert owner.id != token and token not in owner.id and owner.id == f"s-{access.token_key(token)[:16]}"
    assert not owner.admin
    assert runs.list_runs(runs_dir) == []  # the sessions file is not a run


def test_a_login_ends_on_logout_on_a_new_password_and_after_its_age(runs_dir):
    old = access.Passwords(user=access.hash_password("student", n=2**12), admin=access.hash_password("t", n=2**12))
    store = access.SessionStore(runs_dir)
    token = store.issue(access.ADMIN, old.fingerprint(access.ADMIN))
    session = store.lookup(token)
    assert session.actor.admin and session.valid_under(old)
    assert not session.valid_under(access.Passwords(user=old.user, admin=access.hash_password("t", n=2**12)))
    assert not session.valid_under(old, now=session.created + access.SESSION_MAX_AGE + 1)
    other = store.issue(access.USER, old.fingerprint(access.USER))
    store.revoke(session.key)
    assert store.lookup(token) is None and store.lookup(other) is not None  # only that login ended


def test_a_damaged_sessions_file_logs_everyone_out_and_the_next_login_repairs_it(runs_dir):
    runs_dir.mkdir(parents=True)
    (runs_dir / access.SESSIONS_FILE).write_text("{not json")
    store = access.SessionStore(runs_dir)
    assert store.lookup("A" * 43) is None
    token = store.issue(access.USER, "f" * 16)
    assert store.lookup(token).role == access.USER


def test_the_password_command_prints_a_hash_of_the_password_from_stdin(runs_dir):
    result = subprocess.run(
        [sys.executable, "-m", "mnist_core", "password", "--admin"],
        input="teacher pw\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    encoded = result.stdout.splitlines()[0]
    assert access.verify_password("teacher pw", encoded)
    assert f'admin_password_hash = "{encoded}"' in result.stdout
    assert f"export MNIST_STUDIO_ADMIN_PASSWORD_HASH='{encoded}'" in result.stdout
    empty = subprocess.run(
        [sys.executable, "-m", "mnist_core", "password"], input="\n", capture_output=True, text=True, cwd=ROOT
    )
    assert empty.returncode == 2 and "empty" in empty.stderr


# The gate: AppTest runs of dashboard.py (the router every page goes through)

STUDENT, TEACHER = "student pw", "teacher pw"


@pytest.fixture
def shared(monkeypatch):
    """Configure a user and an admin password in the environment, as a classroom would."""
    monkeypatch.setenv("MNIST_STUDIO_PASSWORD_HASH", access.hash_password(STUDENT, n=2**12))
    monkeypatch.setenv("MNIST_STUDIO_ADMIN_PASSWORD_HASH", access.hash_password(TEACHER, n=2**12))


def dashboard() -> AppTest:
    app = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=120).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def only_the_login(app: AppTest) -> None:
    """Assert the app shows the login form and nothing of the studio."""
    assert [t.label for t in app.text_input] == ["Password"] and app.text_input[0].proto.type == 1  # PASSWORD
    assert [b.label for b in app.button] == ["Log in"]
    assert not app.metric and not app.dataframe and not app.selectbox and not app.tabs
    assert not app.sidebar.button and not app.sidebar.caption
    assert [t.value for t in app.title] == [":material/lock: MNIST studio"]


def log_in(app: AppTest, password: str) -> AppTest:
    app.text_input(key="_access_password").input(password)
    app.button[0].click().run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def session_actor(app: AppTest, runs_dir) -> Actor:
    return access.SessionStore(runs_dir).get(app.session_state["_access_session_key"]).actor


def test_with_a_password_the_first_page_is_only_the_login(shared, runs_dir):
    control.create_run(TINY, runs_dir, ALICE)  # there is a run to show, once let in
    app = dashboard()
    only_the_login(app)
    assert not app.info and not app.markdown  # not even "No runs yet"
    app.switch_page("pages/2_Train.py").run()  # a deep link: the page is run through dashboard.py's gate
    only_the_login(app)


def test_a_wrong_password_says_so_and_shows_nothing_else(shared, runs_dir):
    app = log_in(dashboard(), "guess")
    assert [e.value for e in app.error] == ["Wrong password."]
    only_the_login(app)
    assert app.text_input(key="_access_password").value == ""  # the password is not kept
    assert not (runs_dir / access.SESSIONS_FILE).exists() or "user" not in (runs_dir / access.SESSIONS_FILE).read_text()


def test_the_password_opens_the_home_page_as_a_student_and_log_out_closes_it(shared, runs_dir):
    app = log_in(dashboard(), STUDENT)
    assert any(m.label == "Training images" and m.value == "54,000" for m in app.metric)
    assert not app.error
    owner = session_actor(app, runs_dir)
    assert owner.id.startswith("s-") and not owner.admin
    assert [c.value for c in app.sidebar.caption] == [f":material/person: Logged in · session `{owner.id[2:8]}`"]
    key = app.session_state["_access_session_key"]
    assert access.SessionStore(runs_dir).get(key) is not None
    app.sidebar.button(key="access_logout").click().run()
    only_the_login(app)
    assert access.SessionStore(runs_dir).get(key) is None  # the login is void on the server too
    assert "_access_session_key" not in app.session_state


def test_the_admin_password_gives_admin(shared, runs_dir):
    app = log_in(dashboard(), TEACHER)
    assert any(m.label == "Training images" for m in app.metric)
    assert session_actor(app, runs_dir).admin
    assert app.sidebar.caption[0].value.startswith(":material/key: Admin")


def test_a_malformed_hash_closes_the_studio_with_one_line(shared, monkeypatch):
    monkeypatch.setenv("MNIST_STUDIO_PASSWORD_HASH", "scrypt$oops")
    app = dashboard()
    assert len(app.error) == 1 and "MNIST_STUDIO_PASSWORD_HASH: expected scrypt" in app.error[0].value
    assert not app.text_input and not app.metric and not app.button


def test_a_studio_on_the_network_without_a_password_does_not_open(monkeypatch):
    monkeypatch.setattr(ui, "_serves_loopback_only", lambda: False)
    app = dashboard()
    assert len(app.error) == 1 and "has no password" in app.error[0].value
    assert "python -m mnist_core password" in app.error[0].value
    assert not app.text_input and not app.metric and not app.button


def test_a_password_hash_in_streamlit_secrets_gates_the_studio_too(monkeypatch):
    app = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=120)
    app.secrets["password_hash"] = access.hash_password(STUDENT, n=2**12)
    app.run()
    only_the_login(app)
    log_in(app, STUDENT)
    assert any(m.label == "Training images" for m in app.metric)


def test_a_run_started_from_the_train_page_belongs_to_the_session_and_counts_against_its_cap(
    shared, runs_dir, monkeypatch, reaper
):
    monkeypatch.setenv("MNIST_MAX_QUEUED_PER_SESSION", "1")
    app = log_in(dashboard(), STUDENT)
    # AppTest starts every run of a switched-to page in Streamlit's pages-folder mode, which page_setup leaves with
    # a rerun that drops the click; run the page itself here (its login is in the session already).
    monkeypatch.setattr(ui, "_route_through_home", lambda: None)
    app.switch_page("pages/2_Train.py").run()
    app.selectbox(key="train_architecture").set_value("mlp").run()
    app.number_input(key="train_epochs_mlp").set_value(1).run()
    app.number_input(key="train_subset_mlp").set_value(1000).run()
    app.button(key="train_start").click().run()
    started = runs.list_runs(runs_dir)
    reaper.extend(started)
    assert len(started) == 1 and started[0].status["owner"] == session_actor(app, runs_dir).id
    app.button(key="train_start").click().run()  # a second while the first is queued or running: refused
    assert any("already have 1 runs queued or running" in e.value for e in app.error), [e.value for e in app.error]
    assert len(runs.list_runs(runs_dir)) == 1
    control.request_stop(started[0].run_id, runs_dir)
    assert control.wait_for(started[0], timeout=120) in runs.DONE_STATES
