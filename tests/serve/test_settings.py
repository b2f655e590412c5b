"""ServerSettings: a value fab serve cannot run with is refused before anything loads, naming the setting."""
import pytest

from netfab.errors import NetfabError
from netfab.serve.app import ServerSettings


@pytest.mark.parametrize("values, words", [
    ({"gc_young_objects": 0}, "gc_young_objects must be at least 1"),
    ({"workers": 0}, "workers must be at least 1"),
    ({"drift_rows_per_s": -1}, "drift_rows_per_s must not be negative"),
    ({"port": 70000}, "port must be in 0..65535"),
])
def test_a_value_it_cannot_run_with_is_named(values, words):
    with pytest.raises(NetfabError, match=words):
        ServerSettings(**values)
