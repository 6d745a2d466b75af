"""QA rules on one call's transcript: pure functions of words, times and a configuration.

A transcript is the words of both legs, each with its speaker (``citizen`` / ``operator``) and
times in seconds from the start of the recording, sorted by start. Every finding points to a
time span of the audio and to a span of that word list (``first_word``..``last_word``, inclusive),
so the replay page can mark the region and highlight the words.

>>> ws = words("operator", 0.5, "您好 12345 热线 1024 号 话务员 为您服务")
>>> [f.code for f in check(ws, RuleConfig(), job_number="1024")]
['closing_missing']
>>> display_text(["您好", "热线"]), display_text(["hello", "world"])
('您好热线', 'hello world')
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

CITIZEN, OPERATOR = "citizen", "operator"
_CN_DIGITS = str.maketrans("零〇一二三四五六七八九幺两", "0012345678912")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True, slots=True)
class Word:
    speaker: str
    word: str
    start: float
    end: float
    conf: float = 1.0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Word:
        return cls(d["speaker"], d["word"], float(d["start"]), float(d["end"]), float(d.get("conf", 1.0)))


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    title: str  # shown to QA staff, Chinese
    severity: str  # error | warn | info
    start: float
    end: float
    speaker: str
    first_word: int | None  # index into the transcript's word list
    last_word: int | None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RuleConfig:
    greeting_window_s: float = 10.0
    greeting_phrases: tuple[str, ...] = ("您好",)
    hotline_names: tuple[str, ...] = ("12345", "政务服务热线", "热线")
    closing_phrases: tuple[str, ...] = ("感谢您的来电", "再见")
    closing_window_s: float = 20.0
    forbidden_phrases: tuple[str, ...] = (
        "喂", "哦", "我不知道", "这是规定我没办法", "你自己去XX部门问吧", "说完了没有")
    silence_s: float = 8.0
    overlap_s: float = 1.0
    segment_gap_s: float = 0.5  # words closer than this belong to one stretch of speech
    spot_gap_s: float = 1.0  # spotted words closer than this may form one phrase
    speech_rate_cpm: tuple[float, float] = (120.0, 280.0)
    speech_rate_min_s: float = 10.0  # judge the rate only on this much operator speech
    dissatisfied: tuple[str, ...] = ("3",)  # survey digits that mean 不满意

    @classmethod
    def from_settings(cls, s: Any) -> RuleConfig:
        return cls(
            greeting_window_s=s.qa_greeting_window_s, greeting_phrases=tuple(s.qa_greeting_phrases),
            hotline_names=tuple(s.qa_hotline_names), closing_phrases=tuple(s.qa_closing_phrases),
            closing_window_s=s.qa_closing_window_s, forbidden_phrases=tuple(s.qa_forbidden_phrases),
            silence_s=s.qa_silence_s, overlap_s=s.qa_overlap_s, speech_rate_cpm=tuple(s.qa_speech_rate_cpm),
        )


# ------------------------------------------------------------------ text helpers


def display_text(tokens: Iterable[str]) -> str:
    """Join recognised words for reading: no space next to a Chinese character (Vosk's cn model
    separates every word), one space between other words."""
    out = ""
    for tok in tokens:
        if out and not (_CJK.search(out[-1]) or _CJK.search(tok[:1])):
            out += " "
        out += tok
    return out


def normalise(text: str) -> str:
    """Digits spoken in Chinese become Arabic (一零二四 → 1024) so job numbers and hotline
    numbers match either way; spaces go."""
    return text.translate(_CN_DIGITS).replace(" ", "")


def words(speaker: str, start: float, text: str, per_word_s: float = 0.4) -> list[Word]:
    """Words of a phrase with evenly spaced times: a helper for fixtures and doctests."""
    out, t = [], start
    for tok in text.split():
        dur = per_word_s * max(1, len(tok)) / 2
        out.append(Word(speaker, tok, round(t, 3), round(t + dur, 3)))
        t += dur + 0.05
    return out


@dataclass
class _Text:
    """One speaker's words as one string, with each character's word index (for span lookups)."""

    text: str = ""
    owner: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, ws: Sequence[Word], indexes: Iterable[int]) -> _Text:
        t = cls()
        for i in indexes:
            norm = normalise(ws[i].word)
            t.text += norm
            t.owner += [i] * len(norm)
        return t

    def find(self, pattern: re.Pattern[str]) -> list[tuple[int, int]]:
        """(first word, last word) of every match."""
        return [(self.owner[m.start()], self.owner[m.end() - 1])
                for m in pattern.finditer(self.text) if m.end() > m.start()]


def _phrase(p: str) -> re.Pattern[str]:
    # "你自己去XX部门问吧": "XX部门" stands for any department's name (城管局, 住建局…)
    parts = [re.escape(normalise(x)) for x in p.replace("XX部门", "XX").split("XX")]
    return re.compile(".{0,12}?".join(parts))


def _segments(ws: Sequence[Word], idx: list[int], gap: float) -> list[tuple[float, float, int, int]]:
    """Stretches of speech of one speaker: (start, end, first word, last word)."""
    segs: list[tuple[float, float, int, int]] = []
    for i in idx:
        w = ws[i]
        if segs and w.start - segs[-1][1] <= gap:
            s, e, a, _ = segs[-1]
            segs[-1] = (s, max(e, w.end), a, i)
        else:
            segs.append((w.start, w.end, i, i))
    return segs


# ------------------------------------------------------------------ the rules


def check(ws: Sequence[Word], cfg: RuleConfig, *, job_number: str = "", survey: str = "",
          spotted: Sequence[Word] = ()) -> list[Finding]:
    """All findings on one call, ordered by time. ``ws`` must be sorted by start. ``spotted`` are
    the operator's phrases found by a Vosk grammar (:func:`spotting_phrases`): they count for
    the greeting and the closing, and add forbidden phrases the free transcript missed."""
    op_idx = [i for i, w in enumerate(ws) if w.speaker == OPERATOR]
    cz_idx = [i for i, w in enumerate(ws) if w.speaker == CITIZEN]
    out: list[Finding] = []
    out += greeting(ws, op_idx, cfg, job_number, spotted)
    out += closing(ws, op_idx, cfg, spotted)
    out += forbidden(ws, op_idx, cfg, spotted)
    out += silences(ws, cfg)
    out += talk_over(ws, op_idx, cz_idx, cfg)
    out += speech_rate(ws, op_idx, cfg)
    if survey and survey in cfg.dissatisfied:
        end = ws[-1].end if ws else 0.0
        out.append(Finding("survey_unsatisfied", "满意度评价：不满意", "warn", end, end, CITIZEN, None, None,
                           f"来电人按键 {survey}"))
    return sorted(out, key=lambda f: (f.start, f.code))


def spotting_phrases(cfg: RuleConfig) -> list[str]:
    """The grammar for phrase spotting: greeting, hotline names, closing and forbidden phrases
    (those with an ``XX`` wildcard cannot be spotted). For the Chinese model write each phrase
    as the model's words separated by spaces (``感谢 您 的 来电``); matching ignores the spaces."""
    phrases = [*cfg.greeting_phrases, *cfg.hotline_names, *cfg.closing_phrases,
               *(p for p in cfg.forbidden_phrases if "XX" not in p)]
    return list(dict.fromkeys(phrases))


def _spotted_text(spotted: Sequence[Word], lo: float, hi: float) -> str:
    return "".join(normalise(w.word) for w in spotted if lo <= w.start < hi)


def greeting(ws: Sequence[Word], op_idx: list[int], cfg: RuleConfig, job_number: str,
             spotted: Sequence[Word] = ()) -> list[Finding]:
    """开头语: within the first N s the operator greets with the hotline name and the job number."""
    window = [i for i in op_idx if ws[i].start < cfg.greeting_window_s]
    text = _Text.of(ws, window)
    text.text += "|" + _spotted_text(spotted, 0.0, cfg.greeting_window_s)
    first, last = (window[0], window[-1]) if window else (None, None)
    end = ws[last].end if last is not None else cfg.greeting_window_s
    start = ws[first].start if first is not None else 0.0
    if not any(normalise(p) in text.text for p in cfg.greeting_phrases):
        return [Finding("greeting_missing", "开头语缺失", "error", 0.0, end, OPERATOR, first, last,
                        f"前 {cfg.greeting_window_s:g} 秒内未说问候语（{'、'.join(cfg.greeting_phrases)}）")]
    missing = []
    if not any(normalise(n) in text.text for n in cfg.hotline_names):
        missing.append("热线名称")
    job_ok = normalise(job_number) in text.text if job_number else re.search(r"\d{3,6}号", text.text) is not None
    if not job_ok:
        missing.append(f"工号{job_number}" if job_number else "工号")
    if missing:
        return [Finding("greeting_incomplete", "开头语不完整", "warn", start, end, OPERATOR, first, last,
                        f"未报{'、'.join(missing)}")]
    return []


def closing(ws: Sequence[Word], op_idx: list[int], cfg: RuleConfig, spotted: Sequence[Word] = ()) -> list[Finding]:
    """结束语: one of the closing phrases in the operator's last N s."""
    if not op_idx:
        return []
    last_end = ws[op_idx[-1]].end
    tail = [i for i in op_idx if ws[i].end >= last_end - cfg.closing_window_s]
    text = _Text.of(ws, tail).text + "|" + _spotted_text(spotted, last_end - cfg.closing_window_s, float("inf"))
    if any(normalise(p) in text for p in cfg.closing_phrases):
        return []
    return [Finding("closing_missing", "结束语缺失", "warn", ws[tail[0]].start, last_end, OPERATOR, tail[0], tail[-1],
                    f"结束前未说{'或'.join(cfg.closing_phrases)}")]


def forbidden(ws: Sequence[Word], op_idx: list[int], cfg: RuleConfig, spotted: Sequence[Word] = ()) -> list[Finding]:
    """禁用语, each occurrence in the operator's speech (free transcript, then spotted phrases)."""
    text = _Text.of(ws, op_idx)
    out = []
    for p in cfg.forbidden_phrases:
        for a, b in text.find(_phrase(p)):
            out.append(Finding("forbidden_phrase", "使用禁用语", "error", ws[a].start, ws[b].end, OPERATOR, a, b,
                               f"禁用语“{p}”"))
    # spotted words arrive one by one ("说完了 没有"): look for phrases within runs of close words
    runs: list[list[Word]] = []
    for w in sorted(spotted, key=lambda w: w.start):
        if runs and w.start - runs[-1][-1].end <= cfg.spot_gap_s:
            runs[-1].append(w)
        else:
            runs.append([w])
    for run in runs:
        rtext = _Text.of(run, range(len(run)))
        for p in cfg.forbidden_phrases:
            for a, b in rtext.find(_phrase(p)):
                start, end = run[a].start, run[b].end
                if any(f.start < end and start < f.end for f in out):
                    continue  # the free transcript has it already
                span = [i for i in op_idx if ws[i].start < end + 0.2 and start - 0.2 < ws[i].end]
                out.append(Finding("forbidden_phrase", "使用禁用语", "error", start, end, OPERATOR,
                                   span[0] if span else None, span[-1] if span else None, f"禁用语“{p}”（短语识别）"))
    return out


def silences(ws: Sequence[Word], cfg: RuleConfig) -> list[Finding]:
    """长时间静音 / 保持: nobody speaks for longer than ``silence_s`` in the middle of the call."""
    out = []
    reach, reach_i = None, None
    for i, w in enumerate(ws):
        if reach is not None and w.start - reach > cfg.silence_s:
            out.append(Finding("long_silence", "长时间静音", "warn", round(reach, 3), w.start, "", reach_i, i,
                               f"{w.start - reach:.1f} 秒无人说话"))
        if reach is None or w.end > reach:
            reach, reach_i = w.end, i
    return out


def talk_over(ws: Sequence[Word], op_idx: list[int], cz_idx: list[int], cfg: RuleConfig) -> list[Finding]:
    """抢话: the operator starts speaking while the citizen is speaking and goes on over them."""
    out = []
    cz = _segments(ws, cz_idx, cfg.segment_gap_s)
    for o_start, o_end, o_first, o_last in _segments(ws, op_idx, cfg.segment_gap_s):
        for c_start, c_end, _, _ in cz:
            if c_start < o_start < c_end:
                overlap_end = min(o_end, c_end)
                if overlap_end - o_start >= cfg.overlap_s:
                    span = [i for i in range(o_first, o_last + 1)
                            if ws[i].speaker == OPERATOR and ws[i].start < overlap_end]
                    out.append(Finding("talk_over", "抢话", "error", o_start, round(overlap_end, 3), OPERATOR,
                                       span[0], span[-1], f"与来电人同时说话 {overlap_end - o_start:.1f} 秒"))
    return out


def speech_rate(ws: Sequence[Word], op_idx: list[int], cfg: RuleConfig) -> list[Finding]:
    """语速: the operator's characters per minute of their own speech."""
    segs = _segments(ws, op_idx, cfg.segment_gap_s)
    speaking = sum(e - s for s, e, _, _ in segs)
    if speaking < cfg.speech_rate_min_s:
        return []
    chars = sum(len(ws[i].word) for i in op_idx)
    cpm = chars / speaking * 60
    low, high = cfg.speech_rate_cpm
    if low <= cpm <= high:
        return []
    title = "语速过快" if cpm > high else "语速过慢"
    return [Finding("speech_rate", title, "info", segs[0][0], segs[-1][1], OPERATOR, op_idx[0], op_idx[-1],
                    f"{cpm:.0f} 字/分钟（标准 {low:g}–{high:g}）")]
