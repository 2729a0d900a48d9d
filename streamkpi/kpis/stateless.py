"""Ad spend and surveys: counted per event, no state (README, "Ad spend and surveys")."""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from streamkpi.events import AdSpendEvent, SurveyEvent
from streamkpi.kpis.buckets import BucketStore, Family
from streamkpi.kpis.config import EngineConfig
from streamkpi.kpis.labels import NONE, LabelCap, LabelSpace

__all__ = ["ADSPEND", "SURVEYS", "AdSpend", "Surveys"]

ADSPEND: Final = Family("ad", ("ad_spend",))
SURVEYS: Final = Family("np", ("nps_responses", "nps_promoters", "nps_detractors"))

_AD_SPEND: Final = ADSPEND.pos("ad_spend")
_RESPONSES: Final = SURVEYS.pos("nps_responses")
_PROMOTERS: Final = SURVEYS.pos("nps_promoters")
_DETRACTORS: Final = SURVEYS.pos("nps_detractors")
_ZERO: Final = Decimal(0)


class AdSpend:
    """``ad_spend`` += cost, by the spend's campaign and channel."""

    def __init__(
        self, config: EngineConfig, store: BucketStore, campaigns: LabelCap, cc: LabelSpace
    ) -> None:
        """Count into ``store``."""
        self._store = store
        self._family = store.family_index(ADSPEND)
        self._bucket_s = config.bucket_s
        self._campaigns = campaigns
        self._cc = cc

    def apply(self, event: AdSpendEvent, wm: float | None) -> None:
        """Apply one accepted ad-spend event."""
        gid = self._cc.gid((self._campaigns.resolve(event.campaign), event.channel))
        start = int(event.ts_s // self._bucket_s) * self._bucket_s
        amount = event.cost_reporting or _ZERO
        self._store.add_money(self._family, start, gid, _AD_SPEND, amount)

    def fire(self, wm: float) -> None:
        """Nothing to fire."""


class Surveys:
    """NPS answers: responses, promoters (9-10) and detractors (0-6), channel ``none``."""

    def __init__(
        self, config: EngineConfig, store: BucketStore, campaigns: LabelCap, cc: LabelSpace
    ) -> None:
        """Count into ``store``."""
        self._store = store
        self._family = store.family_index(SURVEYS)
        self._bucket_s = config.bucket_s
        self._campaigns = campaigns
        self._cc = cc

    def apply(self, event: SurveyEvent, wm: float | None) -> None:
        """Apply one accepted survey event."""
        gid = self._cc.gid((self._campaigns.resolve(event.campaign), NONE))
        start = int(event.ts_s // self._bucket_s) * self._bucket_s
        cell = self._store.cell(self._family, start, gid)
        if cell is not None:
            values, at = cell
            values[at + _RESPONSES] += 1
            if event.score >= 9:
                values[at + _PROMOTERS] += 1
            elif event.score <= 6:
                values[at + _DETRACTORS] += 1

    def fire(self, wm: float) -> None:
        """Nothing to fire."""
