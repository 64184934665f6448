import pytest

from harness import config
from harness.data import vocabulary
from harness.data.loaders import LAYOUTS
from harness.data.protocols import PROTOCOLS
from tests.data import fakes


@pytest.mark.parametrize("encoding, native, name", [
    ("rafdb", "4", "happy"), ("rafdb", "1", "surprise"), ("rafdb", "7", "neutral"),
    ("affectnet", "6", "anger"), ("affectnet", "0", "neutral"), ("affectnet", "7", "contempt"),
    ("ckplus48", "sadness", "sad"), ("ckplus-emotion", "0", "neutral"), ("ckplus-emotion", "7", "surprise"),
    ("ckplus-crossval", "5", "sad"), ("fer2013", "0", "anger"), ("fer2013", "6", "neutral"), ("expw", "3", "happy"),
    ("ferplus-votes", "happiness", "happy"), ("ferplus-crossval", "7", "contempt"), ("sfew", "Angry", "anger"),
    ("sfew-crossval", "4", "neutral"), ("kmufed", "SU", "surprise"), ("dfew", "0", "happy"), ("dfew", "2", "neutral"),
    ("ferv39k", "6", "fear"), ("mafw", "8", "anxiety"), ("mafw", "10", "disappointment"),
])
def test_native_labels_map_to_canonical_names(encoding, native, name):
    assert vocabulary.canonical(encoding, native) == name


@pytest.mark.parametrize("encoding, native", [
    ("affectnet", "8"), ("affectnet", "9"), ("affectnet", "10"), ("ferplus-votes", "unknown"), ("ferplus-votes", "NF"),
])
def test_defined_non_expressions_map_to_none(encoding, native):
    assert vocabulary.canonical(encoding, native) is None


@pytest.mark.parametrize("encoding, native", [("rafdb", "0"), ("rafdb", "8"), ("fer2013", "7"), ("dfew", "7"),
                                              ("affectnet", "11"), ("kmufed", "NE"), ("ckplus48", "neutral")])
def test_values_outside_an_encoding_are_out_of_range(encoding, native):
    with pytest.raises(KeyError):
        vocabulary.canonical(encoding, native)


@pytest.mark.parametrize("encoding, fixture", [
    ("rafdb", fakes.RAFDB), ("fer2013", fakes.FER2013), ("expw", fakes.FER2013),
    ("ferplus-crossval", fakes.FERPLUS_CROSSVAL), ("affectnet", fakes.AFFECTNET), ("sfew", fakes.SFEW),
    ("sfew-crossval", fakes.SFEW_CROSSVAL), ("ckplus48", fakes.CKPLUS48), ("ckplus-crossval", fakes.CKPLUS_CROSSVAL),
    ("kmufed", fakes.KMUFED), ("dfew", fakes.DFER), ("ferv39k", fakes.DFER), ("mafw", fakes.MAFW),
    ("ferplus-votes", fakes.FERPLUS_CANONICAL),
])
def test_each_map_equals_the_independently_written_fixture(encoding, fixture):
    expressions = {native: name for native, name in vocabulary.ENCODINGS[encoding].items() if name is not None}
    assert expressions == {str(native): name for native, name in fixture.items()}


def test_maps_only_use_canonical_names_and_cannot_be_changed():
    for mapping in vocabulary.ENCODINGS.values():
        assert {name for name in mapping.values() if name is not None} <= set(vocabulary.CANONICAL)
    with pytest.raises(TypeError):
        vocabulary.ENCODINGS["rafdb"]["4"] = "sad"


def test_expected_lists_the_native_values():
    assert vocabulary.expected("kmufed") == "AN, DI, FE, HA, SA, SU"


def test_registry_datasets_use_canonical_classes_in_canonical_order_and_known_layouts():
    cfg = config.load()
    for name, dataset in cfg.datasets.items():
        order = [c for c in vocabulary.CANONICAL if c in dataset.classes]
        assert list(dataset.classes) == order, name
        assert set(dataset.layouts) <= set(LAYOUTS), name
        assert dataset.protocol in PROTOCOLS, name
    assert cfg.dataset("ckplus").classes == ("happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")
    assert cfg.dataset("ckplus").protocol == "subject-kfold" and cfg.dataset("ckplus").folds == 10
    assert cfg.dataset("expw").protocol == "photo-kfold" and cfg.dataset("expw").folds == 5
    assert len(cfg.dataset("affectnet7").classes) == 7 and "contempt" in cfg.dataset("affectnet8").classes
    assert len(cfg.dataset("kmufed").classes) == 6 and len(cfg.dataset("mafw").classes) == 11
    assert {n for n, d in cfg.datasets.items() if d.video} == {"dfew", "ferv39k", "mafw", "synthetic-video"}
    assert {n for n, d in cfg.datasets.items() if d.protocol == "official-folds"} == {"dfew", "mafw", "synthetic-video"}
