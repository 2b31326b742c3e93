"""Every request to the Kubernetes API server (`client`): apply, list, watch, delete, status patches, events.
No decisions are made here."""
