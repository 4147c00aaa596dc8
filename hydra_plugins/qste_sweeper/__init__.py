"""Hydra's basic sweeper without its second composition of every job.

Before launching a batch, Hydra's BasicSweeper composes every job's config once more to
validate it (about 0.13 s a job, in the launching process, so it is serial even under the
joblib launcher). ``qste train`` has already composed and checked every job itself, so
this sweeper skips that step. Hydra finds plugins only in the ``hydra_plugins`` package.
"""

from dataclasses import dataclass
from typing import Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.config_store import ConfigStore


@dataclass
class CheckedSweeperConf(BasicSweeperConf):
    _target_: str = "hydra_plugins.qste_sweeper.CheckedSweeper"


class CheckedSweeper(BasicSweeper):
    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """Nothing to do: qste.cli.check_jobs validated every job before Hydra started."""


ConfigStore.instance().store(group="hydra/sweeper", name="qste", node=CheckedSweeperConf, provider="qste")
