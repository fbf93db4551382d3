"""Approval policies of ``RewardsService``: the program's rules for redemptions (who may spend the
organization's pool, above what a manager must approve, yearly gift caps) and an organization's
override of them. A mixin, because they share the service's port and programs."""

from __future__ import annotations

from allegiance.kernel.errors import ValidationFailed
from allegiance.programs.service import ProgramsService
from allegiance.rewards.model import ApprovalPolicy, PolicyOverride
from allegiance.rewards.policy import effective
from allegiance.rewards.ports import RewardsPort

PROGRAM_SCOPE = "program"


class ApprovalPolicies:
    port: RewardsPort
    programs: ProgramsService

    # -- policies -------------------------------------------------------------------------------------
    def program_policy(self, program_id: int) -> ApprovalPolicy:
        row = self.port.policy(program_id, PROGRAM_SCOPE)
        return ApprovalPolicy.model_validate(row["document"]) if row else ApprovalPolicy()

    def override(self, program_id: int, organization_id: int) -> PolicyOverride | None:
        row = self.port.policy(program_id, f"org:{organization_id}")
        return PolicyOverride.model_validate(row["document"]) if row else None

    def policy_for(self, program_id: int, organization_id: int) -> ApprovalPolicy:
        return effective(self.program_policy(program_id), self.override(program_id, organization_id))

    def _check_policy(self, program_id: int, policy: ApprovalPolicy | PolicyOverride) -> None:
        settings = self.programs.settings(program_id)
        allowed = settings.role_codes() | {"org_admin"}
        for role in policy.pool_spenders or []:
            if role not in allowed:
                raise ValidationFailed(f"{role!r} is neither 'org_admin' nor one of the program's roles",
                                       field="pool_spenders")
        for name in ("manager_approval_above", "annual_cap"):
            for unit in getattr(policy, name) or {}:
                if settings.unit(unit) is None:
                    raise ValidationFailed(f"unit {unit!r} is not one of the program's units", field=name)

    def set_program_policy(self, program_id: int, policy: ApprovalPolicy, by: str) -> ApprovalPolicy:
        self._check_policy(program_id, policy)
        self.port.save_policy(program_id, PROGRAM_SCOPE, None, policy.model_dump(mode="json"), by)
        self.port.emit(program_id, "rewards.policy_changed", {"scope": PROGRAM_SCOPE, "by": by}, None)
        return policy

    def set_override(self, program_id: int, organization_id: int, override: PolicyOverride,
                     by: str) -> ApprovalPolicy:
        self.programs.organization(program_id, organization_id)
        self._check_policy(program_id, override)
        self.port.save_policy(program_id, f"org:{organization_id}", organization_id,
                              override.model_dump(mode="json", exclude_none=True), by)
        self.port.emit(program_id, "rewards.policy_changed", {"scope": f"org:{organization_id}", "by": by},
                       organization_id)
        return self.policy_for(program_id, organization_id)
