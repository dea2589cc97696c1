"""Entry point for `pulumi up` in infra/: the stack's config to typed settings, then the program."""

from __future__ import annotations

import pulumi

from infra.program import program, runtime_config, settings_from_config

program(settings_from_config(runtime_config(), f"stack {pulumi.get_stack()}"))
