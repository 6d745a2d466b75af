"""The operator's live assistant (issue #16): what each final sentence of a call brings to the screen.

One :class:`Assistant` per call hears the final sentences of both legs in order and answers each
with a :class:`Help` holding only what is new: knowledge-base articles for what the citizen says
(each once per call, with the words that matched); ticket fields proposed from the citizen's words,
named as ``ticketing.models.TicketBase`` names them, proposed again only when their value changes
(the operator accepts each: nothing is written here); live QA flags, a forbidden phrase from the
operator or an emergency cue from the citizen, each phrase once per call. The operator's sentences
count for the forbidden phrases only: an operator reading back a number is no second source of it.

In a call the seat dialled (``visit``: 回拨 / 回访) the citizen's words also propose the 回访 form's
two verdicts (:mod:`live.visit`). Each page offers the proposals its own form has a field for: the
回访 page the verdicts, the console the ticket's fields.

Pure logic: the store is reached through :class:`Lookups` (:func:`store_lookups` over the real one,
a fake in tests); its reads block, so the listening node calls ``hear`` off the event loop.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from live import visit as visits
from ticketing.duplicates import tokens
from ticketing.models import Category
from ticketing.schemas import FIELD_LABELS

if TYPE_CHECKING:
    from ticketing.schemas import ArticleRead
    from ticketing.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")
CITIZEN, OPERATOR = "citizen", "operator"
# the console form's own labels, so a proposal names the field the operator sees
LABELS = {**FIELD_LABELS, "lead_department_id": FIELD_LABELS["department_id"]}
EMERGENCY_PHRASES: tuple[str, ...] = (
    "救命", "着火", "起火", "火灾", "煤气泄漏", "燃气泄漏", "天然气泄漏", "爆炸", "触电", "溺水", "落水",
    "有人跳楼", "要跳楼", "跳河", "自杀", "不想活了", "活不下去", "打人", "砍人", "杀人", "持刀", "拿刀",
    "抢劫", "绑架", "困在电梯", "被困", "坍塌", "塌了", "昏迷", "晕倒", "中毒", "车祸")
# words holding a cue that are no emergency: "我打人民医院的电话", a fire hazard reported
NOT_EMERGENCY = ("打人民", "火灾隐患")


@dataclass(frozen=True, slots=True)
class Article:
    id: int
    title: str
    topic: str
    hits: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Proposal:
    field: str  # TicketBase's name (lead_department_id: the console form's department_id)
    value: str  # always text: the department's id as str
    label: str
    source: str  # the sentence it came from
    shown: str = ""  # what the operator reads when the value is an id (the department's name)


@dataclass(frozen=True, slots=True)
class Flag:
    kind: str  # "forbidden" | "emergency"
    phrase: str
    speaker: str
    text: str


@dataclass(frozen=True, slots=True)
class Help:
    articles: tuple[Article, ...] = ()
    proposals: tuple[Proposal, ...] = ()
    flags: tuple[Flag, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.articles or self.proposals or self.flags)


class Lookups(Protocol):
    """What the assistant asks the store."""

    def articles(self, text: str, limit: int) -> list[Article]: ...  # best first

    def departments(self, text: str) -> list[tuple[int, str, tuple[str, ...]]]: ...  # (id, name, hits), best first


# --- words ------------------------------------------------------------------------------------

# beside a Chinese character or punctuation only: the words of a Korean (or other) model keep their spaces
_CJK = "\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef"
_SPACES = re.compile(rf"(?<=[{_CJK}])\s+|\s+(?=[{_CJK}])")
_CN_NUM = "零〇洞一幺二两三四五六七八九十百千几"
_DIGIT = "0-9零〇洞一幺二两三四五六七八九"  # as numbers are read out, digit by digit
_TO_DIGITS = str.maketrans("零〇洞一幺二两三四五六七八九", "00011223456789")
_DIGIT_RUN = re.compile(rf"[{_DIGIT}](?:[\s\-－—杠]*[{_DIGIT}])*")


def squeeze(text: str) -> str:
    """Vosk's words joined again: no space next to a Chinese character ("我 家 楼下" → "我家楼下")."""
    return _SPACES.sub("", text).strip()


def phone_number(spoken: str) -> str:
    """A mobile or landline number read out in digits or Chinese numerals, or "".

    >>> [phone_number(s) for s in ("一三八 幺二三四 五六七八", "零五三零杠五五五一二三四", "5551234", "一二三")]
    ['13812345678', '0530-5551234', '5551234', '']
    """
    d = re.sub(r"\D", "", spoken.translate(_TO_DIGITS))
    if re.fullmatch(r"1[3-9]\d{9}", d):
        return d
    area = 3 if d.startswith(("01", "02")) else 4  # 010 and 02x: three-digit area codes
    if d.startswith("0") and len(d) - area in (7, 8):
        return f"{d[:area]}-{d[area:]}"
    return d if len(d) in (7, 8) and d[0] not in "01" else ""


_T = (  # one piece of a time expression, as citizens tell it
    r"大?前天|[昨今明后](?:天|日|晚|早|夜|儿)|当天|当晚|刚才|刚刚|最近|近期|[这前]几天|前段时间|这段时间"
    r"|[上这本下]个?(?:周|星期|礼拜|月)[一二三四五六日天末]?|[去今前]年|(?:周|星期|礼拜)[一二三四五六日天末]"
    rf"|好?[{_CN_NUM}0-9]+个?多?(?:天|周|星期|礼拜|月|年|小时|钟头|分钟)多?(?:前|以前|之前|以来|来|了)"
    rf"|(?:[{_CN_NUM}0-9]+年)?[{_CN_NUM}0-9]+月(?:[{_CN_NUM}0-9]+[日号])?"
    r"|早上|早晨|清晨|上午|中午|下午|傍晚|晚上|夜里|夜间|半夜|深夜|凌晨|白天|每天|每晚|天天"
    r"|[零〇一二两三四五六七八九十0-9]+[点时](?:半|一刻|多|钟|[零〇一二三四五六七八九十0-9]+分?)?|[0-2]?\d[:：][0-5]\d")
_TIME = re.compile(rf"(?:{_T})(?:[的到至\-]?(?:{_T}))*(?:左右|开始|以后|之后|以来|起|前后)?")
_NOT_TIME = {"一点", "两点", "一时"}  # 快一点, 有两点要求

_FUNC = "我你他她它们这那的了在是有从住说把被给让就都也还很太吗呢吧啊呀哦嗯咱去要想到过跟个"
_NAME = rf"[^\W\d_{_FUNC}]"
_SUFFIX = ("省|市|街道|社区|小区|花园|家园|新城|公馆|华府|大街|大道|胡同|广场|市场|公园|医院|学校|小学|中学|大厦"
           "|区|县|镇|乡|村|路|街|巷|弄|苑")
_NUMBERED = rf"[0-9{_CN_NUM}]+(?:号楼|号院|号|栋|幢|单元|层|楼|室)"
_BARE = "小区|社区|工地|门口|对面|旁边|附近|路口|交叉口"  # after a place, without a name of their own
_UNIT = rf"{_NAME}{{1,10}}?(?:{_SUFFIX})|{_NUMBERED}"
_PLACE = re.compile(rf"(?:{_UNIT})(?:{_UNIT}|{_BARE})*")
_LEAD = re.compile(r"^(?:投诉|举报|反映|咨询|请问|打听|然后|因为|所以|而且|但是|就是|位于|靠近|经过|路过|关于|还有|一下"
                   r"|家|打|找)+")  # words before a place that the name pattern cannot tell from it
_NOT_PLACE = {"城区", "市区", "郊区", "地区", "景区", "园区", "校区", "小区", "社区", "街道", "马路", "道路", "公路",
              "大街", "农村", "乡镇", "城市", "县城", "走路", "修路", "过马路", "医院", "学校", "公园", "广场"}
_HOME = re.compile(r"(?:住|家|住址|地址)[在是于]?$")

_CATEGORIES = (  # cue, category, subcategory, rank: a cue replaces an earlier one of no higher rank
    (re.compile(r"举报|检举|揭发"), Category.COMPLAINT, "举报", 3),
    (re.compile(r"投诉|曝光"), Category.COMPLAINT, "投诉", 3),
    (re.compile(r"表扬|锦旗|点赞|感谢信"), Category.PRAISE, "", 3),
    (re.compile(r"求助|救助|帮帮|求求你|走丢|被困"), Category.HELP, "", 3),
    (re.compile(r"建议|提个?意见"), Category.SUGGESTION, "", 2),
    (re.compile(r"咨询|问一下|问问|请问|想问|打听|了解一下|怎么办理|怎么申请|需要什么|在哪[里儿]?办"),
     Category.ENQUIRY, "", 2),
    (re.compile(r"反映|报修|维修|坏了|不亮|停水|停电|没水|没电"), Category.REQUEST, "", 1),
)

_CUES = re.compile(r"投诉|举报|检举|咨询|建议|求助|表扬|反映|请问")
_HEAD = re.compile(r"^(?:喂|你好|您好|哎|唉|嗯|呃|啊|哦|那个|这个|就是|然后|是这样的?|我想|我要|我是|跟你们|给你们"
                   r"|向你们|反映|投诉|举报|咨询|问题|问|一下|个|事情?|情况|[，,。.！!？?\s])+")
_COURTESY = re.compile(r"谢谢|再见|拜拜|好的|没有了|没了|麻烦你了|辛苦了|是的|对|好|行|嗯|呃|啊|哦|喂|你好|您好|你")
TITLE_MAX, COURSE_MAX = 30, 200
_KB_STOP = frozenset({  # talk, not matter: ticketing.duplicates.STOPWORDS are dropped already
    "每天", "晚上", "早上", "上午", "下午", "中午", "今天", "昨天", "明天", "每天晚上", "特别", "非常", "真的", "已经",
    "好几天", "几天", "需要", "什么", "怎么", "怎么办", "时候", "知道", "觉得", "然后", "就是", "还是", "这边", "那边",
    "家住", "东西", "事情", "电话", "号码", "联系", "地址", "住在"})
_NUMERIC = re.compile(rf"[{_CN_NUM}0-9]+[号天个月年点次层岁元块日周]?")


def matter_times(text: str) -> list[str]:
    """Time expressions as told.

    >>> matter_times("昨晚十点开始施工，从上周起每天晚上都这样")
    ['昨晚十点开始', '上周起', '每天晚上']
    """
    return [m.group() for m in _TIME.finditer(text) if m.group() not in _NOT_TIME]


def places(text: str) -> list[tuple[str, bool]]:
    """(address, told as the caller's home) in a sentence whose time expressions are masked.

    >>> places("我家住在牡丹区中华路丽景花园3号楼，噪音是投诉人民路工地")
    [('牡丹区中华路丽景花园3号楼', True), ('人民路工地', False)]
    """
    out = []
    for m in _PLACE.finditer(text):
        lead = _LEAD.match(m.group())
        place = m.group()[lead.end() if lead else 0:]
        if (len(place) < 3 and not place.endswith("县")) or place in _NOT_PLACE or place.endswith(("省", "市")):
            continue
        out.append((place, bool(_HOME.search(text[max(0, m.start() - 4):m.start() + (lead.end() if lead else 0)]))))
    return out


def district(place: str) -> str:
    """The 区/县 an address starts with (after its province and city), or ""."""
    m = re.match(r"(?:.{1,8}?[省市])*(.{1,10}?[区县])", place)
    d = m.group(1) if m else ""
    return "" if not d or d in _NOT_PLACE or d.endswith(("小区", "社区")) or re.search("[路街巷村镇乡号]", d) else d


_OTHER_WORDS = re.compile(r"[^\W\d_\u3400-\u9fff\uf900-\ufaff]{2,}")


def keywords(text: str, limit: int = 8) -> list[str]:
    """The words of a sentence worth looking up: jieba's, two characters or more, no stop words."""
    # jieba cuts Chinese; a model of another language (the Korean one of the tests) says words jieba
    # would split letter by letter, so those are taken as the recogniser spaced them
    found = [*tokens(text), *_OTHER_WORDS.findall(text)]
    words = [w for w in dict.fromkeys(found) if len(w) >= 2 and w not in _KB_STOP and not _NUMERIC.fullmatch(w)]
    # jieba's search mode also cuts 公积金 into 公积, 积金: the part would find what the whole does not mean
    return [w for w in words if not any(w != o and w in o for o in words)][:limit]


def _phrase(p: str) -> re.Pattern[str]:
    # "你自己去XX部门问吧": XX stands for any department's name, as in the QA rules (recordings.rules)
    return re.compile(".{0,12}?".join(re.escape(squeeze(x)) for x in p.replace("XX部门", "XX").split("XX")))


class Assistant:
    def __init__(self, lookups: Lookups, *, forbidden: Iterable[str], emergency: Iterable[str] = EMERGENCY_PHRASES,
                 max_articles: int = 3, visit: bool = False) -> None:
        self.lookups = lookups
        self.visit = visit  # a call the seat dialled: the 回访 verdicts are proposed too
        self.max_articles = max_articles
        self._phrases = {"forbidden": [(p, _phrase(p)) for p in forbidden if p.strip()],
                         "emergency": [(p, _phrase(p)) for p in emergency if p.strip()]}
        self._flagged: set[tuple[str, str]] = set()
        self._pushed: set[int] = set()
        self._proposed: dict[str, str] = {}
        self._rank = 0  # of the category proposed so far
        self._heard: list[str] = []  # the citizen's sentences
        self._course: list[str] = []
        self._tail = ""  # digits the last citizen sentence ended with: a number read out over two

    def hear(self, speaker: str, text: str) -> Help:
        if speaker not in (CITIZEN, OPERATOR):
            raise ValueError(f"unknown speaker {speaker!r}")
        text = squeeze(text)
        if not text:
            return Help()
        if speaker == OPERATOR:
            return Help(flags=self._flags("forbidden", speaker, text))
        # 投诉, 咨询… say what kind of call it is, not what about: 旅游投诉 is no answer to 我要投诉
        matter = _CUES.sub("，", text)
        self._heard.append(matter)
        articles = self._articles(matter)
        fields = self._fields(text) + (self._verdicts(text) if self.visit else ())
        return Help(articles, fields, self._flags("emergency", speaker, text))

    def _flags(self, kind: str, speaker: str, text: str) -> tuple[Flag, ...]:
        seen = text
        for word in NOT_EMERGENCY if kind == "emergency" else ():
            seen = seen.replace(word, "□" * len(word))
        out = []
        for phrase, pattern in self._phrases[kind]:
            if (kind, phrase) not in self._flagged and pattern.search(seen):
                self._flagged.add((kind, phrase))
                out.append(Flag(kind, phrase, speaker, text))
        return tuple(out)

    def _articles(self, text: str) -> tuple[Article, ...]:
        # more than we push: behind those pushed already, and to choose among topics
        found = self._ask(self.lookups.articles, text, 3 * self.max_articles + len(self._pushed))
        fresh = [a for a in found if a.id not in self._pushed]
        # of articles matching as many words, each topic's first before a topic's second: four aspects of
        # 停水 should not hide 停电 said in the same breath (the lookup's order breaks the ties)
        nth = [sum(b.topic == a.topic for b in fresh[:i]) for i, a in enumerate(fresh)]
        order = sorted(range(len(fresh)), key=lambda i: (-len(fresh[i].hits), nth[i], i))
        picked = [fresh[i] for i in order][: self.max_articles]
        self._pushed.update(a.id for a in picked)
        return tuple(picked)

    def _fields(self, text: str) -> tuple[Proposal, ...]:
        out: list[Proposal] = []

        def propose(field: str, value: str, shown: str = "") -> None:
            if value and self._proposed.get(field) != value:
                self._proposed[field] = value
                out.append(Proposal(field, value, LABELS[field], text, shown))

        propose("contact", self._contact(text))
        found = places(_TIME.sub("，", text))  # times masked: 十二月三号 is no house number
        propose("caller_address", max((p for p, home in found if home), key=len, default=""))
        propose("matter_place", max((p for p, home in found if not home), key=len, default=""))
        propose("district", next((d for p, _ in found if (d := district(p))), ""))
        # the most detailed time told so far: "好几天了" after "每天晚上十点以后" adds nothing to the form
        told = max(matter_times(text), key=len, default="")
        propose("matter_time", told if len(told) > len(self._proposed.get("matter_time", "")) else "")
        for cue, category, sub, rank in _CATEGORIES:
            if cue.search(text):
                if rank >= self._rank:
                    self._rank = rank
                    propose("category", category.value)
                    propose("subcategory", sub)
                break
        depts = self._ask(self.lookups.departments, "。".join(self._heard)[-2000:])
        propose("lead_department_id", str(depts[0][0]) if depts else "", depts[0][1] if depts else "")
        course = self._summary(text)
        if course:
            cut = course[:TITLE_MAX]
            comma = cut.rfind("，")
            propose("title", cut[:comma] if len(course) > TITLE_MAX and comma >= 8 else cut.rstrip("。"))
            propose("matter_course", course)
        return tuple(out)

    def _verdicts(self, text: str) -> tuple[Proposal, ...]:
        """The 回访 form's verdicts this sentence gives (each proposed again only when it changes), and
        the sentence as the reason when one of them is 不满意 (the form asks for it then)."""
        out: list[Proposal] = []
        found = visits.verdicts(text)
        for field, verdict in found:
            if self._proposed.get(field) != verdict:
                self._proposed[field] = verdict
                out.append(Proposal(field, verdict, visits.LABELS[field], text))
        if any(v == visits.UNSATISFIED for _, v in found) and self._proposed.get("result") != text:
            self._proposed["result"] = text
            out.append(Proposal("result", text, visits.LABELS["result"], text))
        return tuple(out)

    def _ask(self, lookup: Callable[..., list[T]], *args: object) -> list[T]:
        try:  # the store may be down: the flags and the other fields still matter
            return lookup(*args)
        except Exception:
            log.warning("live assistant: %s failed", getattr(lookup, "__name__", lookup), exc_info=True)
            return []

    def _contact(self, text: str) -> str:
        runs = list(_DIGIT_RUN.finditer(text))
        found = [n for m in runs if (n := phone_number(m.group()))]
        if not found and runs and runs[0].start() == 0 and self._tail:
            found = [n] if (n := phone_number(self._tail + runs[0].group())) else []
        ends = bool(runs) and not found and runs[-1].end() >= len(text.rstrip("，。,.！!？? "))
        whole = ends and len(runs) == 1 and runs[0].start() == 0  # the sentence is digits only: keep adding
        self._tail = ((self._tail if whole else "") + runs[-1].group())[-12:] if ends else ""
        return found[-1] if found else ""

    def _summary(self, text: str) -> str:
        """The citizen's first substantive sentences, without the greeting and fillers (≤ 200)."""
        body = re.sub(r"[嗯呃]+", "", _HEAD.sub("", text)).strip("，,。. ")
        rest = _COURTESY.sub("", _DIGIT_RUN.sub(lambda m: "" if len(m.group()) >= 3 else m.group(), body))
        # letters of any script: a sentence of a Korean (or other) model is a summary too
        if len(re.findall(r"[^\W\d_]", rest)) < 6 or sum(map(len, self._course)) >= COURSE_MAX:
            return ""
        self._course.append(body)
        return ("，".join(self._course) + "。")[:COURSE_MAX]


class StoreLookups:
    """The real lookups: the knowledge base word by word, the directory's department suggestion.

    ``Kb.search`` wants every term of its query, and a sentence's words are never all in one
    article: each word is searched alone, and the articles ranked by the words they hold. A word
    found in more than ``common`` articles (办理, 材料) ranks but never selects.
    """

    def __init__(self, store: Store, common: int = 20) -> None:
        self.store = store
        self.common = common

    def articles(self, text: str, limit: int) -> list[Article]:
        words = keywords(text)
        found: dict[int, ArticleRead] = {}
        selecting: set[str] = set()
        for w in words:
            rows = self.store.kb.search(w, limit=self.common + 1)
            if len(rows) <= self.common:
                selecting.add(w)
                found.update((a.id, a) for a in rows)
        scored = []
        for a in found.values():
            head = f"{a.title} {a.topic} {a.tags}"
            hits = [w for w in words if w in head or w in a.body]
            if any(w in head for w in hits if w in selecting) or len(hits) >= 2:  # a body's one word is chance
                scored.append((-sum(2 if w in head else 1 for w in hits), a.id, tuple(hits), a))
        return [Article(a.id, a.title, a.topic, hits) for _, _, hits, a in sorted(scored, key=lambda x: x[:2])][:limit]

    def departments(self, text: str) -> list[tuple[int, str, tuple[str, ...]]]:
        return [(s.id, s.name, s.hits) for s in self.store.directory.suggest(text)]


def store_lookups(store: Store) -> Lookups:
    return StoreLookups(store)
