"""The 12345 code mapping (config/data/hotline_codes.yaml): checked on load like the other data
files, so a mistake names the file and the field and stops start-up."""

import pytest

from api.main import create_app
from config.catalog import DEFAULT_CONFIG_DIR, ConfigError
from config.hotline_codes import load_hotline_codes
from config.settings import Settings
from tests.test_catalog import _edit


def error(directory, catalog) -> str:
    with pytest.raises(ConfigError) as caught:
        load_hotline_codes(directory, catalog)
    return str(caught.value)


def test_the_shipped_mapping_points_at_real_categories(catalog):
    codes = load_hotline_codes(DEFAULT_CONFIG_DIR, catalog)
    assert codes.category_of("0301") == "exposed_garbage" and codes.category_of("9999") is None
    assert {codes.category_of(c) for c in codes.codes} <= set(catalog.categories)
    assert (codes.urgency_of("特急"), codes.urgency_of("2"), codes.urgency_of("urgent"),
            codes.urgency_of("很急")) == ("emergency", "urgent", "urgent", None)


@pytest.mark.parametrize("change, field, words", [
    (lambda d: d["codes"][2].update(category="rubbish"), "codes[2].category",
     "unknown category 'rubbish'"),
    (lambda d: d["codes"][1].update(code=d["codes"][0]["code"]), "codes[1].code",
     "duplicate hotline code '0101'"),
    (lambda d: d["codes"][0].update(code="01 01"), "codes[0].code", "pattern"),
    (lambda d: d["urgencies"].update({"火急": "asap"}), "urgencies.火急", "'asap'"),
    (lambda d: d["codes"][0].pop("category"), "codes[0].category", "required"),
])
def test_a_broken_mapping_names_the_file_and_field(tmp_path, catalog, change, field, words):
    message = error(_edit(tmp_path, "hotline_codes.yaml", change), catalog)
    assert message.startswith(str(tmp_path / "data" / "hotline_codes.yaml") + ": ")
    assert field in message and words in message


async def test_a_broken_mapping_stops_the_api_at_start_up(tmp_path, dev_env):
    directory = _edit(tmp_path, "hotline_codes.yaml",
                      lambda d: d["codes"][0].update(category="rubbish"))
    app = create_app(Settings(config_dir=directory, data_dir=tmp_path,
                              temporal_address=dev_env.client.service_client.config.target_host))
    with pytest.raises(ConfigError, match="hotline_codes.yaml"):
        async with app.router.lifespan_context(app):
            pass
