"""`ports check --fix`: rewrite drifting ports to the registry's, keeping everything else."""

from __future__ import annotations

from ollamamax_stack.ports.fix.plan import Edit, FixPlan, Skipped, plan_fixes

__all__ = ["Edit", "FixPlan", "Skipped", "plan_fixes"]
