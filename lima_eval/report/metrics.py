"""The report's counting over records (both-order judgments, order effects, token usage and cost): defined in
lima_eval/judging/counting.py, below the report, since judging counts too; re-exported under this name."""

from lima_eval.judging.counting import (
    PositionStats,
    combine_orders,
    position_stats,
    records_cost,
    usage_totals,
)

__all__ = ["PositionStats", "combine_orders", "position_stats", "records_cost", "usage_totals"]
