"""Chinese full text on both backends: 2-character words (停水) and 4-character ones (噪音扰民)."""

from __future__ import annotations

import pytest

from tests.ticketing.conftest import intake
from ticketing.search import fts5_phrase, like_pattern, terms

MATTERS = [
    ("丽景花园停水", "小区从前天晚上开始停水，没有接到停水通知"),
    ("中华路工地噪音扰民", "工地每天晚上十一点以后还在施工，噪音扰民"),
    ("广场舞噪音扰民", "门口广场跳广场舞，音响声音很大，噪音扰民到十点以后"),
    ("长江路路灯不亮", "一段路灯不亮好几天了，晚上出行不安全"),
    ("水管破裂", "自来水管道破裂，路面积水，水压很低"),  # 水 everywhere, but no 停水
    ("噪音检测咨询", "咨询家里装修噪音是否需要检测"),  # 噪音 without 扰民
    ("100%_退费", '健身房预付卡 "AND" 退费 OR 失败'),
]


@pytest.fixture
def tickets(svc, people):
    ids = {}
    for i, (title, course) in enumerate(MATTERS):
        t = svc.tickets.create(
            intake(title=title, matter_course=course, caller_number=f"1385301{i:04d}", matter_place=f"地点{i}"),
            people.operator,
        )
        ids[title] = t.id
    return ids


def _found(svc, people, q):
    page = svc.tickets.search({"q": q, "per_page": 50}, people.lead)
    return {t.title for t in page.items}, page.total


def test_two_characters(svc, people, tickets):
    titles, total = _found(svc, people, "停水")
    assert titles == {"丽景花园停水"} and total == 1


def test_four_characters(svc, people, tickets):
    titles, total = _found(svc, people, "噪音扰民")
    assert titles == {"中华路工地噪音扰民", "广场舞噪音扰民"} and total == 2


def test_one_character_and_three(svc, people, tickets):
    assert _found(svc, people, "灯")[0] == {"长江路路灯不亮"}
    assert _found(svc, people, "广场舞")[0] == {"广场舞噪音扰民"}


def test_several_terms_must_all_match(svc, people, tickets):
    assert _found(svc, people, "噪音 广场")[0] == {"广场舞噪音扰民"}
    assert _found(svc, people, "噪音 检测")[0] == {"噪音检测咨询"}
    assert _found(svc, people, "停水 噪音")[0] == set()


@pytest.mark.parametrize("q", ['"AND"', "AND", "OR 失败", "100%", "%", "_", '"', "*", "NEAR(退费)", "'; drop"])
def test_user_input_is_never_query_syntax(svc, people, tickets, q):
    titles, _ = _found(svc, people, q)
    # either the literal text or nothing: never "everything" and never an error
    assert titles <= {"100%_退费"}


def test_literal_wildcards_match_literally(svc, people, tickets):
    assert _found(svc, people, "100%_")[0] == {"100%_退费"}
    assert _found(svc, people, '"AND"')[0] == {"100%_退费"}


def test_search_with_filters_and_paging(svc, people, tickets):
    page = svc.tickets.search({"q": "噪音", "per_page": 2, "page": 1, "sort": "created_at"}, people.lead)
    assert page.total == 3 and len(page.items) == 2
    page2 = svc.tickets.search({"q": "噪音", "per_page": 2, "page": 2, "sort": "created_at"}, people.lead)
    assert len(page2.items) == 1
    assert {t.id for t in page.items} | {page2.items[0].id} == {
        tickets["中华路工地噪音扰民"],
        tickets["广场舞噪音扰民"],
        tickets["噪音检测咨询"],
    }


def test_the_count_is_capped_for_speed(svc, people, tickets):
    page = svc.tickets.search({"q": "噪音"}, people.lead, count_cap=2)
    assert page.total == 2 and page.total_capped


def test_knowledge_base_and_directory_search_the_same_way(svc, people, depts):
    svc.kb.save(
        {"title": "住房公积金提取：所需材料", "body": "身份证、银行卡、租房合同", "topic": "公积金"},
        people.admin,
    )
    svc.kb.save({"title": "医保异地就医备案", "body": "国家医保服务平台APP办理", "topic": "医保"}, people.admin)
    assert [a.title for a in svc.kb.search("医保")] == ["医保异地就医备案"]  # 2 characters
    assert [a.title for a in svc.kb.search("公积金")] == ["住房公积金提取：所需材料"]  # 3 characters
    assert [a.title for a in svc.kb.search("租房合同")] == ["住房公积金提取：所需材料"]
    assert svc.kb.search("火星移民") == []
    assert [d.name for d in svc.directory.list("停水")] == ["菏泽市水务集团有限公司"]
    assert [d.name for d in svc.directory.list("夜间施工噪音")] == ["菏泽市城市管理局"]


def test_helpers():
    assert terms("  停水  噪音扰民 ") == ["停水", "噪音扰民"]
    assert fts5_phrase('a"b') == '"a""b"'
    assert like_pattern("50%") == "%50\\%%"


def test_newest_first_on_every_text_path_and_with_filters(svc, people, tickets, depts, clock):
    clock.advance(hours=1)
    late = svc.tickets.create(intake(title="又一起噪音扰民", matter_course="夜里噪音扰民，还停水了"), people.operator)
    svc.actions.transfer(late.id, depts["城市"], "请处理", people.operator)
    for q in ("噪音扰民", "停水", "噪音 扰民 停水"):
        items = svc.tickets.search({"q": q}, people.lead).items
        assert items[0].id == late.id, q
        assert [t.created_at for t in items] == sorted((t.created_at for t in items), reverse=True)
    filtered = svc.tickets.search({"q": "噪音扰民", "status": ["transferred"]}, people.lead)
    assert [t.id for t in filtered.items] == [late.id] and filtered.total == 1
    scoped = svc.tickets.search({"q": "噪音扰民"}, people.city)
    assert [t.id for t in scoped.items] == [late.id]
    by_due = svc.tickets.search({"q": "噪音扰民", "sort": "-current_due"}, people.lead)
    assert by_due.total == 3


def test_doctests():
    import doctest

    import ticketing.search

    assert doctest.testmod(ticketing.search).failed == 0


def _plan(svc, sql: str, params: dict) -> str:
    """The query plan of ``sql`` (SQLite: EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN, sequential scans off,
    since on a handful of rows a scan is rightly cheaper — the question is whether the index is usable)."""
    import sqlalchemy as sa

    with svc.ctx.engine.connect() as c:
        if c.dialect.name == "sqlite":
            return " ".join(str(r) for r in c.execute(sa.text("EXPLAIN QUERY PLAN " + sql), params))
        c.execute(sa.text("SET enable_seqscan = off"))
        return " ".join(r[0] for r in c.execute(sa.text("EXPLAIN " + sql), params))


def test_a_two_character_word_nothing_contains_is_an_index_lookup_not_a_scan(svc, people, tickets):
    # 停水 and 路灯 have their own index (migration 0009): a pair that matches nothing is an empty lookup
    assert _found(svc, people, "赵钱")[0] == set()
    if svc.ctx.dialect == "sqlite":
        plan = _plan(svc, "SELECT ticket.id FROM ticket JOIN ticket_bigram ON ticket_bigram.rowid = ticket.id "
                     "WHERE ticket_bigram MATCH :m ORDER BY ticket_bigram.rowid DESC LIMIT 20", {"m": '"赵钱"'})
        assert "VIRTUAL TABLE INDEX" in plan and "SCAN ticket " not in plan, plan
    else:
        plan = _plan(svc, "SELECT id FROM ticket WHERE hotline_bigrams(search_text) @> ARRAY[:w]::text[]",
                     {"w": "赵钱"})
        assert "ix_ticket_search_bigram" in plan, plan


def test_the_pair_index_follows_every_write(svc, people, tickets, clock):
    import sqlalchemy as sa

    gone = tickets["长江路路灯不亮"]
    with svc.ctx.engine.begin() as c:
        c.execute(sa.text("DELETE FROM ticket_department WHERE ticket_id = :i"), {"i": gone})
        c.execute(sa.text("DELETE FROM ticket_event WHERE ticket_id = :i"), {"i": gone})
        c.execute(sa.text("DELETE FROM ticket WHERE id = :i"), {"i": gone})
    assert _found(svc, people, "路灯")[0] == set()
    t = svc.tickets.create(intake(title="楼道照明", matter_course="楼道的灯坏了"), people.operator)
    assert _found(svc, people, "照明")[0] == {"楼道照明"}
    svc.tickets.update(t.id, {"matter_course": "楼道的路灯坏了，现在也停水"}, people.operator)
    assert _found(svc, people, "路灯")[0] == {"楼道照明"}
    assert _found(svc, people, "停水")[0] == {"丽景花园停水", "楼道照明"}
    assert _found(svc, people, "坏了")[0] == {"楼道照明"}  # the old text's pairs gave way to the new one's
    svc.tickets.update(t.id, {"matter_course": "已经修好"}, people.operator)
    assert _found(svc, people, "坏了")[0] == set()


def test_pairs_combine_with_each_other_with_longer_words_and_with_punctuation(svc, people, tickets):
    assert _found(svc, people, "停水 通知")[0] == {"丽景花园停水"}  # two pairs: both must match
    assert _found(svc, people, "停水 噪音")[0] == set()
    assert _found(svc, people, "噪音扰民 广场")[0] == {"广场舞噪音扰民"}  # a trigram word and a pair
    assert _found(svc, people, "裂，")[0] == {"水管破裂"}  # a pair with punctuation: read from the text
    assert _found(svc, people, "OR")[0] == {"100%_退费"}


def test_every_search_is_planned_with_its_own_words(svc, people, tickets):
    # psycopg prepares a statement after its 5th run; a plan made once for any word walks every ticket
    # by date for a word nothing contains. The engine keeps custom plans (hotline.db.make_engine).
    import sqlalchemy as sa

    if svc.ctx.dialect == "sqlite":
        pytest.skip("PostgreSQL's plan cache")
    with svc.ctx.engine.connect() as c:
        assert c.execute(sa.text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
    for _ in range(8):  # past the prepare threshold: still right
        assert _found(svc, people, "火星移民")[0] == set()
