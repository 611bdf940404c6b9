"""The operations of the provisioning API: check a request, plan it, hand it to the engine."""
