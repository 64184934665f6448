import pytest

from harness.files import write_json_atomic, write_text_atomic
from harness.run import store


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    write_text_atomic(tmp_path / "a" / "x.txt", "hello")
    write_json_atomic(tmp_path / "a" / "y.json", {"k": 1})
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["x.txt", "y.json"]
    assert (tmp_path / "a" / "x.txt").read_text() == "hello"


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "r.json"
    write_json_atomic(target, {"ok": True})
    with pytest.raises(TypeError):
        write_text_atomic(target, None)
    assert target.read_text().strip().startswith("{")
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_marker_requires_every_result_file(tmp_path):
    folder = store.run_dir(tmp_path, "d", "m", "official", "abc")
    folder.mkdir(parents=True)
    with pytest.raises(RuntimeError, match="missing"):
        store.mark_complete(folder, {})
    assert not store.is_complete(folder)
    for name in store.RESULT_FILES:
        (folder / name).write_text("{}")
    store.mark_complete(folder, {"run_id": "abc"})
    assert store.is_complete(folder)
    assert list(store.complete_runs(tmp_path)) == [folder]


def test_incomplete_runs_are_not_listed(tmp_path):
    folder = store.run_dir(tmp_path, "d", "m", "official", "abc")
    folder.mkdir(parents=True)
    (folder / "result.json").write_text("{}")
    assert list(store.complete_runs(tmp_path)) == []
