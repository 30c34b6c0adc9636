// Package kubernetes_test checks the Kubernetes manifests of this
// directory strictly against the Kubernetes and Prometheus Operator API
// schemas in schemas/, offline, and against the exporter: the ConfigMap's
// configuration loads, the shard flag agrees with the replicas, the
// Service, ServiceMonitor and Probe name the same port.
package kubernetes_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"go.yaml.in/yaml/v3"

	"github.com/smtp-exporter/smtp_exporter/collector/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// schemaFiles maps apiVersion and kind to the schema in schemas/.
var schemaFiles = map[string]string{
	"apps/v1 StatefulSet": "statefulset-apps-v1.json",
	"v1 Service":          "service-v1.json",
	"v1 ConfigMap":        "configmap-v1.json",
	"monitoring.coreos.com/v1 ServiceMonitor": "monitoring.coreos.com-servicemonitor-v1.json",
	"monitoring.coreos.com/v1 Probe":          "monitoring.coreos.com-probe-v1.json",
}

// manifest is one document of a manifest file, as JSON values.
type manifest struct {
	file string
	doc  map[string]any
}

func (m manifest) kind() string { return fmt.Sprintf("%v %v", m.doc["apiVersion"], m.doc["kind"]) }

func loadManifests(t *testing.T) []manifest {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var out []manifest
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var v any
			err := dec.Decode(&v)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if v == nil {
				continue
			}
			doc, ok := jsonValue(t, v).(map[string]any)
			if !ok {
				t.Fatalf("%s: a document that is not a mapping", f)
			}
			out = append(out, manifest{file: f, doc: doc})
		}
	}
	return out
}

// jsonValue turns a YAML value into what encoding/json decodes, as the
// API server sees it.
func jsonValue(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func loadSchema(t *testing.T, file string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("schemas", file))
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return s
}

// TestManifests_MatchAPISchemas checks each manifest against its kind's
// schema, strictly: a field the API does not have, a missing required
// field, a wrong type or a value outside an enum or pattern is an error.
func TestManifests_MatchAPISchemas(t *testing.T) {
	kinds := map[string]bool{}
	for _, m := range loadManifests(t) {
		file, ok := schemaFiles[m.kind()]
		if !ok {
			t.Errorf("%s: no schema for %s", m.file, m.kind())
			continue
		}
		kinds[m.kind()] = true
		for _, err := range validate(loadSchema(t, file), m.doc) {
			t.Errorf("%s (%s): %s", m.file, m.kind(), err)
		}
	}
	for kind := range schemaFiles {
		if !kinds[kind] {
			t.Errorf("no manifest of %s", kind)
		}
	}
}

// TestManifests_SchemaCheckBites breaks each kind of manifest in the ways
// the check is for, and expects it to say so.
func TestManifests_SchemaCheckBites(t *testing.T) {
	byKind := map[string]manifest{}
	for _, m := range loadManifests(t) {
		byKind[m.kind()] = m
	}
	for _, c := range []struct {
		kind, want string
		breakIt    func(doc map[string]any)
	}{
		{"apps/v1 StatefulSet", "unknown field", func(d map[string]any) {
			container(d)["imagePullPolicyy"] = "Always"
		}},
		{"apps/v1 StatefulSet", "want [integer", func(d map[string]any) { spec(d)["replicas"] = "3" }},
		{"apps/v1 StatefulSet", `required field "name"`, func(d map[string]any) { delete(container(d), "name") }},
		{"v1 Service", `unknown field "clusterIp"`, func(d map[string]any) { spec(d)["clusterIp"] = "None" }},
		{"monitoring.coreos.com/v1 Probe", "not one of", func(d map[string]any) {
			spec(d)["prober"].(map[string]any)["scheme"] = "ftp"
		}},
		{"monitoring.coreos.com/v1 ServiceMonitor", "unknown field", func(d map[string]any) {
			spec(d)["endpoints"].([]any)[0].(map[string]any)["scrapeInterval"] = "30s"
		}},
		{"monitoring.coreos.com/v1 Probe", "does not match", func(d map[string]any) { spec(d)["interval"] = "one minute" }},
		{"v1 ConfigMap", "want [string", func(d map[string]any) { d["data"].(map[string]any)["n"] = 1.0 }},
	} {
		m, ok := byKind[c.kind]
		if !ok {
			t.Fatalf("no %s manifest", c.kind)
		}
		doc := deepCopy(t, m.doc)
		c.breakIt(doc)
		errs := validate(loadSchema(t, schemaFiles[c.kind]), doc)
		if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, c.want) }) {
			t.Errorf("%s broken (%s): errors %q, want one with %q", c.kind, c.want, errs, c.want)
		}
	}
}

func deepCopy(t *testing.T, doc map[string]any) map[string]any {
	return jsonValue(t, doc).(map[string]any)
}

func spec(d map[string]any) map[string]any { return d["spec"].(map[string]any) }

func container(d map[string]any) map[string]any {
	pod := spec(d)["template"].(map[string]any)["spec"].(map[string]any)
	return pod["containers"].([]any)[0].(map[string]any)
}

// TestManifests_FitTheExporter checks what the schemas cannot: that the
// manifests and the exporter agree.
func TestManifests_FitTheExporter(t *testing.T) {
	byKind := map[string]manifest{}
	for _, m := range loadManifests(t) {
		byKind[m.kind()] = m
	}
	sts, svc := byKind["apps/v1 StatefulSet"].doc, byKind["v1 Service"].doc
	sm, probe := byKind["monitoring.coreos.com/v1 ServiceMonitor"].doc, byKind["monitoring.coreos.com/v1 Probe"].doc
	cm := byKind["v1 ConfigMap"].doc

	// The ConfigMap holds a configuration that loads, target files included.
	dir := t.TempDir()
	for name, content := range cm["data"].(map[string]any) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content.(string)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.LoadFile(filepath.Join(dir, "smtp_exporter.yml"))
	if err != nil {
		t.Fatalf("the ConfigMap's configuration: %v", err)
	}
	var files config.TargetFiles
	files.Scan(cfg.TargetFiles, true)
	all, errs := files.Build(cfg)
	if len(errs) != 0 || len(all.Targets) == 0 {
		t.Errorf("the ConfigMap's target files: %d targets, errors %v", len(all.Targets), errs)
	}
	if _, ok := cfg.Modules[probe["spec"].(map[string]any)["module"].(string)]; !ok {
		t.Errorf("probe.yaml's module is not in the ConfigMap's configuration")
	}

	// The shard flag: the index from the pod-index label, the count the
	// replicas.
	c := container(sts)
	var args []string
	for _, a := range c["args"].([]any) {
		args = append(args, a.(string))
	}
	replicas := int(spec(sts)["replicas"].(float64))
	want := fmt.Sprintf("--targets.shard=$(SHARD_INDEX)/%d", replicas)
	if !slices.Contains(args, want) {
		t.Errorf("statefulset.yaml's args %q lack %s: the count must be the replicas", args, want)
	}
	var fieldPath string
	for _, e := range c["env"].([]any) {
		if e := e.(map[string]any); e["name"] == "SHARD_INDEX" {
			fieldPath, _ = e["valueFrom"].(map[string]any)["fieldRef"].(map[string]any)["fieldPath"].(string)
		}
	}
	if fieldPath != "metadata.labels['apps.kubernetes.io/pod-index']" {
		t.Errorf("SHARD_INDEX comes from %q, want the pod-index label", fieldPath)
	}
	// Every flag is one the exporter has (its README's flags table).
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range args {
		flag, _, _ := strings.Cut(a, "=")
		if !bytes.Contains(readme, []byte("| `"+flag+"` |")) {
			t.Errorf("statefulset.yaml passes %s, which README.md's flags table does not have", flag)
		}
	}
	cfgArg := fmt.Sprintf("--config.file=%s/smtp_exporter.yml", volumeMountPath(c))
	if !slices.Contains(args, cfgArg) {
		t.Errorf("args %q lack %s, where the ConfigMap is mounted", args, cfgArg)
	}

	// One port, named alike everywhere.
	ports := c["ports"].([]any)
	port := ports[0].(map[string]any)
	svcPort := spec(svc)["ports"].([]any)[0].(map[string]any)
	if svcPort["targetPort"] != port["name"] || spec(sm)["endpoints"].([]any)[0].(map[string]any)["port"] != svcPort["name"] {
		t.Errorf("the container port %v, the Service's target port %v and the ServiceMonitor's port do not agree", port["name"], svcPort["targetPort"])
	}
	if port["containerPort"] != 9799.0 || svcPort["port"] != 9799.0 {
		t.Errorf("ports %v and %v, want the exporter's 9799", port["containerPort"], svcPort["port"])
	}
	wantURL := fmt.Sprintf("%s.%s.svc:%v", svc["metadata"].(map[string]any)["name"], svc["metadata"].(map[string]any)["namespace"], svcPort["port"])
	if got := spec(probe)["prober"].(map[string]any)["url"]; got != wantURL {
		t.Errorf("probe.yaml's prober url %v, want the Service's %s", got, wantURL)
	}
	if !reflect.DeepEqual(spec(sm)["selector"].(map[string]any)["matchLabels"], spec(svc)["selector"]) {
		t.Errorf("the ServiceMonitor does not select the Service by its labels")
	}
}

func volumeMountPath(c map[string]any) string {
	for _, m := range c["volumeMounts"].([]any) {
		if m := m.(map[string]any); m["name"] == "config" {
			return m["mountPath"].(string)
		}
	}
	return ""
}

// validate checks v against a JSON schema, in the subset of JSON Schema
// the Kubernetes and Prometheus Operator schemas use. A keyword outside
// that subset is itself an error, so that no constraint is skipped
// silently. Not checked: the format of strings (int32, date-time,
// byte) and the CEL rules of x-kubernetes-validations, which only an API
// server evaluates.
func validate(schema map[string]any, v any) []string {
	var errs []string
	validateAt(schema, v, "", &errs)
	return errs
}

// annotations are schema keys that constrain nothing this check can see.
var annotations = map[string]bool{
	"description": true, "format": true, "$schema": true, "default": true, "title": true,
	"x-kubernetes-group-version-kind": true, "x-kubernetes-list-type": true,
	"x-kubernetes-list-map-keys": true, "x-kubernetes-map-type": true,
	"x-kubernetes-patch-strategy": true, "x-kubernetes-patch-merge-key": true,
	"x-kubernetes-validations": true, "x-kubernetes-unions": true,
}

func validateAt(s map[string]any, v any, path string, errs *[]string) {
	fail := func(format string, args ...any) {
		*errs = append(*errs, fmt.Sprintf("%s: %s", orRoot(path), fmt.Sprintf(format, args...)))
	}
	for k := range s {
		switch k {
		case "type", "enum", "properties", "additionalProperties", "required", "items",
			"oneOf", "anyOf", "allOf", "pattern", "minimum", "maximum", "minLength", "maxLength",
			"minItems", "maxItems", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields":
		default:
			if !annotations[k] {
				fail("schema keyword %q is not supported by this check", k)
			}
		}
	}
	if s["x-kubernetes-int-or-string"] == true {
		if _, isString := v.(string); !isString && !isInteger(v) {
			fail("want an integer or a string, got %s", jsonType(v))
		}
	}
	if t, ok := s["type"]; ok && !typeMatches(t, v) {
		fail("want %v, got %s", t, jsonType(v))
		return
	}
	if e, ok := s["enum"].([]any); ok && !slices.ContainsFunc(e, func(x any) bool { return reflect.DeepEqual(x, v) }) {
		fail("%v is not one of %v", v, e)
	}
	for _, kw := range []string{"oneOf", "anyOf"} {
		subs, ok := s[kw].([]any)
		if !ok {
			continue
		}
		matched := 0
		for _, sub := range subs {
			var subErrs []string
			validateAt(sub.(map[string]any), v, path, &subErrs)
			if len(subErrs) == 0 {
				matched++
			}
		}
		if matched == 0 || kw == "oneOf" && matched > 1 {
			fail("matches %d of the %d schemas of %s", matched, len(subs), kw)
		}
	}
	if subs, ok := s["allOf"].([]any); ok {
		for _, sub := range subs {
			validateAt(sub.(map[string]any), v, path, errs)
		}
	}
	switch v := v.(type) {
	case map[string]any:
		validateObject(s, v, path, errs)
	case []any:
		if n, ok := s["minItems"].(float64); ok && float64(len(v)) < n {
			fail("fewer than %v items", n)
		}
		if n, ok := s["maxItems"].(float64); ok && float64(len(v)) > n {
			fail("more than %v items", n)
		}
		if items, ok := s["items"].(map[string]any); ok {
			for i, e := range v {
				validateAt(items, e, fmt.Sprintf("%s[%d]", path, i), errs)
			}
		}
	case string:
		if p, ok := s["pattern"].(string); ok {
			re, err := regexp.Compile(p)
			if err != nil {
				fail("pattern %q does not compile: %v", p, err)
			} else if !re.MatchString(v) {
				fail("%q does not match %s", v, p)
			}
		}
		if n, ok := s["minLength"].(float64); ok && float64(len([]rune(v))) < n {
			fail("shorter than %v", n)
		}
		if n, ok := s["maxLength"].(float64); ok && float64(len([]rune(v))) > n {
			fail("longer than %v", n)
		}
	case float64:
		if n, ok := s["minimum"].(float64); ok && v < n {
			fail("%v is below the minimum %v", v, n)
		}
		if n, ok := s["maximum"].(float64); ok && v > n {
			fail("%v is above the maximum %v", v, n)
		}
	}
}

func validateObject(s map[string]any, v map[string]any, path string, errs *[]string) {
	props, _ := s["properties"].(map[string]any)
	if req, ok := s["required"].([]any); ok {
		for _, r := range req {
			if _, ok := v[r.(string)]; !ok {
				*errs = append(*errs, fmt.Sprintf("%s: required field %q is missing", orRoot(path), r))
			}
		}
	}
	for _, k := range slices.Sorted(mapsKeys(v)) {
		p := path + "." + k
		if ps, ok := props[k].(map[string]any); ok {
			validateAt(ps, v[k], p, errs)
			continue
		}
		switch ap := s["additionalProperties"].(type) {
		case bool:
			if !ap {
				*errs = append(*errs, fmt.Sprintf("%s: unknown field %q", orRoot(path), k))
			}
		case map[string]any:
			validateAt(ap, v[k], p, errs)
		case nil:
			// A structural schema without additionalProperties prunes
			// what it does not list; strict validation refuses it, unless
			// the schema keeps unknown fields.
			if props != nil && s["x-kubernetes-preserve-unknown-fields"] != true {
				*errs = append(*errs, fmt.Sprintf("%s: unknown field %q", orRoot(path), k))
			}
		}
	}
}

func mapsKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func orRoot(path string) string {
	if path == "" {
		return "(document)"
	}
	return strings.TrimPrefix(path, ".")
}

func typeMatches(t, v any) bool {
	switch t := t.(type) {
	case string:
		return oneType(t, v)
	case []any:
		return slices.ContainsFunc(t, func(x any) bool { s, _ := x.(string); return oneType(s, v) })
	}
	return false
}

func oneType(t string, v any) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "integer":
		return isInteger(v)
	case "number":
		_, ok := v.(float64)
		return ok
	case "null":
		return v == nil
	}
	return false
}

func isInteger(v any) bool {
	f, ok := v.(float64)
	return ok && f == math.Trunc(f)
}

func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return fmt.Sprintf("string %q", v)
	case bool:
		return "boolean"
	case float64:
		if isInteger(v) {
			return "integer"
		}
		return "number"
	}
	return fmt.Sprintf("%T", v)
}
