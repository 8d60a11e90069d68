"""Configuration: YAML + environment overrides, strict validation, field-named problems."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from replayd.server.config import ConfigError, load_config, unscoped_token_notes


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "replayd.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def problems_of(path: Path | None, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_config(path, environ=environ or {})
    return exc.value.problems


def test_embedded_defaults_without_a_file():
    config = load_config(None, environ={})
    assert (config.server.host, config.server.port) == ("127.0.0.1", 8000)
    assert config.storage.backend == "local" and config.storage.path == "./var/blobs"
    assert config.index.url == "sqlite:///./var/replayd.sqlite3"
    assert config.projects is None  # the generated default project
    assert config.retention_days == 90
    assert config.limits.max_envelope_bytes == 20 * 1024 * 1024
    assert config.limits.max_recording_bytes == 32 * 1024 * 1024
    assert config.limits.max_events_per_segment == 100_000


def test_file_values_are_read(tmp_path):
    path = write(tmp_path, {
        "server": {"port": 9123, "public_url": "https://replay.example.org"},
        "storage": {"backend": "s3", "bucket": "replays", "endpoint_url": "http://127.0.0.1:9000"},
        "projects": [{"id": 7, "name": "shop", "public_keys": ["abc"], "allowed_origins": ["https://shop.example"]}],
        "retention_days": 30,
    })
    config = load_config(path, environ={})
    assert config.server.port == 9123
    assert config.storage.bucket == "replays"
    assert config.projects[0].id == 7 and config.projects[0].allowed_origins == ["https://shop.example"]
    assert config.retention_days == 30


def test_environment_overrides_file_values(tmp_path):
    path = write(tmp_path, {"server": {"port": 9123}})
    config = load_config(path, environ={
        "REPLAYD_SERVER__PORT": "9000",
        "REPLAYD_RETENTION_DAYS": "7",
        "REPLAYD_LIMITS__MAX_ENVELOPE_BYTES": "1024",
        "REPLAYD_AUTH__API_TOKENS": "[one, two]",
        "REPLAYD_STORAGE__PREFIX": "replays/",
    })
    assert config.server.port == 9000
    assert config.retention_days == 7
    assert config.limits.max_envelope_bytes == 1024
    assert [t.token for t in config.auth.api_tokens] == ["one", "two"]
    assert config.storage.prefix == "replays/"


@pytest.mark.parametrize("text", ["12345678", "on", "null", "~", "[a, b]", "0x1F", "2024-01-01", " spaced "])
def test_a_string_field_takes_the_variable_as_it_is(text):
    config = load_config(None, environ={"REPLAYD_AUTH__ADMIN_PASSWORD": text, "REPLAYD_SERVER__HOST": text})
    assert config.auth.admin_password == text
    assert config.server.host == text


def test_other_fields_parse_the_variable_by_their_type():
    config = load_config(None, environ={
        "REPLAYD_SERVER__PORT": "8080",
        "REPLAYD_SERVER__LOG_FORMAT": "json",
        "REPLAYD_SERVER__SHUTDOWN_TIMEOUT": "2.5",
        "REPLAYD_SERVER__TRUSTED_PROXIES": '["10.0.0.0/8", "::1"]',
        "REPLAYD_AUTH__API_TOKENS": '["12345678", "on", "null"]',
        "REPLAYD_AUTH": "{secret_key: k3y}",
    })
    assert config.server.port == 8080 and config.server.shutdown_timeout == 2.5
    assert config.server.log_format == "json"
    assert [str(n) for n in config.server.trusted_proxies] == ["10.0.0.0/8", "::1/128"]
    assert [t.token for t in config.auth.api_tokens] == ["12345678", "on", "null"]
    assert config.auth.secret_key == "k3y"


def test_an_empty_password_or_key_is_refused_not_generated():
    assert problems_of(None, {"REPLAYD_AUTH__ADMIN_PASSWORD": ""}) == [
        "auth.admin_password: String should have at least 1 character"]
    assert problems_of(None, {"REPLAYD_AUTH__SECRET_KEY": ""}) == [
        "auth.secret_key: String should have at least 1 character"]


def test_a_bad_trusted_proxy_names_the_entry():
    assert problems_of(None, {"REPLAYD_SERVER__TRUSTED_PROXIES": "[10.0.0.0/8, proxy.example]"}) == [
        "server.trusted_proxies.1: value is not a valid IPv4 or IPv6 network"]


def test_unknown_keys_are_errors_naming_the_path(tmp_path):
    assert problems_of(write(tmp_path, {"server": {"prot": 1}})) == ["server.prot: unknown field"]
    assert problems_of(write(tmp_path, {"serverr": {}})) == ["serverr: unknown field"]
    assert problems_of(None, {"REPLAYD_SERVER__NOPE": "1"}) == ["server.nope: unknown field"]


def test_wrong_types_name_the_field(tmp_path):
    problems = problems_of(write(tmp_path, {"server": {"port": "eighty"}, "retention_days": "forever"}))
    assert any(p.startswith("server.port: ") for p in problems)
    assert any(p.startswith("retention_days: ") for p in problems)


def test_s3_without_bucket_is_refused(tmp_path):
    assert problems_of(write(tmp_path, {"storage": {"backend": "s3"}})) == [
        "storage.bucket: field required when storage.backend is s3"
    ]


def test_projects_need_keys_and_unique_ids(tmp_path):
    problems = problems_of(write(tmp_path, {"projects": [
        {"id": 1, "public_keys": ["a"]}, {"id": 1, "public_keys": []},
    ]}))
    assert "projects.1.id: duplicate project id 1" in problems
    assert "projects.1.public_keys: at least one key is needed" in problems
    assert problems_of(write(tmp_path, {"projects": [{"name": "x"}]})) == ["projects.0.id: field required"]


def test_api_tokens_are_bare_or_list_their_scopes(tmp_path):
    config = load_config(write(tmp_path, {"auth": {"api_tokens": [
        "old-token", {"token": "reader", "scopes": ["read"]}, {"token": "both", "scopes": ["read", "delete"]}]}}),
        environ={})
    assert [(t.token, t.granted) for t in config.auth.api_tokens] == [
        ("old-token", {"read", "delete"}), ("reader", {"read"}), ("both", {"read", "delete"})]
    # the one without scopes is named at start and by check-config: it may delete
    assert [note.split(":")[0] for note in unscoped_token_notes(config)] == ["auth.api_tokens.0"]
    environ = {"REPLAYD_AUTH__API_TOKENS": "[{token: abc, scopes: [read]}]"}
    assert load_config(None, environ=environ).auth.api_tokens[0].granted == {"read"}


def test_bad_api_tokens_name_the_entry_never_the_token(tmp_path):
    def problems(tokens: list) -> list[str]:
        return problems_of(write(tmp_path, {"auth": {"api_tokens": tokens}}))

    assert problems([{"token": "t", "scopes": ["write"]}]) == [
        "auth.api_tokens.0.scopes.0: Input should be 'read' or 'delete'"]
    assert problems([{"token": "t", "scopes": []}]) == [
        "auth.api_tokens.0.scopes: List should have at least 1 item after validation, not 0"]
    assert problems([{"scopes": ["read"]}]) == ["auth.api_tokens.0.token: field required"]
    assert problems(["secret-one", {"token": "secret-one", "scopes": ["read"]}]) == [
        "auth.api_tokens.1: the same token as auth.api_tokens.0"]


def test_not_yaml_or_not_a_mapping(tmp_path):
    assert "not valid YAML" in problems_of(write(tmp_path, "server: [unclosed"))[0]
    assert "must be a mapping" in problems_of(write(tmp_path, "- a\n- b\n"))[0]
    assert "cannot read" in problems_of(tmp_path / "missing.yaml")[0]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "replayd.server.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=60)


def test_check_config_accepts_a_good_file(tmp_path):
    result = run_cli("check-config", str(write(tmp_path, {"server": {"port": 9000}})))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1 and "ok" in result.stdout


def test_check_config_notes_each_token_without_scopes(tmp_path):
    result = run_cli("check-config", str(write(tmp_path, {"auth": {"api_tokens": [
        {"token": "reader", "scopes": ["read"]}, "old-token"]}})))
    assert result.returncode == 0, result.stderr
    _, note = result.stdout.strip().splitlines()
    assert note.startswith("note: auth.api_tokens.1: lists no scopes, so it may read and delete")
    assert "old-token" not in result.stdout


def test_check_config_refuses_with_exit_2_and_one_line_per_problem(tmp_path):
    path = write(tmp_path, {"storage": {"backend": "s3"}, "server": {"colour": "red"}})
    result = run_cli("check-config", str(path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["config error: server.colour: unknown field"]
    assert "Traceback" not in result.stderr
    result = run_cli("check-config", str(write(tmp_path, {"storage": {"backend": "s3"}})))
    assert result.returncode == 2
    assert result.stderr.strip() == "config error: storage.bucket: field required when storage.backend is s3"


def test_serve_refuses_a_broken_config_at_start_up(tmp_path):
    for data, field in [({"server": {"prot": 1}}, "server.prot"), ({"server": {"port": "x"}}, "server.port"),
                        ({"storage": {"backend": "s3"}}, "storage.bucket")]:
        result = run_cli("serve", "--config", str(write(tmp_path, data)))
        assert result.returncode == 2, result.stderr
        assert field in result.stderr and "Traceback" not in result.stderr


def test_help_and_version():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("replayd ")
    for args in (["--help"], ["serve", "--help"], ["check-config", "--help"], ["scrub", "--help"]):
        result = run_cli(*args)
        assert result.returncode == 0 and "usage: replayd" in result.stdout, args


def test_projects_from_the_environment():
    config = load_config(None, environ={"REPLAYD_PROJECTS": "[{id: 3, public_keys: [abc], allowed_origins: ['https://a.example']}]"})
    assert [(p.id, p.public_keys, p.allowed_origins) for p in config.projects] == [(3, ["abc"], ["https://a.example"])]
