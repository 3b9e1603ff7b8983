import json
from pathlib import Path


def test_aicrowd_json_has_the_fields_the_graders_read():
    data = json.loads((Path(__file__).resolve().parents[1] / "aicrowd.json").read_text())
    assert set(data) >= {"challenge_id", "authors", "description", "external_dataset_used", "gpu"}
    assert isinstance(data["authors"], list) and data["authors"]
    assert isinstance(data["external_dataset_used"], bool) and isinstance(data["gpu"], bool)
