"""The run-level settings models and their one-line errors (gan_zoo/settings.py)."""

from __future__ import annotations

from typing import Any

import pytest

from gan_zoo.errors import ConfigValueError
from gan_zoo.settings import MetricsSettings, RunSettings, validate_settings

VALID: dict[str, Any] = {
    "seed": 0,
    "run_name": "r",
    "paths": {"output_dir": "out", "data_dir": "data"},
    "net": {"latent_dim": 2, "generator": {}, "discriminator": {}},
    "data": {},
    "model": {},
    "trainer": {},
}


def test_a_valid_config_gives_the_model_with_its_defaults() -> None:
    settings = validate_settings(RunSettings, VALID)
    assert settings.net.latent_dim == 2
    assert settings.metrics == MetricsSettings(inception_weights=None)
    assert settings.ckpt_path is None


BAD = [
    ({"net": {**VALID["net"], "latent_dim": 0}}, "net.latent_dim=0 is invalid: expected an"),
    ({"seed": "1"}, "seed='1' is invalid"),
    (
        {"metrics": {"inception_weight": "w"}},
        "metrics.inception_weight='w' is invalid: expected a known key (did you mean "
        "'inception_weights'?)",
    ),
    ({"paths": {"output_dir": "out"}}, "paths.data_dir=None is invalid: expected a string (a "
     "mandatory key)"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "message"), BAD)
def test_a_bad_value_is_one_line_naming_the_key(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigValueError) as err:
        validate_settings(RunSettings, {**VALID, **change})
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


def test_a_prefix_names_the_config_node() -> None:
    with pytest.raises(ConfigValueError, match=r"^metrics\.inception_weights=3 is invalid"):
        validate_settings(MetricsSettings, {"inception_weights": 3}, "metrics")
