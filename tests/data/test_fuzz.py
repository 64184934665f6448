"""Property tests: whatever bytes or lines a label file or the registry holds, the parsers give rows or
problems (one line each), never an exception. Example counts stay modest for CI time."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import config
from harness.data.table import scan
from harness.errors import FerbenchError
from tests.data.fakes import WRITERS, fake_dataset, write_fake

LABEL_FILE_LAYOUTS = sorted(
    layout for layout in WRITERS
    if layout not in ("split-folders", "class-folders", "sfew", "sfew-aligned", "ckplus-folders", "kmufed")
)
FUZZ = settings(max_examples=15, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

field = st.one_of(st.text(max_size=12), st.integers(-5, 300).map(str), st.sampled_from(["", "..", "/x", "-1", "nan", "1e9"]))


def _lines(original: list[str]):
    """Lines of the real file, edited field by field, shuffled, dropped, or replaced by random text."""
    separators = {sep for line in original for sep in (",", " ", "\t") if sep in line} or {","}
    edited = st.builds(
        lambda line, at, value, sep: sep.join(
            value if i == at else part for i, part in enumerate(line.split(sep))
        ),
        st.sampled_from(original), st.integers(0, 12), field, st.sampled_from(sorted(separators)),
    )
    line = st.one_of(st.sampled_from(original), edited, st.text(max_size=60))
    return st.tuples(st.booleans(), st.lists(line, max_size=25)).map(
        lambda keep: ([original[0]] if keep[0] else []) + keep[1]
    )


def _outcome_is_rows_or_problems(root, layout) -> None:
    table, problems = scan(root, fake_dataset(layout))
    assert isinstance(table, pd.DataFrame)
    assert all(isinstance(p, str) and "\n" not in p for p in problems), problems
    if not problems:
        assert set(table["label"]) <= set(fake_dataset(layout).classes)


@pytest.mark.parametrize("layout", LABEL_FILE_LAYOUTS)
def test_random_bytes_in_a_label_file_give_rows_or_problems(tmp_path, layout):
    label_file = tmp_path / write_fake(layout, tmp_path)["label_file"]

    @FUZZ
    @given(st.binary(max_size=3000))
    def check(data: bytes) -> None:
        label_file.write_bytes(data)
        _outcome_is_rows_or_problems(tmp_path, layout)

    check()


@pytest.mark.parametrize("layout", LABEL_FILE_LAYOUTS)
def test_random_lines_in_a_label_file_give_rows_or_problems(tmp_path, layout):
    label_file = tmp_path / write_fake(layout, tmp_path)["label_file"]
    original = label_file.read_text().splitlines()

    @FUZZ
    @given(_lines(original), st.sampled_from(["\n", "\r\n"]))
    def check(lines: list[str], newline: str) -> None:
        label_file.write_bytes(newline.join(lines).encode("utf-8", "surrogatepass"))
        _outcome_is_rows_or_problems(tmp_path, layout)

    check()


REGISTRY_LINES = config.DEFAULT_CONFIG.read_text().splitlines()


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes_as_the_registry_give_a_config_or_one_line(data):
    try:
        config.parse(data.decode("utf-8", "replace"))
    except FerbenchError as error:
        assert "\n" not in str(error) and error.exit_code == 2


@FUZZ
@given(st.lists(st.one_of(st.sampled_from(REGISTRY_LINES),
                          st.builds(lambda key, value: f"{key} = {value}",
                                    st.sampled_from(["lr", "epochs", "name", "classes", "commit", "sha256", "globals", "x"]),
                                    st.sampled_from(["-1", "0", '""', "[]", "1e400", '"../x"', "true", "{}", '"a"'])),
                          st.text(max_size=40)),
                max_size=60))
def test_random_lines_as_the_registry_give_a_config_or_one_line(lines):
    try:
        config.parse("\n".join(lines))
    except FerbenchError as error:
        assert "\n" not in str(error) and error.exit_code == 2
