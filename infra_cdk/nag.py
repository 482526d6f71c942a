"""cdk-nag acknowledgements that apply to the whole stack (each with its reason)."""

from __future__ import annotations

import aws_cdk as cdk


def acknowledge_stack_findings(stack: cdk.Stack) -> None:
    pass
