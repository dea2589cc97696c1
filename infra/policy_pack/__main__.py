"""`pulumi preview --policy-pack infra/policy_pack`: the Corral rules, all mandatory."""

from pulumi_policy import PolicyPack

from infra.policy_pack import PACK_NAME, policies

PolicyPack(PACK_NAME, policies=policies())
