"""Readiness: a service is ready only while every backend it needs answers.

The gRPC health service answers for readiness under the empty service name
and the services' own names; ``liveness`` answers SERVING for as long as the
process serves at all. Kubernetes' gRPC probes ask for one or the other, so
a service whose database, bus or object store is down leaves the load
balancer's rotation without being restarted for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from strongroom.services.common.errors import StrongroomError
from strongroom.services.common.events import Worker

logger = logging.getLogger(__name__)

# Each check raises (DependencyUnavailable, as a rule) when its backend is down.
BackendCheck = Callable[[], None]


def failing_backends(checks: Mapping[str, BackendCheck]) -> list[str]:
    """Run every check; return the names of the backends that did not answer."""
    failing = []
    for name, check in checks.items():
        try:
            check()
        except (StrongroomError, OSError):
            failing.append(name)
    return failing


class ReadinessMonitor(Worker):
    """Re-checks the backends every ``interval`` seconds and reports the verdict.

    ``report`` receives True while every backend answers. Changes are logged
    once each way, with the backends' names only.
    """

    def __init__(
        self,
        checks: Mapping[str, BackendCheck],
        report: Callable[[bool], None],
        interval: float,
    ) -> None:
        super().__init__("readiness", idle_seconds=interval)
        self.checks = dict(checks)
        self.report = report
        self.failing: list[str] | None = None

    def check_now(self) -> bool:
        """Check every backend once, report, and return whether all answered."""
        failing = failing_backends(self.checks)
        if failing != self.failing:
            if failing:
                logger.warning("backends_unreachable", extra={"backends": failing})
            elif self.failing:
                logger.info("backends_reachable")
        self.failing = failing
        self.report(not failing)
        return not failing

    def step(self) -> bool:
        self.check_now()
        return False
