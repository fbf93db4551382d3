"""Retention and program metrics as pure functions over the analytics frames.

Purchasing (repeat rate, frequency, order value), revenue retention (GRR/NRR and components),
logo churn, the participation funnel, NPS with confidence intervals, program ROI by stratified
difference in differences, and the value of a retention gain. Conventions shared by all of them
(UTC calendar periods, half-open windows, `as_of`) are in `_common`; docs/analytics.md has the
definitions. RFM scores and cohort retention tables are SQL, in `analytics.sql`.
"""

from ._common import Period
from .funnel import ParticipationFunnel, participation_funnel
from .nps import NpsMethod, nps, nps_interval
from .purchasing import average_order_value, purchase_frequency, repeat_customer_rate
from .retention_value import RetentionGainValue, customer_value, retention_gain_value
from .revenue import ChurnMethod, churn_rate, net_negative_churn, revenue_retention
from .roi import ProgramROI, RoiStatus, program_roi

__all__ = [
    "ChurnMethod",
    "NpsMethod",
    "ParticipationFunnel",
    "Period",
    "ProgramROI",
    "RetentionGainValue",
    "RoiStatus",
    "average_order_value",
    "churn_rate",
    "customer_value",
    "net_negative_churn",
    "nps",
    "nps_interval",
    "participation_funnel",
    "program_roi",
    "purchase_frequency",
    "repeat_customer_rate",
    "retention_gain_value",
    "revenue_retention",
]
