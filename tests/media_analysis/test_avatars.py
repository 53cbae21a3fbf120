"""Profile photos on the demo campaign: shared avatars and the stolen photo from the known-source bank."""

import pytest
from django.core.management import call_command

from accounts.services import import_paths
from media_analysis.selectors import avatars_from_known_sources, avatars_shared
from media_analysis.services import media_hash_batch, media_hash_claim

pytestmark = pytest.mark.django_db


def _hash_everything() -> None:
    while ids := media_hash_claim(limit=500):
        media_hash_batch(asset_ids=ids)


def test_stolen_and_shared_profile_photos_are_found(small_demo, cast, settings, tmp_path, capsys):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    outdir, truth = small_demo
    import_paths(dataset_name="demo", format="instaloader", paths=[outdir], user=None)
    call_command("import_known_sources", str(outdir / "known_sources"), label="Portrait from a stock site")
    assert "1 picture added" in capsys.readouterr().out
    _hash_everything()

    stolen = avatars_from_known_sources(user=cast["investigator"])
    assert {m.handle for m in stolen} == set(truth["stolen_avatar"]["accounts"])
    assert all(m.other.startswith("Portrait from a stock site") for m in stolen)

    pairs = {(m.handle, m.other) for m in avatars_shared(user=cast["investigator"])}
    first, second = truth["shared_avatar"]["accounts"]
    assert (first, second) in pairs and (second, first) in pairs
    stolen_accounts = truth["stolen_avatar"]["accounts"]
    assert (stolen_accounts[0], stolen_accounts[1]) in pairs
    organic = set(truth["organic_accounts"])
    assert not {h for pair in pairs for h in pair} & organic  # organic avatars are all different

    assert avatars_shared(user=cast["outsider"]) == [] and avatars_from_known_sources(user=cast["outsider"]) == []
