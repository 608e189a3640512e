#!/usr/bin/python3
"""Schema and consistency check of deploy/k8s/*.yaml, offline.

Debian 12 packages no kubeconform or kubeval, and kubectl (kubernetes-client
1.20) validates only against a live API server. What it does package is
python3-kubernetes (22.6.0, the Kubernetes 1.22 API), whose model classes
are generated from the API's OpenAPI schema: each has `openapi_types` (field
-> type) and `attribute_map` (field -> JSON name), and its setters reject a
missing required field. So each document is checked here by

  1. the model for its apiVersion and kind (an unknown pair is an error);
  2. a strict walk: every key must be a field of that model (no typos, no
     fields at the wrong level), every value of the declared type (str,
     int, bool, list[...], dict(str, ...), a nested model, or
     IntOrString/Quantity `object`);
  3. deserializing it with the client's ApiClient, which raises on a
     missing required field;
  4. cross-references: configMapRef/secretKeyRef/claimName/serviceName name
     an object in the set, selectors match their pod template's labels, the
     PDB and the Service select pods, named probe ports exist, and the node
     container's memory request equals its limit;
  5. the highly available shape (issue 22): the coordinator StatefulSet has
     at least two replicas, takes SLUICE_CATALOG from a Secret (no SQLite
     SLUICE_DB left in its ConfigMap), is ready on /readyz (the leader
     only); a Service that is not headless selects the coordinators on port
     7000 (it reaches the leader); every SLUICE_COORDINATOR given to a pod
     names every coordinator replica; a broker Deployment runs
     `sluice-coord broker`, and a Service selects it.

Usage: validate-k8s.py FILE...   Prints one line per problem; exit 1 if any.
"""
import re
import sys

import yaml
from kubernetes import client
from kubernetes.client import ApiClient

KINDS = {
    ("v1", "Secret"): "V1Secret",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Service"): "V1Service",
    ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
    ("apps/v1", "StatefulSet"): "V1StatefulSet",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
    ("batch/v1", "Job"): "V1Job",
}

problems = []


def problem(where, msg):
    problems.append("%s: %s" % (where, msg))


def check_value(value, typ, where):
    """Checks value against a type string from openapi_types."""
    if value is None:
        return
    m = re.match(r"list\[(.*)\]$", typ)
    if m:
        if not isinstance(value, list):
            problem(where, "expected a list, got %r" % (value,))
            return
        for i, v in enumerate(value):
            check_value(v, m.group(1), "%s[%d]" % (where, i))
        return
    m = re.match(r"dict\(([^,]*), (.*)\)$", typ)
    if m:
        if not isinstance(value, dict):
            problem(where, "expected a map, got %r" % (value,))
            return
        for k, v in value.items():
            check_value(v, m.group(2), "%s.%s" % (where, k))
        return
    if typ == "str":
        if not isinstance(value, str):
            problem(where, "expected a string, got %r (quote it)" % (value,))
    elif typ == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            problem(where, "expected an integer, got %r" % (value,))
    elif typ == "bool":
        if not isinstance(value, bool):
            problem(where, "expected true/false, got %r" % (value,))
    elif typ == "object":  # IntOrString, Quantity, RawExtension
        if not isinstance(value, (str, int, dict)):
            problem(where, "expected a string or integer, got %r" % (value,))
    elif typ == "datetime":
        pass
    elif hasattr(client, typ):
        check_model(value, getattr(client, typ), where)
    else:
        problem(where, "unknown schema type %s" % typ)


def check_model(obj, cls, where):
    if not isinstance(obj, dict):
        problem(where, "expected an object (%s), got %r" % (cls.__name__, obj))
        return
    by_json = {j: py for py, j in cls.attribute_map.items()}
    for key, value in obj.items():
        if key not in by_json:
            problem(where, "unknown field %r in %s" % (key, cls.__name__))
            continue
        check_value(value, cls.openapi_types[by_json[key]], "%s.%s" % (where, key))


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def container_env(c, objs):
    """The container's variables: envFrom ConfigMaps, then env (value or valueFrom)."""
    env = {}
    for ef in c.get("envFrom", []):
        cm = objs.get(("ConfigMap", ef.get("configMapRef", {}).get("name")))
        if cm is not None:
            env.update({k: {"value": v} for k, v in cm.get("data", {}).items()})
    env.update({e["name"]: e for e in c.get("env", [])})
    return env


def check_ha(objs):
    """Two coordinators on PostgreSQL, the leader's Service, the broker."""
    where = "deploy/k8s"
    coord = objs.get(("StatefulSet", "sluice-coord"))
    if coord is None:
        problem(where, "no StatefulSet sluice-coord")
        return
    spec = coord["spec"]
    replicas = spec.get("replicas", 1)
    if replicas < 2:
        problem(where, "sluice-coord has %d replica(s): no standby to take over" % replicas)
    labels = spec["template"]["metadata"].get("labels", {})
    c = spec["template"]["spec"]["containers"][0]
    env = container_env(c, objs)
    if "secretKeyRef" not in env.get("SLUICE_CATALOG", {}).get("valueFrom", {}):
        problem(where, "sluice-coord: SLUICE_CATALOG does not come from a Secret")
    if "SLUICE_DB" in env:
        problem(where, "sluice-coord: SLUICE_DB (a SQLite file) is still set")
    if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
        problem(where, "sluice-coord: readiness is not httpGet /readyz (ready = leading)")
    leader = [o for (k, _), o in objs.items() if k == "Service" and
              o["spec"].get("clusterIP") != "None" and o["spec"].get("selector") and
              labels_match(o["spec"]["selector"], labels)]
    if not any(p.get("port") == 7000 for o in leader for p in o["spec"].get("ports", [])):
        problem(where, "no Service (not headless) selects the coordinators on port 7000")
    want = ["%s-%d.%s:7000" % (coord["metadata"]["name"], i, spec["serviceName"])
            for i in range(replicas)]
    brokers = 0
    for (kind, name), o in objs.items():
        if kind not in ("StatefulSet", "Deployment"):
            continue
        for ct in o["spec"]["template"]["spec"]["containers"]:
            v = container_env(ct, objs).get("SLUICE_COORDINATOR", {}).get("value")
            if v is not None and sorted(v.split(",")) != sorted(want):
                problem(where, "%s %s: SLUICE_COORDINATOR %r does not name every coordinator %s"
                        % (kind, name, v, ",".join(want)))
            if kind == "Deployment" and ct.get("args", [])[:2] == ["sluice-coord", "broker"]:
                brokers += 1
                tl = o["spec"]["template"]["metadata"].get("labels", {})
                if not any(k == "Service" and labels_match(s["spec"].get("selector"), tl)
                           for (k, _), s in objs.items()):
                    problem(where, "Deployment %s (broker): no Service selects it" % name)
    if brokers == 0:
        problem(where, "no Deployment runs sluice-coord broker")


def main(paths):
    docs = []
    for path in paths:
        with open(path) as f:
            for i, d in enumerate(yaml.safe_load_all(f)):
                if d is None:
                    continue
                where = "%s#%d" % (path, i)
                if d.get("kind") == "Kustomization":
                    docs.append((where, d, None))
                    continue
                name = KINDS.get((d.get("apiVersion"), d.get("kind")))
                if name is None:
                    problem(where, "no schema for apiVersion %r kind %r" %
                            (d.get("apiVersion"), d.get("kind")))
                    continue
                if not d.get("metadata", {}).get("name"):
                    problem(where, "%s without metadata.name" % d.get("kind"))
                cls = getattr(client, name)
                check_model(d, cls, "%s %s/%s" % (where, d["kind"],
                                                  d.get("metadata", {}).get("name")))
                try:
                    ApiClient()._ApiClient__deserialize(d, name)
                except (ValueError, TypeError) as e:
                    problem(where, "rejected by %s: %s" % (name, e))
                docs.append((where, d, name))

    objs = {}
    for where, d, _ in docs:
        objs[(d["kind"], d.get("metadata", {}).get("name"))] = d

    def need(kind, name, where):
        if (kind, name) not in objs:
            problem(where, "refers to %s %r, which is not defined" % (kind, name))

    for where, d, name in docs:
        kind = d["kind"]
        if kind == "Kustomization":
            listed = set(d.get("resources", []))
            for p in paths:
                base = p.rsplit("/", 1)[-1]
                if base != "kustomization.yaml" and base not in listed:
                    problem(where, "%s is not listed in resources" % base)
            continue
        spec = d.get("spec", {})
        if kind in ("StatefulSet", "Deployment"):
            tmpl = spec["template"]
            labels = tmpl.get("metadata", {}).get("labels", {})
            if not labels_match(spec["selector"].get("matchLabels"), labels):
                problem(where, "selector does not match the pod template's labels")
            if kind == "StatefulSet":
                need("Service", spec.get("serviceName"), where)
                svc = objs.get(("Service", spec.get("serviceName")))
                if svc is not None and svc["spec"].get("clusterIP") != "None":
                    problem(where, "serviceName %r is not headless" % spec["serviceName"])
            claims = {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
            vols = {v["name"]: v for v in tmpl["spec"].get("volumes", [])}
            for v in vols.values():
                if "persistentVolumeClaim" in v:
                    need("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"], where)
            for c in tmpl["spec"]["containers"]:
                cw = "%s container %s" % (where, c["name"])
                ports = {p.get("name") for p in c.get("ports", [])}
                for ef in c.get("envFrom", []):
                    if "configMapRef" in ef:
                        need("ConfigMap", ef["configMapRef"]["name"], cw)
                for e in c.get("env", []):
                    ref = e.get("valueFrom", {}).get("secretKeyRef")
                    if ref is not None:
                        need("Secret", ref["name"], cw)
                        sec = objs.get(("Secret", ref["name"]))
                        if sec is not None and ref["key"] not in {
                                **sec.get("stringData", {}), **sec.get("data", {})}:
                            problem(cw, "Secret %r has no key %r" % (ref["name"], ref["key"]))
                for m in c.get("volumeMounts", []):
                    if m["name"] not in vols and m["name"] not in claims:
                        problem(cw, "mounts %r, which is no volume or claim" % m["name"])
                for probe in ("readinessProbe", "livenessProbe"):
                    hg = c.get(probe, {}).get("httpGet")
                    if hg is not None and isinstance(hg["port"], str) and hg["port"] not in ports:
                        problem(cw, "%s uses port %r, which is not declared" % (probe, hg["port"]))
                res = c.get("resources", {})
                if labels.get("app.kubernetes.io/component") == "node":
                    req = res.get("requests", {}).get("memory")
                    lim = res.get("limits", {}).get("memory")
                    if req is None or req != lim:
                        problem(cw, "memory request %r != limit %r (the limit is the node's "
                                "budget; keep them equal)" % (req, lim))
                    if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
                        problem(cw, "readiness probe is not httpGet /healthz")
        if kind == "PodDisruptionBudget" or kind == "Service":
            sel = (spec.get("selector", {}).get("matchLabels") if kind == "PodDisruptionBudget"
                   else spec.get("selector"))
            if not sel:
                problem(where, "%s without a selector" % kind)
            elif not any(labels_match(sel, o["spec"]["template"]["metadata"].get("labels", {}))
                       for (k, _), o in objs.items() if k in ("StatefulSet", "Deployment")):
                problem(where, "selector %r matches no pod template" % (sel,))

    check_ha(objs)
    for p in problems:
        print("validate-k8s: " + p)
    kinds = sorted("%s/%s" % (d["kind"], d.get("metadata", {}).get("name", "-"))
                   for _, d, _ in docs)
    print("validate-k8s: %d documents checked against the python3-kubernetes %s models: %s" %
          (len(docs), client.__version__, ", ".join(kinds)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
