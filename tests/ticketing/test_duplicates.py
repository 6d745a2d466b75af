"""Duplicate proposals on realistic pairs: the same matter told twice vs two matters in one place."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from ticketing.calendar import TZ
from ticketing.duplicates import Candidate, propose, similarity, tokens

NOW = datetime(2026, 11, 16, 10, tzinfo=TZ)

SAME = [  # (first report, second report, place)
    (
        "中华路与人民路交叉口自来水管道破裂，路面大量积水，请尽快维修",
        "人民路中华路路口水管爆了，水一直往外冒，路上都是水",
        "中华路与人民路交叉口",
    ),
    (
        "牡丹区长江路丽景花园小区停水两天了，没有接到停水通知",
        "长江路丽景花园从前天开始停水，一直没来水，什么时候恢复供水",
        "长江路丽景花园小区",
    ),
    (
        "和平路菜市场旁边烧烤摊每天晚上油烟很大，噪音扰民到凌晨",
        "和平路菜市场烧烤店油烟扰民，晚上吵得睡不着",
        "和平路菜市场",
    ),
]
DIFFERENT = [
    (
        "中华路与人民路交叉口自来水管道破裂，路面大量积水，请尽快维修",
        "中华路与人民路交叉口有工地夜间施工，噪音扰民，影响休息",
        "中华路与人民路交叉口",
    ),
    (
        "牡丹区长江路丽景花园小区停水两天了，没有接到停水通知",
        "长江路丽景花园小区门口垃圾堆放多日无人清运，气味很大",
        "长江路丽景花园小区",
    ),
    (
        "和平路菜市场旁边烧烤摊每天晚上油烟很大，噪音扰民到凌晨",
        "和平路菜市场门口路灯不亮好几天了",
        "和平路菜市场",
    ),
]


def test_tokens_are_content_words():
    words = tokens("市民来电反映：中华路自来水管道破裂了！")
    assert "破裂" in words and "水管" in words
    assert not {"了", "市民", "来电", "反映", "！", "："} & set(words)


@pytest.mark.parametrize(("a", "b", "place"), SAME)
def test_the_same_matter_scores_above_the_threshold(a, b, place):
    assert similarity(a, b, [place]) >= 42


@pytest.mark.parametrize(("a", "b", "place"), DIFFERENT)
def test_different_matters_at_the_same_place_score_below(a, b, place):
    assert similarity(a, b, [place]) < 42


def test_each_same_pair_beats_the_different_pair_at_its_place():
    for (a, b, place), (_, c, _) in zip(SAME, DIFFERENT, strict=True):
        assert similarity(a, b, [place]) > similarity(a, c, [place])


def _cand(i, text, place="", number="", age_days=1.0):
    return Candidate(i, number, place, text, NOW - timedelta(days=age_days), number=f"T{i}")


def test_propose_the_same_leak_not_the_noise():
    leak, other_leak = SAME[0][0], SAME[0][1]
    noise = DIFFERENT[0][1]
    place = "中华路与人民路交叉口"
    new = _cand(10, other_leak, place, "13900000001", 0)
    found = propose(
        new,
        [_cand(1, leak, place, "13800000001"), _cand(2, noise, place, "13800000002")],
        now=NOW,
        window=timedelta(days=30),
    )
    assert [p.id for p in found] == [1]
    assert "同一地点" in found[0].reasons


def test_same_caller_counts_as_near_even_without_a_place():
    a, b, _ = SAME[1]
    found = propose(
        _cand(10, b, "", "13853012345", 0),
        [_cand(1, a, "", "13853012345")],
        now=NOW,
        window=timedelta(days=30),
    )
    assert [p.id for p in found] == [1] and "同一来电号码" in found[0].reasons


def test_old_or_unrelated_reports_are_not_proposed():
    a, b, place = SAME[1]
    new = _cand(10, b, place, "1", 0)
    assert propose(new, [_cand(1, a, place, "2", age_days=31)], now=NOW, window=timedelta(days=30)) == []
    # same story, but neither the same caller nor the same place
    assert propose(new, [_cand(1, a, "定陶区某村", "2")], now=NOW, window=timedelta(days=30)) == []
