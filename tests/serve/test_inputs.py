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
