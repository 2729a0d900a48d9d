"""Ad spend and NPS answers: counted per event in the bucket of their ts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from _engine_helpers import T0, Feed, adspend, survey


def test_ad_spend_sums_cost_exactly_by_campaign_and_channel() -> None:
    feed = Feed()
    feed(adspend(T0, "spring", "paid", "0.10"), adspend(T0 + 1, "spring", "paid", "0.20"))
    feed(adspend(T0 + 2, "spring", "social", "5"))
    assert feed.component("ad_spend") == {
        (0, ("spring", "paid")): Decimal("0.30"),
        (0, ("spring", "social")): Decimal("5"),
    }


@pytest.mark.parametrize(
    ("score", "promoter", "detractor"),
    [
        (10, 1, 0),  # why: top score
        (9, 1, 0),  # why: lowest promoter
        (8, 0, 0),  # why: passive
        (7, 0, 0),  # why: lowest passive
        (6, 0, 1),  # why: highest detractor
        (0, 0, 1),  # why: lowest score
    ],
)
def test_nps_answer_is_a_response_and_maybe_a_promoter_or_detractor(
    score: int, promoter: int, detractor: int
) -> None:
    feed = Feed()
    feed(survey(T0, "n1", score, campaign="spring"))
    assert feed.total("nps_responses") == 1
    assert feed.total("nps_promoters") == promoter
    assert feed.total("nps_detractors") == detractor
    assert list(feed.component("nps_responses")) == [(0, ("spring", "none"))]


def test_survey_without_campaign_is_labelled_none_none() -> None:
    feed = Feed()
    feed(survey(T0, "n1", 9))
    assert feed.component("nps_promoters") == {(0, ("none", "none")): 1}
