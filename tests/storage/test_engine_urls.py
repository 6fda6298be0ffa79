"""Store URLs as users see them."""

from storage.engine import shown_url, sqlite_file_exists


def test_shown_url_masks_the_password():
    assert shown_url("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"


def test_sqlite_file_exists(tmp_path):
    path = tmp_path / "store.db"
    assert not sqlite_file_exists(f"sqlite:///{path}")
    path.touch()
    assert sqlite_file_exists(f"sqlite:///{path}")
    assert not sqlite_file_exists("sqlite:///:memory:")
