"""`read_variables` reads the process environment through its bytes mapping:
it must answer exactly what `os.environ.get` answers, changes included."""

import os

from shared.config import load_settings
from shared.environment import read_variables

NAMES = (("a", "I25_TEST_SET"), ("b", "I25_TEST_UNSET"), ("c", "I25_TEST_ODD"))


def test_answers_what_os_environ_answers_and_follows_changes(monkeypatch):
    monkeypatch.setenv("I25_TEST_SET", "1")
    monkeypatch.delenv("I25_TEST_UNSET", raising=False)
    monkeypatch.setenv("I25_TEST_ODD", "caf\u00e9 \udcff")  # non-ASCII, and a byte that is not UTF-8
    expected = tuple(os.environ.get(variable) for _, variable in NAMES)
    assert read_variables(os.environ, NAMES) == expected == ("1", None, "caf\u00e9 \udcff")
    monkeypatch.setenv("I25_TEST_SET", "2")
    monkeypatch.setenv("I25_TEST_UNSET", "")
    assert read_variables(os.environ, NAMES) == ("2", "", "caf\u00e9 \udcff")


def test_another_mapping_is_read_as_given():
    assert read_variables({"I25_TEST_SET": "x"}, NAMES) == ("x", None, None)


def test_a_setting_changed_at_run_time_applies_to_the_next_read(monkeypatch):
    monkeypatch.setenv("MAX_BATCH_SIZE", "7")
    assert load_settings(function="predict").max_batch_size == 7
    monkeypatch.setenv("MAX_BATCH_SIZE", "9")
    assert load_settings(function="predict").max_batch_size == 9
