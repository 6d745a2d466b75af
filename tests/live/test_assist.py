"""The live assistant (live/assist.py): what each final sentence of a call brings to the operator.

Pure tests run on a fake :class:`Lookups`; the last ones run the real lookups on the demo city's
knowledge base and directory, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from hotline.db import make_engine
from live.assist import (
    CITIZEN,
    EMERGENCY_PHRASES,
    OPERATOR,
    Article,
    Assistant,
    Flag,
    Help,
    Proposal,
    keywords,
    matter_times,
    phone_number,
    squeeze,
    store_lookups,
)
from recordings.rules import RuleConfig
from tests.support import migrated
from tests.support.postgres import postgres_server  # noqa: F401  (session fixture)
from ticketing.context import StoreContext
from ticketing.db import migrate
from ticketing.seed import seed_demo
from ticketing.store import Store

FORBIDDEN = RuleConfig().forbidden_phrases  # the QA rules' defaults, as settings.qa_forbidden_phrases


class FakeLookups:
    """Articles and departments by the words they hold; records what it was asked."""

    def __init__(self, articles: dict[str, list[Article]] | None = None,
                 departments: dict[str, tuple[int, str]] | None = None) -> None:
        self.by_word = articles or {}
        self.depts = departments or {}
        self.asked: list[tuple[str, object]] = []

    def articles(self, text: str, limit: int) -> list[Article]:
        self.asked.append(("articles", (text, limit)))
        out: dict[int, Article] = {}
        for word, arts in self.by_word.items():
            if word in text:
                out.update((a.id, a) for a in arts if a.id not in out)
        return list(out.values())[:limit]

    def departments(self, text: str) -> list[tuple[int, str, tuple[str, ...]]]:
        self.asked.append(("departments", text))
        return [(i, name, (word,)) for word, (i, name) in self.depts.items() if word in text]


class Broken:
    def articles(self, text: str, limit: int) -> list[Article]:
        raise ConnectionError("database down")

    def departments(self, text: str) -> list[tuple[int, str, tuple[str, ...]]]:
        raise ConnectionError("database down")


def assistant(lookups: FakeLookups | Broken | None = None, max_articles: int = 3) -> Assistant:
    return Assistant(lookups or FakeLookups(), forbidden=FORBIDDEN, max_articles=max_articles)


def fields(help_: Help) -> dict[str, str]:
    return {p.field: p.value for p in help_.proposals}


def hear_all(a: Assistant, *sentences: str) -> dict[str, str]:
    """What the citizen's sentences proposed, the latest value of each field."""
    out: dict[str, str] = {}
    for s in sentences:
        out.update(fields(a.hear(CITIZEN, s)))
    return out


# --- words ------------------------------------------------------------------------------------


def test_vosk_spaces_go_between_chinese_characters_only() -> None:
    assert squeeze(" 我 家 楼下 在 施工 ") == "我家楼下在施工"
    assert squeeze("拨打 12345 热线") == "拨打12345热线"
    assert squeeze("WiFi password 不对") == "WiFi password不对"


@pytest.mark.parametrize(("spoken", "number"), [
    ("13812345678", "13812345678"),
    ("138 1234 5678", "13812345678"),
    ("一三八一二三四五六七八", "13812345678"),
    ("幺三九 零五三零 幺幺二二", "13905301122"),
    ("零五三零五五五一二三四", "0530-5551234"),
    ("零五三零杠五五五一二三四", "0530-5551234"),
    ("零一零 八八八八 六六六六", "010-88886666"),
    ("五五五一二三四", "5551234"),
    ("一二三", ""),
    ("一二三四五六七八九", ""),  # nine digits: no number
    ("三七一七二一一九九零零一零一一二三四", ""),  # an ID card number is no contact
    ("12345", ""),
])
def test_phone_numbers_are_read_from_digits_and_chinese_numerals(spoken: str, number: str) -> None:
    assert phone_number(spoken) == number


def test_time_expressions_are_kept_as_told() -> None:
    assert matter_times("昨晚十点开始施工") == ["昨晚十点开始"]
    assert matter_times("今天上午停的水") == ["今天上午"]
    assert matter_times("三天前就坏了") == ["三天前"]
    assert matter_times("上周就反映过") == ["上周"]
    assert matter_times("12月3日晚上八点半") == ["12月3日晚上八点半"]
    assert matter_times("十二月三号下午") == ["十二月三号下午"]
    assert matter_times("每天晚上十点以后") == ["每天晚上十点以后"]
    assert matter_times("快一点好吗，有两点要求") == []  # no clock


def test_keywords_are_the_content_words_without_their_parts() -> None:
    assert keywords("我想问一下住房公积金怎么提取") == ["住房", "公积金", "提取"]
    words = keywords("中华路那个工地每天晚上施工噪音特别大")
    assert {"工地", "施工", "噪音"} <= set(words)
    assert not {"每天", "晚上", "那个", "中华"} & set(words)
    assert keywords("一三八一二三四五六七八") == []


# --- fields -----------------------------------------------------------------------------------


def test_a_phone_number_in_digits_or_chinese_numerals_is_proposed_as_contact() -> None:
    a = assistant()
    h = a.hear(CITIZEN, "我 的 电话 是 一 三 八 幺 二 三 四 五 六 七 八")
    assert Proposal("contact", "13812345678", "联系方式", "我的电话是一三八幺二三四五六七八") in h.proposals
    assert fields(a.hear(CITIZEN, "或者打座机零五三零五五五一二三四"))["contact"] == "0530-5551234"
    assert "contact" not in fields(a.hear(CITIZEN, "我在一二三号院住了十年"))


def test_a_number_read_out_over_two_or_three_sentences_is_put_together() -> None:
    a = assistant()
    assert "contact" not in hear_all(a, "我的手机号是一三八")
    assert "contact" not in hear_all(a, "一二三四")
    assert hear_all(a, "五六七八")["contact"] == "13812345678"
    b = assistant()
    assert "contact" not in hear_all(b, "电话一三八", "我住在中华路", "一二三四五六七八")  # not one number


def test_addresses_split_into_the_callers_home_and_the_matters_place() -> None:
    a = assistant()
    got = hear_all(a, "我 家 住 在 牡丹区 中华路 丽景花园 三 号 楼")
    assert got["caller_address"] == "牡丹区中华路丽景花园三号楼"
    assert got["district"] == "牡丹区"
    assert "matter_place" not in got
    got = hear_all(a, "我要投诉人民路和长江路交叉口那个烧烤摊")
    assert got["matter_place"] == "人民路和长江路交叉口"
    assert hear_all(a, "菏泽市定陶区和平路一百二十三号门口")["matter_place"] == "菏泽市定陶区和平路一百二十三号门口"
    assert hear_all(assistant(), "曹县那边有人占道经营")["district"] == "曹县"


def test_no_address_in_words_that_only_look_like_one() -> None:
    got = hear_all(assistant(), "我们小区停水了", "十二月三号晚上我打人民医院的电话", "走路的时候摔了一跤",
                   "我去超市买东西")
    assert "caller_address" not in got and "district" not in got
    assert got.get("matter_place") == "人民医院"  # a place, without the 打 before it


def test_the_most_detailed_time_told_is_proposed() -> None:
    a = assistant()
    assert hear_all(a, "昨晚十点开始施工")["matter_time"] == "昨晚十点开始"
    assert "matter_time" not in hear_all(a, "已经三天了")  # shorter: says less
    assert hear_all(a, "其实从上周三晚上十点以后就开始了")["matter_time"] == "上周三晚上十点以后"
    assert fields(assistant().hear(CITIZEN, "今天上午家里停水了"))["matter_time"] == "今天上午"


@pytest.mark.parametrize(("said", "category", "sub"), [
    ("我要投诉中华路的烧烤摊", "投诉举报", "投诉"),
    ("我要举报一家黑作坊", "投诉举报", "举报"),
    ("我想咨询一下公积金怎么提取", "咨询", None),
    ("我有个建议公交车能不能晚点收车", "建议", None),
    ("我想求助一下老人走丢了", "求助", None),
    ("我要表扬一下你们的工作人员", "表扬", None),
    ("我们这路灯坏了", "一般诉求", None),
])
def test_the_category_comes_from_cue_words(said: str, category: str, sub: str | None) -> None:
    got = fields(assistant().hear(CITIZEN, said))
    assert got["category"] == category
    assert got.get("subcategory") == sub


def test_a_complaint_is_not_turned_into_an_enquiry_by_a_question_later() -> None:
    a = assistant()
    assert hear_all(a, "我们这停电了")["category"] == "一般诉求"
    assert hear_all(a, "我要投诉供电公司")["category"] == "投诉举报"  # stronger: replaces
    assert "category" not in hear_all(a, "我想问一下什么时候能来电")  # weaker: does not


def test_the_department_suggested_is_proposed_by_id_and_only_when_it_changes() -> None:
    lookups = FakeLookups(departments={"噪音": (1, "菏泽市城市管理局")})
    a = assistant(lookups)
    h = a.hear(CITIZEN, "工地 噪音 很大")
    assert Proposal("lead_department_id", "1", "承办单位", "工地噪音很大", "菏泽市城市管理局") in h.proposals
    assert "lead_department_id" not in fields(a.hear(CITIZEN, "吵得睡不着"))
    # the whole account so far is matched, without the call's kind (投诉 names no department)
    assert lookups.asked[-1] == ("departments", "工地噪音很大。吵得睡不着")
    a.hear(CITIZEN, "我要投诉他们")
    assert "投诉" not in lookups.asked[-1][1]


def test_the_title_and_course_summarise_the_first_substantive_sentences() -> None:
    a = assistant()
    assert not {"title", "matter_course"} & set(hear_all(a, "喂 你好", "嗯"))
    got = hear_all(a, "喂 你好 我 要 投诉 一下 中华路 那个 工地")
    assert got["title"] == "中华路那个工地"
    assert got["matter_course"] == "中华路那个工地。"
    got = hear_all(a, "每天晚上十点以后还在施工噪音特别大吵得根本睡不着觉")
    # the first clause is too short to stand alone: the title runs on to its 30 characters
    assert got["title"] == "中华路那个工地，每天晚上十点以后还在施工噪音特别大吵得根本睡"
    assert got["matter_course"] == "中华路那个工地，每天晚上十点以后还在施工噪音特别大吵得根本睡不着觉。"
    # a number, a courtesy: nothing for the summary
    assert hear_all(a, "我的电话是一三八一二三四五六七八", "好的 谢谢 再见") == {"contact": "13812345678"}
    courses = [hear_all(a, f"第{n}天他们说是在赶工期可是也不能每天晚上都这样吧").get("matter_course")
               for n in "一二三四五六七八"]
    full = [c for c in courses if c]
    assert len(full[-1]) == 200 and courses[-1] is None  # full at 200 characters: no more proposals
    assert all(len(c) < 200 for c in full[:-1])
    assert "title" not in hear_all(a, "还有一件事情就是附近的路灯也不亮了好几天")  # the title is settled


def test_title_is_cut_at_a_comma_when_one_is_near_the_end() -> None:
    got = hear_all(assistant(), "我们小区门口那条路的路灯坏了", "晚上出门黑乎乎的老人孩子都不敢出去走路")
    assert got["title"] == "我们小区门口那条路的路灯坏了"
    assert len(got["title"]) <= 30


def test_a_field_is_proposed_again_only_when_its_value_changes() -> None:
    a = assistant()
    assert fields(a.hear(CITIZEN, "我的电话是一三八一二三四五六七八"))["contact"] == "13812345678"
    assert "contact" not in fields(a.hear(CITIZEN, "对一三八一二三四五六七八"))
    h = a.hear(CITIZEN, "不对不对是一三九一二三四五六七八")
    assert fields(h)["contact"] == "13912345678"
    assert [p.source for p in h.proposals if p.field == "contact"] == ["不对不对是一三九一二三四五六七八"]


def test_the_operators_words_propose_no_field_and_push_no_article() -> None:
    lookups = FakeLookups({"噪音": [Article(1, "夜间施工噪音：办理条件", "夜间施工噪音", ("噪音",))]},
                          {"噪音": (1, "菏泽市城市管理局")})
    a = assistant(lookups)
    h = a.hear(OPERATOR, "您是说中华路工地昨晚十点施工噪音扰民对吧 您的电话是一三八一二三四五六七八 我帮您投诉")
    assert h == Help() and not h
    assert lookups.asked == []
    # and the citizen saying the same is still news
    assert fields(a.hear(CITIZEN, "对 我 的 电话 是 一三八一二三四五六七八"))["contact"] == "13812345678"


# --- articles ---------------------------------------------------------------------------------


ASPECTS = ("办理条件", "所需材料", "办理渠道和时限", "常见问题")


def topic(first_id: int, name: str, *hits: str) -> list[Article]:
    return [Article(first_id + i, f"{name}：{aspect}", name, hits) for i, aspect in enumerate(ASPECTS)]


def test_articles_are_pushed_once_and_a_few_per_sentence() -> None:
    noise = topic(73, "夜间施工噪音", "施工", "噪音")
    lookups = FakeLookups({"噪音": [*noise, Article(81, "社会生活噪声：办理条件", "社会生活噪声", ("噪音",))],
                           "施工": noise})
    a = assistant(lookups, max_articles=3)
    first = a.hear(CITIZEN, "工地晚上施工噪音太大了")
    assert [x.id for x in first.articles] == [73, 74, 75]  # a topic matching fewer words waits
    assert first.articles[0] == Article(73, "夜间施工噪音：办理条件", "夜间施工噪音", ("施工", "噪音"))
    assert [x.id for x in a.hear(CITIZEN, "施工噪音吵得睡不着").articles] == [76, 81]  # never the same twice
    assert a.hear(CITIZEN, "噪音施工").articles == ()
    # asked for more than it pushes: enough to find new ones behind those pushed already
    assert [q[1][1] for q in lookups.asked if q[0] == "articles"] == [9, 12, 14]


def test_two_matters_in_one_sentence_each_get_their_article_first() -> None:
    water, power = topic(57, "停水通知和供水报修", "停水"), topic(65, "停电查询和用电报修", "停电")
    a = assistant(FakeLookups({"停水": water, "停电": power}), max_articles=3)
    assert [x.id for x in a.hear(CITIZEN, "我们楼停水了也停电了").articles] == [57, 65, 58]


def test_the_call_kind_is_not_looked_up_as_the_matter() -> None:
    lookups = FakeLookups({"投诉": [Article(45, "拖欠工资投诉：办理条件", "拖欠工资投诉", ("投诉",))]})
    a = assistant(lookups)
    assert a.hear(CITIZEN, "我要投诉").articles == ()


# --- flags ------------------------------------------------------------------------------------


def test_a_forbidden_phrase_of_the_operator_is_flagged_once_per_call() -> None:
    a = assistant()
    h = a.hear(OPERATOR, "这个 我 不 知道")
    assert h.flags == (Flag("forbidden", "我不知道", OPERATOR, "这个我不知道"),)
    assert a.hear(OPERATOR, "我不知道啊").flags == ()
    assert [f.phrase for f in a.hear(OPERATOR, "这个你自己去住建局问吧").flags] == ["你自己去XX部门问吧"]
    assert a.hear(CITIZEN, "说完了没有").flags == ()  # the citizen's words are not the operator's manners
    assert [f.phrase for f in a.hear(OPERATOR, "说完了没有").flags] == ["说完了没有"]


def test_an_emergency_cue_of_the_citizen_is_flagged_once_per_call() -> None:
    expected = {"救命", "着火", "火灾", "煤气泄漏", "有人跳楼", "自杀", "不想活了", "爆炸", "触电", "溺水", "打人",
                "持刀"}
    assert expected <= set(EMERGENCY_PHRASES)
    a = assistant()
    h = a.hear(CITIZEN, "救命 啊 楼下 着火 了")
    assert [(f.kind, f.phrase, f.speaker) for f in h.flags] == [("emergency", "救命", CITIZEN),
                                                                  ("emergency", "着火", CITIZEN)]
    assert h.flags[0].text == "救命啊楼下着火了"
    assert a.hear(CITIZEN, "着火了着火了").flags == ()
    assert [f.phrase for f in a.hear(CITIZEN, "闻到煤气泄漏的味道").flags] == ["煤气泄漏"]
    assert a.hear(OPERATOR, "您说哪里着火了").flags == ()  # the operator repeating it is no new emergency


def test_words_that_hold_a_cue_but_are_none_are_not_flagged() -> None:
    a = assistant()
    assert a.hear(CITIZEN, "我打人民医院的电话没人接").flags == ()
    assert a.hear(CITIZEN, "楼道里堆满杂物有火灾隐患").flags == ()
    assert [f.phrase for f in a.hear(CITIZEN, "有人在打人").flags] == ["打人"]


def test_the_phrase_lists_are_the_callers_to_choose() -> None:
    a = Assistant(FakeLookups(), forbidden=["没办法"], emergency=["快来人"])
    assert [f.phrase for f in a.hear(OPERATOR, "这个我也没办法").flags] == ["没办法"]
    assert a.hear(OPERATOR, "我不知道").flags == ()
    assert [f.phrase for f in a.hear(CITIZEN, "快来人啊").flags] == ["快来人"]
    assert a.hear(CITIZEN, "救命").flags == ()


def test_a_store_that_fails_costs_the_lookups_only() -> None:
    a = assistant(Broken())
    h = a.hear(CITIZEN, "救命 有人 要 跳楼 我的电话是一三八一二三四五六七八")
    assert h.articles == ()
    assert [f.phrase for f in h.flags] == ["救命", "要跳楼"]
    assert fields(h)["contact"] == "13812345678"
    assert "lead_department_id" not in fields(h)


def test_help_is_true_when_it_holds_anything() -> None:
    assert not Help()
    assert Help(flags=(Flag("emergency", "救命", CITIZEN, "救命"),))
    assert assistant().hear(CITIZEN, "  ") == Help()
    with pytest.raises(ValueError, match="speaker"):
        assistant().hear("lead", "您好")


# --- the real lookups on the demo city --------------------------------------------------------

NOW = datetime(2026, 11, 16, 1, 30, tzinfo=UTC)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def demo_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    if request.param == "sqlite":
        url = migrated.sqlite_url(tmp_path_factory.mktemp("live") / "tickets.db", migrate)
    else:
        server = request.getfixturevalue("postgres_server")
        url = migrated.postgres_url(server, migrate)
    engine = make_engine(url)
    seed_demo(engine, tickets=0, now=NOW)  # the directory and the knowledge base
    yield Store.on(StoreContext(engine))
    engine.dispose()
    if request.param == "postgres":
        server.drop_database(url.rsplit("/", 1)[-1])


def test_noise_at_night_pushes_the_seeded_article_and_suggests_the_city_management(demo_store: Store) -> None:
    city = next(d for d in demo_store.directory.list() if d.short_name == "城管局")
    a = Assistant(store_lookups(demo_store), forbidden=FORBIDDEN)
    assert a.hear(CITIZEN, "喂 你好 我 要 投诉").articles == ()  # nothing about what yet
    h = a.hear(CITIZEN, "中华路 那个 工地 每天 晚上 施工 噪音 特别 大 吵 得 睡 不 着")
    assert len(h.articles) == 3
    assert {x.topic for x in h.articles} == {"夜间施工噪音"}
    assert all({"施工", "噪音"} <= set(x.hits) for x in h.articles)
    assert fields(h)["lead_department_id"] == str(city.id)
    assert fields(h)["matter_place"] == "中华路"
    again = a.hear(CITIZEN, "施工 噪音 太 吵 了")
    assert [x.topic for x in again.articles] == ["夜间施工噪音"]  # the fourth aspect, then no more
    assert a.hear(CITIZEN, "施工噪音").articles == ()
    assert "lead_department_id" not in fields(again)


def test_the_real_lookups_rank_by_the_words_an_article_holds(demo_store: Store) -> None:
    lookups = store_lookups(demo_store)
    found = lookups.articles("我想问一下住房公积金怎么提取", 5)
    assert [x.topic for x in found[:4]] == ["住房公积金提取"] * 4
    assert found[0].hits == ("住房", "公积金", "提取")
    assert found[4].topic == "住房公积金贷款"
    assert lookups.articles("居住证需要什么材料", 1)[0].title == "居住证办理：所需材料"
    assert lookups.articles("怎么办理", 5) == []  # a word in most of the base selects nothing
    water = next(d for d in demo_store.directory.list() if d.short_name == "水务集团")
    assert lookups.departments("我们小区停水了三天")[0][:2] == (water.id, water.name)


def test_words_of_a_model_in_another_language_keep_their_spaces_and_find_articles() -> None:
    # the tests' model is Korean: jieba would cut its words letter by letter, and a squeeze that
    # joined them would make one word of a sentence
    class Kb:
        def articles(self, text: str, limit: int) -> list[Article]:
            return [Article(7, "도로 안내", "", ("대교",))] if "대교" in text.split() else []

        def departments(self, text: str) -> list[tuple[int, str, tuple[str, ...]]]:
            return []

    kb = Kb()
    got = Assistant(kb, forbidden=[]).hear("citizen", "멈 이니 바리 이어 대교")
    assert [a.id for a in got.articles] == [7]
    assert keywords("멈 이니 바리 이어 대교") == ["이니", "바리", "이어", "대교"]
    assert {p.field: p.value for p in got.proposals}["matter_course"] == "멈 이니 바리 이어 대교。"
    assert squeeze("我 家 楼下 , abc 대교") == "我家楼下, abc 대교"
