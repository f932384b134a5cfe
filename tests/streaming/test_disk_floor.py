"""`vigil up` refuses to start on a nearly full disk, naming the folder and the figures."""

from __future__ import annotations

import shutil

import pytest

from vigil.errors import VigilError
from vigil.services.common.disk import DiskFullError, check_free_disk, min_free_mib


def test_a_disk_with_less_free_than_the_floor_is_refused_naming_the_folders(tmp_path):
    broker, milvus = tmp_path / "broker", tmp_path / "not-yet" / "milvus"  # one not created yet
    broker.mkdir()
    free_mib = shutil.disk_usage(tmp_path).free // 2**20
    with pytest.raises(DiskFullError) as refused:
        check_free_disk([broker, milvus], floor_mib=free_mib + 1024)
    message = str(refused.value)
    assert "nearly full" in message and str(broker) in message and str(milvus) in message
    assert f"at least {free_mib + 1024} MiB" in message
    check_free_disk([broker, milvus], floor_mib=max(free_mib - 1024, 0))  # enough: no error


def test_the_floor_comes_from_the_environment_and_a_bad_value_is_named(monkeypatch):
    monkeypatch.setenv("VIGIL_MIN_FREE_DISK_MIB", "512")
    assert min_free_mib() == 512
    monkeypatch.setenv("VIGIL_MIN_FREE_DISK_MIB", "lots")
    with pytest.raises(VigilError, match="VIGIL_MIN_FREE_DISK_MIB.*'lots'"):
        min_free_mib()
