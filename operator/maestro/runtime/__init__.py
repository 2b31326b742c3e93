"""The controller runtime around the pass, what a framework such as controller-runtime gives: the work queue,
the list+watch threads and their caches (child index, app cache), leadership, the HTTP endpoint, and the kopf
handlers and settings that tie them to the pass. All the state of one operator is held by one `Operator`
(operator.py)."""
