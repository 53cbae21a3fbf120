"""The real PostgreSQL: extension, indexes, constraints, roles and the audit trail."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import DatabaseError, IntegrityError, connection, transaction

from investigator.checks import pgvector_problem, pgvector_version
from investigator.models import AuditEvent
from investigator.roles import ROLES, has_role
from investigator.selectors import audit_chain_verify
from investigator.services import audit_record
from media_analysis.models import MediaAsset

pytestmark = pytest.mark.django_db


def test_server_has_pgvector_and_migration_created_it():
    assert pgvector_version() >= (0, 7)
    assert pgvector_problem() is None
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert cursor.fetchone() is not None
        cursor.execute("SHOW server_version_num")
        assert int(cursor.fetchone()[0]) >= 150000


def test_each_role_exists_as_a_group():
    assert set(Group.objects.values_list("name", flat=True)) >= set(ROLES)


def test_hamming_query_uses_the_hnsw_index():
    import numpy as np

    rng = np.random.default_rng(3)
    MediaAsset.objects.bulk_create([
        MediaAsset(sha256=f"{i:064x}", file=f"x/{i}.jpg", size_bytes=1, hash_state="done",
                   phash="".join(map(str, rng.integers(0, 2, 64))), pdq="".join(map(str, rng.integers(0, 2, 256))))
        for i in range(300)
    ])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE media_analysis_mediaasset")
        # Small tables favour a sequential scan; this asks the planner to show it can use the index.
        cursor.execute("SET LOCAL enable_seqscan = off")
        probe = "1" * 32 + "0" * 32
        cursor.execute(
            "EXPLAIN SELECT id FROM media_analysis_mediaasset ORDER BY phash <~> %s::bit(64) LIMIT 10", [probe]
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "media_phash_hnsw" in plan, plan
        cursor.execute(
            "SELECT id FROM media_analysis_mediaasset ORDER BY phash <~> %s::bit(64) LIMIT 10", [probe]
        )
        assert len(cursor.fetchall()) == 10


def test_unique_platform_ids():
    from accounts.models import Account, Platform

    platform = Platform.objects.get(slug="instagram")
    Account.objects.create(platform=platform, external_id="42", handle="a")
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.create(platform=platform, external_id="42", handle="b")
    # The same id on another platform is another account.
    Account.objects.create(platform=Platform.objects.get(slug="twitter"), external_id="42", handle="a")


def test_audit_chain_detects_tampering(cast):
    for n in range(3):
        audit_record(actor=cast["lead"], action="case.note", subject_type="case", subject_id=n, data={"n": n})
    report = audit_chain_verify()
    assert report.ok and report.checked >= 3
    victim = AuditEvent.objects.filter(action="case.note").order_by("id")[1]
    # The table refuses edits; a tamperer with owner rights would first drop the trigger.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=victim.pk).update(data={"n": 99})
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")  # ordinary triggers off
        cursor.execute("UPDATE investigator_auditevent SET data = '{\"n\": 99}' WHERE id = %s", [victim.pk])
        cursor.execute("SET LOCAL session_replication_role = origin")
    report = audit_chain_verify()
    assert not report.ok
    assert report.broken_at == victim.pk
    assert "content was changed" in report.problem


def test_createuser_command_creates_a_user_with_a_role(monkeypatch):
    monkeypatch.setenv("NEW_PASSWORD", "correct horse battery staple")
    call_command("createuser", "rita", role="reviewer", password_env="NEW_PASSWORD")
    from django.contrib.auth import get_user_model

    rita = get_user_model().objects.get(username="rita")
    assert rita.check_password("correct horse battery staple")
    assert has_role(rita, "reviewer") and has_role(rita, "investigator") and not has_role(rita, "lead")
    assert AuditEvent.objects.filter(action="user.created", subject_id=str(rita.pk)).exists()


def test_createuser_refuses_weak_password(monkeypatch):
    from django.core.management.base import CommandError

    monkeypatch.setenv("NEW_PASSWORD", "123")
    with pytest.raises(CommandError, match="too short"):
        call_command("createuser", "weak", role="investigator", password_env="NEW_PASSWORD")
