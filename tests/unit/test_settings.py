"""group_vars/all as doe reads it: typed, checked once, errors naming file and key."""

from __future__ import annotations

import pytest

from doe_cli.errors import UserError
from doe_cli.settings import parse_all_settings


def test_defaults_and_the_roles_keys_stay_as_they_are():
    settings = parse_all_settings({"aws_region": "eu-central-1"})
    assert (settings.prj_id, settings.etl_minimum_delay_sec, settings.fetch_max_file_bytes) == ("doe", 10, 1 << 30)
    assert settings.local_parallel is False and settings.notify is None
    assert settings.model_extra == {"aws_region": "eu-central-1"}


def test_values_as_users_write_them():
    settings = parse_all_settings({"prj_id": 2024, "local_parallel": "yes", "fetch_max_file_mb": "0.5",
                                   "etl_minimum_delay_sec": 0})
    assert settings.prj_id == "2024" and settings.local_parallel is True
    assert settings.fetch_max_file_bytes == 512 * 1024 and settings.etl_minimum_delay_sec == 0


@pytest.mark.parametrize(("values", "start"), [
    ({"fetch_max_file_mb": "lots"}, "group_vars/all/main.yml: fetch_max_file_mb: expected a valid number"),
    ({"fetch_max_file_mb": 0}, "group_vars/all/main.yml: fetch_max_file_mb: expected greater than 0"),
    ({"etl_minimum_delay_sec": -1}, "group_vars/all/main.yml: etl_minimum_delay_sec: expected greater than"),
    ({"notify": {"webhook": "x"}}, "group_vars/all/main.yml: notify: expected a list of {webhook: URL}"),
    ({"prj_id": ""}, "group_vars/all/main.yml: prj_id: "),
])
def test_bad_values_name_the_file_and_the_key(values, start):
    with pytest.raises(UserError) as caught:
        parse_all_settings(values)
    assert str(caught.value).startswith(start), str(caught.value)


SECRET_URL = "https://hooks.example.org/services/T000/B000/s3cr3t-token"


@pytest.mark.parametrize("notify", [SECRET_URL, {"webhook": SECRET_URL}, [SECRET_URL], 7])
def test_a_misshapen_notify_never_repeats_its_webhook_secret(notify):
    with pytest.raises(UserError) as caught:
        parse_all_settings({"notify": notify})
    message = str(caught.value)
    assert message.startswith("group_vars/all/main.yml: notify: expected a list of"), message
    assert "s3cr3t" not in message and "hooks.example.org" not in message
