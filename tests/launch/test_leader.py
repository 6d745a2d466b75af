"""The elected bridge as the composition root wires it (launch/compose.py): two nodes on one
database run one bridge, the other stands by and takes over when the first stops; the state is on
the node's health; a call filed by both bridges at once is stored once; production refuses a lease
that could let two bridges run at once."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pydantic
import pytest
import sqlalchemy as sa

from hotline.calls import FinishedCall
from hotline.settings import Settings
from launch import compose
from launch.preflight import problems
from tests.cti.fake_ami import FakeAmi
from tests.ticketing.conftest import backend, postgres_server  # noqa: F401  (the fixtures)

pytestmark = pytest.mark.timeout(60)


def database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:  # noqa: F811
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'hotline.db'}"
    return request.getfixturevalue("postgres_server").create_database()


async def until(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        await asyncio.sleep(0.02)
    raise AssertionError("not in time")


async def test_two_nodes_on_one_database_run_one_bridge_and_the_other_takes_over_when_it_stops(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:  # noqa: F811
    fake = await FakeAmi().start()
    url = database(backend, tmp_path, request)
    # two machines' var folders, one database: the election follows the database
    a_settings, b_settings = (Settings(var_dir=tmp_path / name, database_url=url, ami_port=fake.port, ami_secret="pw",
                                       cti_lease_check_s=0.2, cti_lease_timeout_s=0.5) for name in ("a", "b"))
    a = await asyncio.to_thread(compose.build, a_settings, {"cti"})
    b = await asyncio.to_thread(compose.build, b_settings, {"cti"})
    try:
        await a.start()  # alone: it wins at once, before start() returns
        assert a.leader is not None and a.leader.active
        await until(lambda: a.cti.link.logged_in)
        await b.start()
        await asyncio.sleep(1.0)  # five tries of the standby meanwhile
        assert not b.cti.link.logged_in and fake.connections == 1  # one bridge on this Asterisk
        a_leader, b_leader = a.cti.health()["leader"], b.cti.health()["leader"]
        assert (a_leader["role"], a_leader["term"], b_leader["role"]) == ("active", 1, "standby")
        assert a_leader["lease"] == f"127.0.0.1:{fake.port}" and a_leader["since"].endswith("+00:00")

        stopped = time.monotonic()
        await a.stop()  # the active bridge goes (a graceful stop: it gives the lease back)
        await until(lambda: b.leader.active)
        await until(lambda: b.cti.resyncs >= 1)  # logged in, and resynced from Asterisk
        print(f"\n{backend}: the standby's bridge logged in {time.monotonic() - stopped:.3f} s after the other stopped")
        assert time.monotonic() - stopped < 5.0
        assert b.cti.health()["leader"]["term"] == 2 and fake.connections == 2
        assert {t.get_name() for t in b._active} == {"call-filing", "call-witness", "catalog"}
    finally:
        await b.stop()
        await a.stop()
        await fake.stop()
    assert b._active == [] and not b.cti.link.logged_in


async def test_a_node_that_loses_its_lease_stops_its_bridge_and_its_tasks_and_wins_again_later(
        tmp_path: Path) -> None:
    fake = await FakeAmi().start()
    settings = Settings(var_dir=tmp_path / "var", ami_port=fake.port, ami_secret="pw", cti_lease_check_s=0.2)
    node = await asyncio.to_thread(compose.build, settings, {"cti"})
    try:
        await node.start()
        await until(lambda: node.cti.link.logged_in)
        lease = node.leader.lease
        lease.path.unlink()  # the lock file replaced: another process could lock the new one
        await until(lambda: not node.leader.active, 3)
        assert node._active == [] and not node.cti.link.logged_in  # no AMI, no witness, no filer
        await until(lambda: node.leader.active, 3)  # the file is free: won again, and the same bridge restarts
        await until(lambda: node.cti.link.logged_in)
        assert node.cti.health()["leader"]["stepped_down"] == 1 and node.cti.link.logins == 2
    finally:
        await node.stop()
        await fake.stop()


def _call(i: int, *, reconstructed: bool = False) -> FinishedCall:
    t0 = 1763866021.0 + i * 60
    return FinishedCall(call_id=f"{t0:.0f}.{i}", caller_num=f"139530188{i:02d}", queue="hotline", seat="8001",
                        operator="" if reconstructed else "op1024", offered_at=t0, answered_at=t0 + 3,
                        ended_at=t0 + 50, wait_ms=3000, within_rule=True, talk_s=47.0, seats_rung=("8001",),
                        reconstructed=reconstructed)


def test_a_call_filed_by_the_dying_and_the_new_bridge_at_once_is_stored_once(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:  # noqa: F811
    url = database(backend, tmp_path, request)
    old, new = (compose.build(Settings(var_dir=tmp_path / name, database_url=url), set()) for name in ("old", "new"))
    try:
        calls = [_call(i) for i in range(12)]
        barrier = threading.Barrier(2)

        def bridge(node: compose.Node) -> None:
            for call in calls:
                barrier.wait()  # both report the same call at the same instant
                assert node.filer.file(call)

        threads = [threading.Thread(target=bridge, args=(n,)) for n in (old, new)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        # the new bridge's witness rebuilds one from Asterisk's records as well: the bridge's report stays
        assert new.filer.file(_call(3, reconstructed=True))
        with new.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT uniqueid, count(*), max(operator) FROM call_record "
                                        "GROUP BY uniqueid")).all()
        assert sorted(r[0] for r in rows) == sorted(c.call_id for c in calls)
        assert {r[1] for r in rows} == {1} and {r[2] for r in rows} == {"op1024"}
        assert new.store.calls.get(calls[3].call_id).reconstructed is False
        assert old.filer.pending == new.filer.pending == 0
    finally:
        old.engine.dispose()
        new.engine.dispose()


def test_the_lease_settings_are_bounded() -> None:
    for bad in ({"cti_lease_check_s": 0}, {"cti_lease_timeout_s": -1}, {"cti_lease_dead_s": 1}):
        with pytest.raises(pydantic.ValidationError):
            Settings(**bad)
    assert Settings().cti_lease_margin_s == 2.0  # 4 s − (1 s + 1 s): the holder is gone 2 s before PostgreSQL frees it


@pytest.mark.postgres
def test_production_refuses_a_lease_that_could_run_two_bridges_at_once(tmp_path: Path, postgres_server) -> None:  # noqa: F811
    url = postgres_server.create_database()
    unsafe = Settings(var_dir=tmp_path, database_url=url, mode="production", cti_lease_check_s=2,
                      cti_lease_timeout_s=2, cti_lease_dead_s=4)
    node = compose.build(unsafe, {"cti"})
    try:
        assert any("CTI 话务桥租约设置不安全" in p for p in problems(unsafe, node.accounts, node.engine))
        safe = unsafe.model_copy(update={"cti_lease_check_s": 1.0, "cti_lease_timeout_s": 1.0})
        assert not any("CTI" in p for p in problems(safe, node.accounts, node.engine))
        demo = unsafe.model_copy(update={"mode": "demo"})
        assert problems(demo, node.accounts, node.engine) == []  # demo warns in the log only
    finally:
        node.engine.dispose()
