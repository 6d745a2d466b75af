"""QA rules on Chinese transcript fixtures, with the exact findings expected."""

from __future__ import annotations

from recordings.rules import CITIZEN, OPERATOR, Finding, RuleConfig, Word, check, display_text, normalise

CFG = RuleConfig()


def op(word: str, start: float, end: float) -> Word:
    return Word(OPERATOR, word, start, end)


def cz(word: str, start: float, end: float) -> Word:
    return Word(CITIZEN, word, start, end)


def transcript(*ws: Word) -> list[Word]:
    return sorted(ws, key=lambda w: w.start)


GREETING = [op("您好", 0.5, 0.9), op("12345", 1.0, 1.6), op("政务服务热线", 1.7, 2.6), op("1024", 2.7, 3.2),
            op("号", 3.2, 3.4), op("话务员", 3.5, 4.0), op("为您服务", 4.1, 4.8)]
CITIZEN_TALK = [cz("我家", 5.5, 5.9), cz("门口", 6.0, 6.4), cz("的", 6.4, 6.5), cz("路灯", 6.6, 7.0),
                cz("坏了", 7.1, 7.5)]
REPLY = [op("好的", 8.0, 8.3), op("我", 8.4, 8.5), op("帮您", 8.6, 8.9), op("记录", 9.0, 9.3), op("工单", 9.4, 9.8)]
CLOSING = [op("感谢您的来电", 11.0, 12.2), op("再见", 12.3, 12.6)]


def test_a_good_call_has_no_findings():
    assert check(transcript(*GREETING, *CITIZEN_TALK, *REPLY, *CLOSING), CFG, job_number="1024") == []


def test_greeting_absent_is_flagged_over_the_window():
    ws = transcript(op("请讲", 1.0, 1.4), *CITIZEN_TALK, *REPLY, *CLOSING)
    assert check(ws, CFG, job_number="1024") == [
        Finding("greeting_missing", "开头语缺失", "error", 0.0, 9.8, OPERATOR, 0, 10,
                "前 10 秒内未说问候语（您好）"),
    ]


def test_greeting_without_hotline_name_and_job_number():
    ws = transcript(op("您好", 0.5, 0.9), op("请问", 1.0, 1.3), op("有什么", 1.4, 1.8), op("可以", 1.9, 2.1),
                    op("帮您", 2.2, 2.5), op("再见", 6.0, 6.3))
    assert check(ws, CFG, job_number="1024") == [
        Finding("greeting_incomplete", "开头语不完整", "warn", 0.5, 6.3, OPERATOR, 0, 5, "未报热线名称、工号1024"),
    ]


def test_greeting_with_digits_spoken_in_chinese_counts():
    ws = transcript(op("您好", 0.5, 0.9), op("一二三四五", 1.0, 2.0), op("热线", 2.1, 2.5), op("幺零二四", 2.6, 3.4),
                    op("号", 3.4, 3.6), *CLOSING)
    assert check(ws, CFG, job_number="1024") == []
    assert normalise("幺零二四 号") == "1024号"


def test_greeting_after_the_window_is_missing():
    late = [Word(w.speaker, w.word, w.start + 12, w.end + 12) for w in GREETING]
    found = check(transcript(*late, *CLOSING), CFG, job_number="1024")
    assert [f.code for f in found] == ["greeting_missing"]


def test_forbidden_phrases_across_words_and_with_a_department_name():
    ws = transcript(*GREETING, *CITIZEN_TALK, op("这是", 8.0, 8.3), op("规定", 8.4, 8.8), op("我", 8.9, 9.0),
                    op("没办法", 9.1, 9.6), op("你自己去", 9.8, 10.4), op("城管局", 10.5, 11.0), op("问吧", 11.1, 11.4),
                    op("感谢您的来电", 13.0, 14.2))
    assert check(ws, CFG, job_number="1024") == [
        Finding("forbidden_phrase", "使用禁用语", "error", 8.0, 9.6, OPERATOR, 12, 15, "禁用语“这是规定我没办法”"),
        Finding("forbidden_phrase", "使用禁用语", "error", 9.8, 11.4, OPERATOR, 16, 18, "禁用语“你自己去XX部门问吧”"),
    ]


def test_a_single_character_forbidden_word():
    ws = transcript(*GREETING, op("喂", 5.0, 5.2), *CLOSING)
    assert check(ws, CFG, job_number="1024") == [
        Finding("forbidden_phrase", "使用禁用语", "error", 5.0, 5.2, OPERATOR, 7, 7, "禁用语“喂”"),
    ]


def test_the_operator_talking_over_the_citizen():
    talk = [cz("我", 5.0, 5.2), cz("想", 5.3, 5.5), cz("反映", 5.6, 6.0), cz("一下", 6.1, 6.5), cz("路灯", 6.6, 7.0),
            cz("的", 7.1, 7.2), cz("问题", 7.3, 7.8), cz("已经", 7.9, 8.3), cz("好几天", 8.4, 9.0)]
    over = [op("您", 6.2, 6.4), op("说", 6.5, 6.7), op("的", 6.8, 6.9), op("是", 7.0, 7.2), op("哪里", 7.3, 7.9)]
    ws = transcript(*GREETING, *talk, *over, *CLOSING)
    found = check(ws, CFG, job_number="1024")
    first = ws.index(over[0])
    assert found == [Finding("talk_over", "抢话", "error", 6.2, 7.9, OPERATOR, first, ws.index(over[-1]),
                             "与来电人同时说话 1.7 秒")]


def test_the_citizen_interrupting_the_operator_is_not_the_operators_fault():
    ws = transcript(*GREETING, cz("喂喂", 3.0, 4.0), *CLOSING)
    assert check(ws, CFG, job_number="1024") == []


def test_a_short_backchannel_is_not_talking_over():
    ws = transcript(*GREETING, *CITIZEN_TALK, op("嗯", 6.1, 6.4), *CLOSING)
    assert check(ws, CFG, job_number="1024") == []


def test_a_long_silence_in_the_middle_of_the_call():
    later = [Word(w.speaker, w.word, w.start + 20, w.end + 20) for w in CLOSING]
    ws = transcript(*GREETING, *CITIZEN_TALK, *REPLY, *later)
    assert check(ws, CFG, job_number="1024") == [
        Finding("long_silence", "长时间静音", "warn", 9.8, 31.0, "", 16, 17, "21.2 秒无人说话"),
    ]


def test_closing_missing_points_at_the_operators_last_words():
    ws = transcript(*GREETING, *CITIZEN_TALK, *REPLY)
    assert check(ws, CFG, job_number="1024") == [
        Finding("closing_missing", "结束语缺失", "warn", 0.5, 9.8, OPERATOR, 0, 16, "结束前未说感谢您的来电或再见"),
    ]


def test_speech_rate_too_fast():
    fast = [op("好的我马上帮您记录下来您稍等一下", 5.0 + i * 2, 6.6 + i * 2) for i in range(8)]  # 15 chars in 1.6 s
    found = check(transcript(*GREETING, *fast, *CLOSING), CFG, job_number="1024")
    assert [(f.code, f.title) for f in found] == [("speech_rate", "语速过快")]
    assert found[0].start == 0.5 and found[0].end == 20.6


def test_an_unsatisfied_survey_is_a_finding():
    found = check(transcript(*GREETING, *CLOSING), CFG, job_number="1024", survey="3")
    assert [(f.code, f.start) for f in found] == [("survey_unsatisfied", 12.6)]
    assert check(transcript(*GREETING, *CLOSING), CFG, job_number="1024", survey="1") == []


def test_rules_follow_the_configuration():
    cfg = RuleConfig(forbidden_phrases=("没空",), greeting_phrases=("你好",), hotline_names=("12319",))
    ws = transcript(op("你好", 0.5, 0.9), op("12319", 1.0, 1.5), op("1024号", 1.6, 2.0), op("没空", 3.0, 3.4), *CLOSING)
    assert [f.code for f in check(ws, cfg, job_number="1024")] == ["forbidden_phrase"]


def test_display_text_removes_spaces_between_chinese_words():
    assert display_text(["您好", "12345", "热线"]) == "您好12345热线"
    assert display_text(["안녕하세요", "시민"]) == "안녕하세요 시민"


def test_spotted_phrases_complete_a_garbled_greeting_and_closing():
    garbled = [op("您", 0.5, 0.7), op("号", 1.0, 1.2), op("服务", 1.3, 1.8), op("谢谢", 9.0, 9.5)]
    spotted = [op("您好", 0.5, 0.9), op("一二三四五", 1.0, 2.0), op("热线", 2.1, 2.5), op("一零二四", 2.6, 3.2),
               op("号", 3.2, 3.4), op("感谢", 8.8, 9.1), op("您的来电", 9.1, 9.6)]
    assert [f.code for f in check(garbled, CFG, job_number="1024")] == ["greeting_missing", "closing_missing"]
    assert check(garbled, CFG, job_number="1024", spotted=spotted) == []


def test_a_spotted_forbidden_phrase_over_several_words_points_at_the_transcript():
    ws = transcript(*GREETING, op("说", 5.0, 5.2), op("好了", 5.3, 5.6), op("没", 5.7, 5.8), *CLOSING)
    spotted = [op("说完了", 5.0, 5.4), op("没有", 5.45, 5.8)]
    assert check(ws, CFG, job_number="1024", spotted=spotted) == [
        Finding("forbidden_phrase", "使用禁用语", "error", 5.0, 5.8, OPERATOR, 7, 9, "禁用语“说完了没有”（短语识别）"),
    ]


def test_a_phrase_found_by_both_passes_is_one_finding():
    ws = transcript(*GREETING, op("我不知道", 5.0, 5.8), *CLOSING)
    found = check(ws, CFG, job_number="1024", spotted=[op("我 不 知道", 5.05, 5.75)])
    assert [(f.code, f.detail) for f in found] == [("forbidden_phrase", "禁用语“我不知道”")]
