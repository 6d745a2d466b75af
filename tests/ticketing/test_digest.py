"""What leads and reports read across tickets: the lead's queue, open emergencies, report facts."""

from __future__ import annotations

from datetime import timedelta

from tests.ticketing.conftest import intake


def test_the_lead_queue_holds_extension_requests_returned_tickets_and_open_emergencies(svc, people, depts):
    asked = svc.tickets.create(intake(title="需延期的工单"), people.operator)
    svc.actions.transfer(asked.id, depts["水务"], "请办理", people.operator)
    svc.actions.accept(asked.id, people.water)
    svc.actions.act(asked.id, "request_extension", {"days": 5, "reason": "需协调多个单位"}, people.water)
    back = svc.tickets.create(intake(title="退回的工单", caller_number="13853099999"), people.operator)
    svc.actions.transfer(back.id, depts["城市"], "请办理", people.operator)
    svc.actions.return_(back.id, "不属于本单位职责", people.city)
    urgent = svc.tickets.create(intake(title="燃气泄漏", emergency=True, caller_number="13853088888"),
                                people.operator)
    queue = svc.digest.lead_queue()
    assert [t["id"] for t in queue["extensions"]] == [asked.id] and queue["extensions"][0]["extension_days"] == 5
    assert [t["id"] for t in queue["returned"]] == [back.id]
    assert queue["returned"][0]["return_reason"] == "不属于本单位职责"
    assert [t["id"] for t in queue["emergencies"]] == [urgent.id]


def test_emergencies_since_a_moment_and_facts_of_a_period(svc, people, depts, clock):
    start = clock.now
    old = svc.tickets.create(intake(title="早先的紧急事项", emergency=True), people.operator)
    clock.advance(hours=2)
    new = svc.tickets.create(intake(title="燃气泄漏", emergency=True, caller_number="13853088888"), people.operator)
    assert [e.id for e in svc.digest.emergencies(start + timedelta(hours=1))] == [new.id]
    svc.actions.transfer(old.id, depts["城市"], "请办理", people.operator)
    svc.actions.return_(old.id, "不属于本单位职责", people.city)
    svc.actions.transfer(old.id, depts["水务"], "请办理", people.operator)
    facts = {f.id: f for f in svc.digest.facts(start, clock.now + timedelta(minutes=1))}
    assert set(facts) == {old.id, new.id}
    assert facts[old.id].returns == 1 and facts[old.id].department == "菏泽市水务集团有限公司"
    assert facts[new.id].emergency and facts[new.id].department == ""
    assert svc.digest.facts(clock.now + timedelta(minutes=1), clock.now + timedelta(days=1)) == []
