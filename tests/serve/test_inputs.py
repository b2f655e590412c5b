"""The served model's input checks for categories written as integers or booleans (no TensorFlow here:
FeatureSchema is built by hand, as from_signature would build it)."""
import msgspec
import numpy as np

from netfab.serve.inputs import NUMBER, STRING, FeatureSchema


def test_integer_and_boolean_categories_are_taken_as_sent_in_their_training_form():
    schema = FeatureSchema({"stars": STRING, "pets": STRING, "price": NUMBER}, {"price": 100.0})
    rows = [{"stars": 4, "pets": True, "price": 1}, {"stars": "4", "pets": False, "price": None},
            {"stars": None, "pets": None, "price": 2.5}]
    columns = schema.columns_from_rows(rows)
    assert columns["stars"].tolist() == ["4", "4", ""]  # as data/loading.category_string wrote them
    assert columns["pets"].tolist() == ["true", "false", ""]
    np.testing.assert_allclose(columns["price"], [1, 100, 2.5])
    # the typed fast decoder reads strings only: it hands such a body to the careful way above
    assert schema.decode(msgspec.json.encode({"instances": rows})) is None


def test_a_list_feature_takes_a_json_list_null_or_its_joined_items():
    import pytest

    from netfab.serve.inputs import InputError

    schema = FeatureSchema({"facilities": STRING, "country": STRING}, {}, lists={"facilities"})
    rows = [{"facilities": ["pool", 7], "country": "DE"}, {"facilities": None, "country": "DE"},
            {"facilities": [], "country": "DE"}, {"facilities": "pool\x1fgym", "country": "DE"}]
    expected = ["pool\x1f7", "", "", "pool\x1fgym"]
    assert schema.columns_from_rows(rows)["facilities"].tolist() == expected
    columns, row_form = schema.decode(msgspec.json.encode({"instances": rows}))  # the typed fast path
    assert row_form and columns["facilities"].tolist() == expected
    with pytest.raises(InputError, match="row 0, field 'facilities': expected a list of strings or integers"):
        schema.columns_from_rows([{"facilities": [{"a": 1}], "country": "DE"}])
    with pytest.raises(InputError, match="row 0, field 'country': expected a string, got a list"):
        schema.columns_from_rows([{"facilities": [], "country": ["DE"]}])
