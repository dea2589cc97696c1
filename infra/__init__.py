"""Corral's deployment: the Pulumi program (``program``), its typed stack settings (``settings``), the
``corral:index:ModelServer`` component (``model_server``), sizing from the catalog (``sizing``) and the policies
every rendered stack must pass (``policies``; the CrossGuard pack in ``policy_pack/`` wraps them)."""
