"""The reconcile pass of one MicroserviceApp: observe, plan, apply; its status and events."""
