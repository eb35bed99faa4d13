"""The gate between rule files and everything that serves them (see ``engine.pipeline.gate``)."""

from engine.pipeline.gate import (
    STAGES,
    Prepared,
    Rejected,
    Stage,
    StageTiming,
    log_prepared,
    prepare,
    prepare_or_raise,
)

__all__ = ["STAGES", "Prepared", "Rejected", "Stage", "StageTiming", "log_prepared", "prepare", "prepare_or_raise"]
