"""The MicroserviceApp API: its models and validation (`models`), the dependency graph (`graph`) and the CRD
generated from the models (`crd`). Pure: no I/O, no kopf."""
