"""Settings: the wire schema resolved over defaults; bad keys named, good settings kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from lowentropy.server.settings import Settings, SettingsError, load_toml, resolve, unwrap


def test_defaults_use_the_embedded_engine_for_every_role() -> None:
    settings = resolve()
    assert all(settings.role(r).embedded for r in ("tab", "nextEdit", "apply", "chat", "embed"))
    assert settings.completion.prefetch is True


def test_endpoints_timeouts_and_key_variable_resolve() -> None:
    settings = resolve(
        {
            "tab": {
                "endpoints": [
                    {"url": "http://127.0.0.1:8000/v1", "model": "qwen"},
                    {"url": "http://127.0.0.1:8001"},
                ],
                "apiKeyEnv": "MY_KEY",
                "timeouts": {"connect": 0.5, "total": 3},
                "template": "qwen",
                "maxTokens": 32,
            },
            "completion": {"contextTokens": 2048, "prefetch": False},
        }
    )
    tab = settings.role("tab")
    assert [e.url for e in tab.endpoints] == ["http://127.0.0.1:8000/v1", "http://127.0.0.1:8001"]
    assert tab.endpoints[0].model == "qwen"
    assert tab.api_key_env == "MY_KEY"
    assert tab.timeouts.connect == 0.5 and tab.timeouts.total == 3 and tab.timeouts.read == 10.0
    assert tab.max_tokens == 32
    assert settings.completion.context_tokens == 2048 and settings.completion.prefetch is False
    assert settings.role("chat").embedded


def test_later_layers_win() -> None:
    settings = resolve(
        {"tab": {"maxTokens": 10}}, {"tab": {"temperature": 0.5}}, {"tab": {"maxTokens": 20}}
    )
    assert settings.role("tab").max_tokens == 20
    assert settings.role("tab").temperature == 0.5


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"tab": {"maxTokenz": 3}}, "maxTokenz"),
        ({"tabb": {}}, "tabb"),
        ({"tab": {"maxTokens": "many"}}, "maxTokens"),
        ({"tab": {"maxTokens": -1}}, "maxTokens"),
        ({"completion": {"prefetch": "yes please"}}, "prefetch"),
        ({"tab": {"endpoints": "not a list"}}, "endpoints"),
        ({"completion": {"contextTokens": 10}}, "contextTokens"),
        ({"tab": {"endpoints": [{"model": "x"}]}}, "url"),
        ([1, 2], "object"),
    ],
)
def test_invalid_settings_name_the_bad_key(raw: object, named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        resolve(raw)


def test_toml_file_and_wrapping(tmp_path: Path) -> None:
    assert load_toml(tmp_path) is None
    (tmp_path / "lowentropy.toml").write_text(
        '[tab]\nmaxTokens = 12\n[[chat.endpoints]]\nurl = "http://127.0.0.1:9"\n'
    )
    settings = resolve(load_toml(tmp_path))
    assert settings.role("tab").max_tokens == 12
    assert settings.role("chat").endpoints[0].url == "http://127.0.0.1:9"
    (tmp_path / "lowentropy.toml").write_text("[tab\n")
    with pytest.raises(SettingsError, match="lowentropy.toml"):
        load_toml(tmp_path)
    assert unwrap({"lowentropy": {"a": 1}}) == {"a": 1}
    assert isinstance(resolve(None), Settings)


def test_the_apply_role_template_names_an_apply_format() -> None:
    assert resolve({"apply": {"template": "fastapply"}}).role("apply").template == "fastapply"
    with pytest.raises(SettingsError, match=r"apply\.template: unknown apply format 'starcoder'"):
        resolve({"apply": {"template": "starcoder"}})


def test_rerank_model_must_be_a_model_folder(tmp_path: Path) -> None:
    assert resolve().index.rerank_model is None
    with pytest.raises(SettingsError, match=r"index\.rerankModel: .* is not a model folder"):
        resolve({"index": {"rerankModel": str(tmp_path / "missing")}})
    with pytest.raises(SettingsError, match=r"index\.rerankTop: must be >= 1"):
        resolve({"index": {"rerankTop": 0}})
    (tmp_path / "ce").mkdir()
    (tmp_path / "ce" / "config.json").write_text("{}")
    index = resolve({"index": {"rerankModel": str(tmp_path / "ce"), "rerankTop": 5}}).index
    assert (index.rerank_model, index.rerank_top) == (str((tmp_path / "ce").resolve()), 5)
    # a later layer's empty string switches it off again
    off = resolve({"index": {"rerankModel": str(tmp_path / "ce")}}, {"index": {"rerankModel": ""}})
    assert not off.index.rerank_model
