"""The provisioning API and the appservice endpoints: HTTP only, no decisions."""
