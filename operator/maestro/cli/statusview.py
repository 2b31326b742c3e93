"""The view of `maestro status`: an app, its children and its Events in; the tree as data (`-o json|yaml`) and
as lines of text out. Pure: no I/O (status.py fetches and prints).

The tree: the app (phase, ready services, generation vs observed generation, why it is not Ready) -> its services
in spec order (phase, endpoint, whom they wait for, why they failed), then its jobs (phase, their runs or
CronJob) -> their children, by kind in the order of
`render.kinds` (a summary for the kinds known here, a generic one for any other) -> the app's last Warning
Events while it is not Ready.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from maestro.controller import status as app_status
from maestro.render import kinds, names

State = Literal["ok", "progress", "failed"]
Style = Literal["ok", "progress", "failed", "bold"]
# One piece of a line of text, with the style it is shown in when colour is on.
Segment = tuple[str, Style | None]
Line = list[Segment]

MAX_EVENTS = 3  # the last few Warning Events: enough to say why, short enough for one screen
WIDTH = 80

PHASE_STATE: dict[str, State] = {
    "Ready": "ok",
    "Pending": "progress",
    "Waiting": "progress",
    "Progressing": "progress",
    "Degraded": "failed",
    "Invalid": "failed",
    # a job's
    "Running": "progress",
    "Succeeded": "ok",
    "Failed": "failed",
    "Scheduled": "ok",
}
FAILED_PHASES = frozenset({"Degraded", "Invalid"})

_ANSI: dict[Style, str] = {"ok": "\x1b[32m", "progress": "\x1b[33m", "failed": "\x1b[31m", "bold": "\x1b[1m"}
_RESET = "\x1b[0m"


# ------------------------------------------------------------------------------------------------- the data


def build(
    app: Mapping[str, Any],
    children: Mapping[tuple[str, str], Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The tree as data: what `-o json|yaml` prints and what `lines` draws. `children`: kube.owned_children's
    answer; `events`: the app's Events (only its last Warning ones are kept, and only while it is not Ready)."""
    meta = app.get("metadata") or {}
    status = app.get("status") or {}
    spec_services = [s.get("name") for s in (app.get("spec") or {}).get("services") or [] if s.get("name")]
    by_name = {s.get("name"): s for s in status.get("services") or []}
    grouped = _by_service(children)
    services = [_service(name, by_name.get(name), grouped.pop(name, [])) for name in spec_services]
    spec_jobs = [j.get("name") for j in (app.get("spec") or {}).get("jobs") or [] if j.get("name")]
    jobs_by_name = {j.get("name"): j for j in status.get("jobs") or []}
    jobs = [_job(name, jobs_by_name.get(name), grouped.pop(name, [])) for name in spec_jobs]
    current = _current(app)
    tree: dict[str, Any] = {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "phase": status.get("phase"),
        "readyServices": status.get("readyServices"),
        "generation": meta.get("generation"),
        "observedGeneration": status.get("observedGeneration"),
        "current": current,
        "message": _not_ready_message(status),
        "services": services,
        "progress": progress(services),
    }
    if jobs:
        tree["jobs"] = jobs
    others = [child for group in grouped.values() for child in group]
    if others:  # children of services no longer in the spec, about to be pruned
        tree["otherChildren"] = others
    ready = current and status.get("phase") == "Ready"
    tree["warnings"] = [] if ready else last_warnings(events)
    return tree


def outcome(app: Mapping[str, Any]) -> int | None:
    """What `--watch` exits with: 0 when the app is Ready at its current generation, 1 when it is Degraded or
    Invalid at it, None while the rollout goes on (or the operator has not seen the current generation)."""
    if not _current(app):
        return None
    phase = (app.get("status") or {}).get("phase")
    if phase == "Ready":
        return 0
    return 1 if phase in FAILED_PHASES else None


def progress(services: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many services are ready, rolling out, waiting (for dependencies, or not created yet) and failed."""
    count = {"total": len(services), "ready": 0, "rolling": 0, "waiting": 0, "failed": 0}
    for service in services:
        bucket = {"Ready": "ready", "Progressing": "rolling", "Degraded": "failed"}.get(
            service.get("phase") or ""
        )
        count[bucket or "waiting"] += 1
    return count


def progress_line(tree: Mapping[str, Any]) -> str:
    """The one-line summary of a rollout, e.g. `1/3 services ready, 1 rolling, 1 waiting`."""
    if not tree["current"]:
        return f"waiting for the operator to observe generation {tree['generation']}"
    if tree["phase"] == "Invalid":
        return "the spec is invalid"
    count = tree["progress"]
    parts = [f"{count['ready']}/{count['total']} services ready"]
    parts += [f"{count[key]} {key}" for key in ("rolling", "waiting", "failed") if count[key]]
    return ", ".join(parts)


def last_warnings(events: Sequence[Mapping[str, Any]], limit: int = MAX_EVENTS) -> list[dict[str, Any]]:
    """The last `limit` Warning Events, oldest first."""
    warnings = sorted((e for e in events if e.get("type") == "Warning"), key=_event_time)
    return [
        {
            "reason": e.get("reason"),
            "message": e.get("message") or "",
            "count": e.get("count") or (e.get("series") or {}).get("count") or 1,
            "lastTimestamp": _event_time(e) or None,
        }
        for e in warnings[-limit:]
    ]


def _current(app: Mapping[str, Any]) -> bool:
    generation = (app.get("metadata") or {}).get("generation")
    return generation is not None and (app.get("status") or {}).get("observedGeneration") == generation


def _not_ready_message(status: Mapping[str, Any]) -> str | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == app_status.READY and condition.get("status") != "True":
            return str(condition.get("message") or condition.get("reason") or "") or None
    return None


def _event_time(event: Mapping[str, Any]) -> str:
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def _by_service(children: Mapping[tuple[str, str], Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The children's views by service (their component label), each service's in the order of the kinds."""
    order = {kind: index for index, kind in enumerate(kinds.KIND_NAMES)}
    grouped: dict[str, list[dict[str, Any]]] = {}
    for (kind, name), obj in sorted(
        children.items(), key=lambda item: (order.get(item[0][0], 99), item[0][1])
    ):
        labels = (obj.get("metadata") or {}).get("labels") or {}
        grouped.setdefault(str(labels.get(names.LABEL_COMPONENT, "")), []).append(child_view(kind, name, obj))
    return grouped


def _service(name: str, status: Mapping[str, Any] | None, children: list[dict[str, Any]]) -> dict[str, Any]:
    status = status or {}
    return {
        "name": name,
        "phase": status.get("phase"),
        "endpoint": status.get("endpoint"),
        "waitingFor": list(status.get("waitingFor") or []),
        "message": status.get("message"),
        "children": children,
    }


def _job(name: str, status: Mapping[str, Any] | None, children: list[dict[str, Any]]) -> dict[str, Any]:
    """A job: its status, and its children: the CronJob, or its runs, the current one first."""
    status = status or {}
    current = status.get("run")
    runs = sorted(children, key=lambda c: (c["name"] != current, c["name"]))
    return {
        "name": name,
        "phase": status.get("phase"),
        "run": current,
        "waitingFor": list(status.get("waitingFor") or []),
        "message": status.get("message"),
        "lastResult": status.get("lastResult"),
        "children": runs,
    }


# ------------------------------------------------------------------------------------ one child, by kind


@dataclass(frozen=True)
class Summary:
    """What the tree says about one child: a line of text, the detail lines under it, how it is doing (None:
    not judged), what is wrong with it, and the same as data."""

    text: str
    fields: dict[str, Any]
    state: State | None = None
    details: tuple[str, ...] = ()
    problem: str | None = None


def child_view(kind: str, name: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """One child as data: kind, name, state, summary (and details), and the fields the summary is made of."""
    summary = SUMMARIES.get(kind, _generic)(obj)
    view: dict[str, Any] = {"kind": kind, "name": name, "state": summary.state, "summary": summary.text}
    if summary.details:
        view["details"] = list(summary.details)
    if summary.problem:
        view["problem"] = summary.problem
    return view | summary.fields


def _deployment(obj: Mapping[str, Any]) -> Summary:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    wanted = 1 if spec.get("replicas") is None else int(spec["replicas"])
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or [{}]
    fields = {
        "replicas": wanted,
        "readyReplicas": status.get("readyReplicas", 0),
        "updatedReplicas": status.get("updatedReplicas", 0),
        "availableReplicas": status.get("availableReplicas", 0),
        "image": containers[0].get("image"),
    }
    state: State = "progress"
    failure = app_status.deployment_failure(obj)
    if app_status.deployment_available(obj):
        state = "ok"
    elif failure is not None:
        state = "failed"
    text = (
        f"{fields['readyReplicas']}/{wanted} ready, {fields['updatedReplicas']} updated, "
        f"{fields['availableReplicas']} available"
    )
    return Summary(text, fields, state, (f"image {fields['image']}",), failure)


def _service_summary(obj: Mapping[str, Any]) -> Summary:
    spec = obj.get("spec") or {}
    type_ = "Headless" if spec.get("clusterIP") == "None" else str(spec.get("type") or "ClusterIP")
    ports = [
        f"{p.get('port')}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/{p.get('protocol', 'TCP')}"
        for p in spec.get("ports") or []
    ]
    text = " ".join([type_, *([spec["clusterIP"]] if type_ != "Headless" and spec.get("clusterIP") else [])])
    return Summary(f"{text}  {','.join(ports)}", {"type": type_, "ports": ports})


def _hpa(obj: Mapping[str, Any]) -> Summary:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    current = {_metric_name(m): _metric_value(m, "current") for m in status.get("currentMetrics") or []}
    metrics = [
        f"{_metric_name(m)} {current.get(_metric_name(m), '?')}/{_metric_value(m, 'target')}"
        for m in spec.get("metrics") or []
    ]
    fields = {
        "currentReplicas": status.get("currentReplicas"),
        "desiredReplicas": status.get("desiredReplicas"),
        "minReplicas": spec.get("minReplicas", 1),
        "maxReplicas": spec.get("maxReplicas"),
        "metrics": metrics,
    }
    replicas = (
        f"{_or_unknown(fields['currentReplicas'])} current, {_or_unknown(fields['desiredReplicas'])} desired "
        f"({fields['minReplicas']}-{fields['maxReplicas']})"
    )
    return Summary(replicas, fields, details=("metrics " + ", ".join(metrics),) if metrics else ())


def _metric_source(metric: Mapping[str, Any]) -> Mapping[str, Any]:
    """The part of an autoscaling/v2 metric its type names: `resource` for type Resource, and so on."""
    type_ = str(metric.get("type") or "")
    return metric.get(type_[:1].lower() + type_[1:]) or {}


def _metric_name(metric: Mapping[str, Any]) -> str:
    source = _metric_source(metric)
    return str(source.get("name") or (source.get("metric") or {}).get("name") or metric.get("type"))


def _metric_value(metric: Mapping[str, Any], which: str) -> str:
    """A metric's current or target value: a utilization in percent, else an average or plain value."""
    value = _metric_source(metric).get(which) or {}
    if "averageUtilization" in value:
        return f"{value['averageUtilization']}%"
    for key in ("averageValue", "value"):
        if key in value:
            return str(value[key])
    return "?"


def _or_unknown(value: Any) -> str:
    return "?" if value is None else str(value)


def _pdb(obj: Mapping[str, Any]) -> Summary:
    status = obj.get("status") or {}
    allowed = status.get("disruptionsAllowed", 0)
    fields = {
        "disruptionsAllowed": allowed,
        "currentHealthy": status.get("currentHealthy", 0),
        "desiredHealthy": status.get("desiredHealthy", 0),
    }
    plural = "" if allowed == 1 else "s"
    text = f"{allowed} disruption{plural} allowed, {fields['currentHealthy']} healthy (min {fields['desiredHealthy']})"
    return Summary(text, fields)


def _job_summary(obj: Mapping[str, Any]) -> Summary:
    status = obj.get("status") or {}
    fields = {
        "active": status.get("active", 0),
        "succeeded": status.get("succeeded", 0),
        "failed": status.get("failed", 0),
        "startTime": status.get("startTime"),
        "completionTime": status.get("completionTime"),
    }
    failure = app_status.job_failure(obj)
    if app_status.job_succeeded(obj):
        return Summary(f"succeeded at {fields['completionTime']}", fields, "ok")
    if failure is not None:
        pods = "pod" if fields["failed"] == 1 else "pods"
        return Summary(f"failed ({fields['failed']} {pods} failed)", fields, "failed", problem=failure)
    failed = f", {fields['failed']} failed" if fields["failed"] else ""
    return Summary(f"running ({fields['active']} active{failed})", fields, "progress")


def _cronjob(obj: Mapping[str, Any]) -> Summary:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    fields = {
        "schedule": spec.get("schedule"),
        "lastScheduleTime": status.get("lastScheduleTime"),
        "lastSuccessfulTime": status.get("lastSuccessfulTime"),
        "active": len(status.get("active") or []),
    }
    text = f"schedule {fields['schedule']}"
    if fields["lastScheduleTime"]:
        text += f", last run {fields['lastScheduleTime']}"
    return Summary(text, fields, "progress" if fields["active"] else None)


def _networkpolicy(obj: Mapping[str, Any]) -> Summary:
    spec = obj.get("spec") or {}
    rules = len(spec.get("ingress") or [])
    egress = "restricted" if "Egress" in (spec.get("policyTypes") or []) else "open"
    fields = {"ingressRules": rules, "egress": egress}
    return Summary(f"{rules} ingress rule{'' if rules == 1 else 's'}, egress {egress}", fields)


def _httproute(obj: Mapping[str, Any]) -> Summary:
    hosts = ", ".join((obj.get("spec") or {}).get("hostnames") or [])
    conditions = [
        f"{c.get('type')}={c.get('status')}"
        for parent in (obj.get("status") or {}).get("parents") or []
        for c in parent.get("conditions") or []
        if c.get("type") in ("Accepted", "ResolvedRefs")
    ]
    fields = {"hostnames": hosts, "conditions": conditions}
    accepted = "Accepted=True" in conditions
    text = f"{hosts}  " + (", ".join(conditions) if conditions else "not yet accepted")
    return Summary(text, fields, "ok" if accepted else "progress")


def _ingress(obj: Mapping[str, Any]) -> Summary:
    hosts = ", ".join(str(r.get("host")) for r in (obj.get("spec") or {}).get("rules") or [])
    addresses = [
        str(i.get("ip") or i.get("hostname"))
        for i in ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    ]
    fields = {"hosts": hosts, "addresses": addresses}
    return Summary(
        f"{hosts}  " + (f"address {', '.join(addresses)}" if addresses else "no address yet"), fields
    )


def _generic(obj: Mapping[str, Any]) -> Summary:
    """Any other kind: its conditions (`Type=Status`), else its age."""
    conditions = [
        f"{c.get('type')}={c.get('status')}" for c in (obj.get("status") or {}).get("conditions") or []
    ]
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    text = ", ".join(conditions) if conditions else f"created {created}" if created else ""
    return Summary(text, {"conditions": conditions} if conditions else {})


# The kinds summarised here; a child kind added to render/kinds.py without an entry gets `_generic`.
SUMMARIES: dict[str, Callable[[Mapping[str, Any]], Summary]] = {
    "Deployment": _deployment,
    "Service": _service_summary,
    "HorizontalPodAutoscaler": _hpa,
    "PodDisruptionBudget": _pdb,
    "NetworkPolicy": _networkpolicy,
    "HTTPRoute": _httproute,
    "Ingress": _ingress,
    "Job": _job_summary,
    "CronJob": _cronjob,
}


# ---------------------------------------------------------------------------------------------- the text


@dataclass(frozen=True)
class Glyphs:
    """The tree's drawing characters; ASCII when the output cannot encode box drawing."""

    branch: str = "├─ "
    last: str = "└─ "
    pipe: str = "│  "
    space: str = "   "
    ellipsis: str = "…"


UNICODE = Glyphs()
ASCII = Glyphs(branch="|- ", last="`- ", pipe="|  ", space="   ", ellipsis="...")


def lines(
    tree: Mapping[str, Any],
    *,
    now: datetime,
    width: int = WIDTH,
    color: bool = False,
    glyphs: Glyphs = UNICODE,
) -> list[str]:
    """The tree as text lines at most `width` columns wide (longer texts end in an ellipsis; an image is cut in
    the middle, so its tag stays), ANSI colours only with `color`."""
    return [_render(line, width, color, glyphs) for line in _lines(tree, now, width, glyphs)]


def _lines(tree: Mapping[str, Any], now: datetime, width: int, glyphs: Glyphs) -> list[Line]:
    phase = tree["phase"]
    head: Line = [(str(tree["name"]), "bold"), ("  ", None), (phase or "(no status yet)", _state(phase))]
    if tree["readyServices"]:
        head.append((f"  {tree['readyServices']} services ready", None))
    observed = tree["observedGeneration"]
    generation = f"  generation {tree['generation']}"
    if not tree["current"]:
        # The CRD defaults observedGeneration to 0: an app the operator has not seen yet.
        generation += f" (status is of {observed})" if observed else " (not observed yet)"
    head.append((generation, None if tree["current"] else "progress"))
    out: list[Line] = [head]
    if tree["message"] and not (tree["current"] and phase == "Ready"):
        out.append([("  " + str(tree["message"]), _state(phase))])
    nodes: list[tuple[Line, list[tuple[Line, list[Segment]]]]] = []
    for service in tree["services"]:
        nodes.append((_service_line(service), [_child_lines(c) for c in service["children"]]))
    for job in tree.get("jobs") or []:
        nodes.append((_job_line(job), [_child_lines(c) for c in job["children"]]))
    if tree.get("otherChildren"):
        nodes.append(([("(not in the spec)", None)], [_child_lines(c) for c in tree["otherChildren"]]))
    for index, (service_line, children) in enumerate(nodes):
        last = index == len(nodes) - 1
        out.append([(glyphs.last if last else glyphs.branch, None), *service_line])
        indent = glyphs.space if last else glyphs.pipe
        for child_index, (child_line, details) in enumerate(children):
            child_last = child_index == len(children) - 1
            out.append([(indent + (glyphs.last if child_last else glyphs.branch), None), *child_line])
            detail_indent = indent + (glyphs.space if child_last else glyphs.pipe)
            for detail, style in details:
                text = _middle(detail, width - len(detail_indent), glyphs) if style is None else detail
                out.append([(detail_indent, None), (text, style)])
    if tree["warnings"]:
        out.append([("Warning events:", "failed")])
        for event in tree["warnings"]:
            count = f"x{event['count']}, " if event["count"] > 1 else ""
            when = f"({count}{_age(event['lastTimestamp'], now)} ago)"
            out.append([(f"  {event['reason']} {when}: ", "failed"), (str(event["message"]), None)])
    return out


def _service_line(service: Mapping[str, Any]) -> Line:
    phase = service["phase"]
    line: Line = [(str(service["name"]), "bold"), ("  ", None), (phase or "(no status)", _state(phase))]
    if phase == "Waiting" and service["waitingFor"]:
        line.append((" for " + ", ".join(service["waitingFor"]), "progress"))
    if service["endpoint"]:
        line.append(("  " + str(service["endpoint"]), None))
    # Progressing repeats the Deployment's counts and Degraded its failure, both shown under it.
    if service["message"] and phase not in ("Ready", "Waiting", "Progressing", "Degraded"):
        line.append(("  " + str(service["message"]), None))
    return line


def _job_line(job: Mapping[str, Any]) -> Line:
    phase = job["phase"]
    line: Line = [(f"job {job['name']}", "bold"), ("  ", None), (phase or "(no status)", _state(phase))]
    if phase == "Waiting" and job["waitingFor"]:
        line.append((" for " + ", ".join(job["waitingFor"]), "progress"))
    if job.get("lastResult"):
        line.append((f"  last run {job['lastResult']}", _state(job["lastResult"])))
    # Why it waits or failed (with what its pod said); a Succeeded or Scheduled job has nothing to add.
    if job["message"] and phase in ("Pending", "Running", "Failed"):
        line.append(("  " + str(job["message"]), None))
    return line


def _child_lines(child: Mapping[str, Any]) -> tuple[Line, list[Segment]]:
    line: Line = [(f"{child['kind']}/{child['name']}", None)]
    if child["summary"]:
        line.append(("  " + str(child["summary"]), child["state"]))
    details: list[Segment] = [(str(detail), None) for detail in child.get("details") or []]
    if child.get("problem"):
        details.append((str(child["problem"]), "failed"))
    return line, details


def _state(phase: str | None) -> Style | None:
    return PHASE_STATE.get(phase or "")


def _middle(text: str, room: int, glyphs: Glyphs) -> str:
    """`text` cut in its middle to `room` characters (an image keeps its registry and its tag)."""
    if len(text) <= room or room <= len(glyphs.ellipsis) + 2:
        return text
    keep = room - len(glyphs.ellipsis)
    head = keep // 2
    return text[:head] + glyphs.ellipsis + text[len(text) - (keep - head) :]


def _render(line: Line, width: int, color: bool, glyphs: Glyphs) -> str:
    """A line cut to `width` (ending in an ellipsis when cut), with its colours when `color`."""
    if sum(len(text) for text, _ in line) > width:
        room = width - len(glyphs.ellipsis)
        fitted: Line = []
        for text, style in line:
            if len(text) > room:
                fitted.append((text[:room] + glyphs.ellipsis, style))
                break
            fitted.append((text, style))
            room -= len(text)
        line = fitted
    return "".join(
        f"{_ANSI[style]}{text}{_RESET}" if color and style and text.strip() else text for text, style in line
    )


def _age(timestamp: str | None, now: datetime) -> str:
    """How long ago, kubectl style: 45s, 3m, 2h, 4d."""
    if not timestamp:
        return "?"
    try:
        seconds = max(0, int((now - datetime.fromisoformat(timestamp)).total_seconds()))
    except ValueError:
        return "?"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
