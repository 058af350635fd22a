package packaging

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/egressguard/egressguard/internal/labagent"
)

const (
	namespace = "egressguard"
	stateDir  = "/var/lib/egressguard"
	httpPort  = 9466
)

// manifests decodes every file under kubernetes/ strictly (unknown fields
// are errors) into its Kubernetes API type, keyed by kind.
func manifests(t *testing.T) map[string]any {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests under kubernetes/: %v", err)
	}
	objects := map[string]any{}
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(text, &tm); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var obj any
		switch tm.APIVersion + "/" + tm.Kind {
		case "v1/Namespace":
			obj = &corev1.Namespace{}
		case "v1/ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "v1/ConfigMap":
			obj = &corev1.ConfigMap{}
		case "apps/v1/DaemonSet":
			obj = &appsv1.DaemonSet{}
		default:
			t.Fatalf("%s: unexpected %s %s", f, tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict(text, obj); err != nil {
			t.Fatalf("%s: strict decode as %s: %v", f, tm.Kind, err)
		}
		if _, dup := objects[tm.Kind]; dup {
			t.Fatalf("%s: a second %s", f, tm.Kind)
		}
		objects[tm.Kind] = obj
	}
	for _, kind := range []string{"Namespace", "ServiceAccount", "ConfigMap", "DaemonSet"} {
		if objects[kind] == nil {
			t.Fatalf("no %s manifest", kind)
		}
	}
	return objects
}

func readConfigMap(t *testing.T) *corev1.ConfigMap {
	t.Helper()
	return manifests(t)["ConfigMap"].(*corev1.ConfigMap)
}

func TestKubernetesManifestsAreConsistent(t *testing.T) {
	objs := manifests(t)
	ns := objs["Namespace"].(*corev1.Namespace)
	sa := objs["ServiceAccount"].(*corev1.ServiceAccount)
	cm := objs["ConfigMap"].(*corev1.ConfigMap)
	ds := objs["DaemonSet"].(*appsv1.DaemonSet)

	if ns.Name != namespace {
		t.Errorf("Namespace %q, want %q", ns.Name, namespace)
	}
	for _, m := range []metav1.ObjectMeta{sa.ObjectMeta, cm.ObjectMeta, ds.ObjectMeta} {
		if m.Namespace != namespace {
			t.Errorf("%s in namespace %q, want %q", m.Name, m.Namespace, namespace)
		}
	}
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Error("ServiceAccount mounts an API token the agent never uses")
	}
	if ds.Spec.Template.Spec.ServiceAccountName != sa.Name {
		t.Errorf("DaemonSet serviceAccountName %q, want %q", ds.Spec.Template.Spec.ServiceAccountName, sa.Name)
	}
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil {
		t.Fatalf("DaemonSet selector: %v", err)
	}
	if !sel.Matches(labels.Set(ds.Spec.Template.Labels)) {
		t.Errorf("DaemonSet selector %s does not match its template labels %v", sel, ds.Spec.Template.Labels)
	}

	var configMaps []string
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ConfigMap != nil {
				configMaps = append(configMaps, s.ConfigMap.Name)
			}
		}
	}
	if !slices.Equal(configMaps, []string{cm.Name}) {
		t.Errorf("DaemonSet mounts ConfigMaps %v, want [%s]", configMaps, cm.Name)
	}
}

func TestDaemonSet(t *testing.T) {
	ds := manifests(t)["DaemonSet"].(*appsv1.DaemonSet)
	pod := ds.Spec.Template.Spec

	if !pod.HostNetwork {
		t.Error("hostNetwork is off: the agent would watch and shape the pod's own veth")
	}
	if !pod.HostPID {
		t.Error("hostPID is off: attribution could not name the node's processes holding raw sockets")
	}
	if pod.HostIPC {
		t.Error("hostIPC is on; the agent does not need it")
	}
	if pod.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName %q, want system-node-critical", pod.PriorityClassName)
	}
	if want := []corev1.Toleration{{Operator: corev1.TolerationOpExists}}; !slices.Equal(pod.Tolerations, want) {
		t.Errorf("tolerations %+v, want %+v (run on every node, tainted or not)", pod.Tolerations, want)
	}
	ann := ds.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != "9466" || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("scrape annotations %v, want scrape=true port=9466 path=/metrics", ann)
	}

	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("container has no securityContext.capabilities")
	}
	if !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("capabilities.drop %v, want [ALL]", sc.Capabilities.Drop)
	}
	// The systemd unit's bounding set is the one list of what the agent needs.
	unitCaps, err := labagent.UnitCapabilities("egressguard.service")
	if err != nil {
		t.Fatal(err)
	}
	var want []corev1.Capability
	for _, c := range unitCaps {
		want = append(want, corev1.Capability(strings.TrimPrefix(c, "CAP_")))
	}
	slices.Sort(want)
	add := slices.Clone(sc.Capabilities.Add)
	slices.Sort(add)
	if !slices.Equal(add, want) {
		t.Errorf("capabilities.add %v, want exactly the unit's CapabilityBoundingSet %v", sc.Capabilities.Add, want)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("container is privileged")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("root filesystem is writable")
	}

	checkProbe(t, "liveness", c.LivenessProbe, "/healthz")
	checkProbe(t, "readiness", c.ReadinessProbe, "/readyz")

	var nodeName *corev1.EnvVarSource
	for _, e := range c.Env {
		if e.Name == "EGRESSGUARD_NODE_NAME" {
			nodeName = e.ValueFrom
		}
	}
	if nodeName == nil || nodeName.FieldRef == nil || nodeName.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("EGRESSGUARD_NODE_NAME is not the downward API's spec.nodeName: %+v", nodeName)
	}

	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	for _, v := range pod.Volumes {
		switch {
		case v.HostPath != nil:
			if v.HostPath.Path != stateDir || mounts[v.Name] != stateDir {
				t.Errorf("hostPath %s mounted at %s, want %s at %s", v.HostPath.Path, mounts[v.Name], stateDir, stateDir)
			}
			if v.HostPath.Type == nil || *v.HostPath.Type != corev1.HostPathDirectoryOrCreate {
				t.Errorf("hostPath %s type %v, want DirectoryOrCreate", v.HostPath.Path, v.HostPath.Type)
			}
		case v.Projected != nil:
			if mounts[v.Name] != "/etc/egressguard" {
				t.Errorf("config volume mounted at %q, want /etc/egressguard", mounts[v.Name])
			}
			if v.Projected.DefaultMode == nil || *v.Projected.DefaultMode != 0o400 {
				t.Errorf("config volume mode %v, want 0400 (it holds the webhook token)", v.Projected.DefaultMode)
			}
		}
	}
	if mounts["state"] != stateDir {
		t.Errorf("no volume mounted at %s", stateDir)
	}
}

func checkProbe(t *testing.T, name string, p *corev1.Probe, path string) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s probe: none, want GET %s on %d", name, path, httpPort)
		return
	}
	if p.HTTPGet.Path != path || p.HTTPGet.Port.IntValue() != httpPort {
		t.Errorf("%s probe: GET %s on %s, want %s on %d", name, p.HTTPGet.Path, p.HTTPGet.Port.String(), path, httpPort)
	}
}

// TestDaemonSetImageIsTheBuiltOne holds the DaemonSet to the image `make
// image` builds: the Makefile's IMAGE at its RELEASE tag.
func TestDaemonSetImageIsTheBuiltOne(t *testing.T) {
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	release := makeVar(t, string(mk), "RELEASE")
	image := makeVar(t, string(mk), "IMAGE")
	ds := manifests(t)["DaemonSet"].(*appsv1.DaemonSet)
	if got, want := ds.Spec.Template.Spec.Containers[0].Image, image+":"+release; got != want {
		t.Errorf("DaemonSet image %q, want %q (make image builds it)", got, want)
	}
}

// makeVar returns the value of a simple `NAME := value` or `NAME ?= value`
// line of a Makefile.
func makeVar(t *testing.T, mk, name string) string {
	t.Helper()
	for line := range strings.Lines(mk) {
		rest, ok := strings.CutPrefix(line, name)
		if !ok {
			continue
		}
		rest = strings.TrimSpace(rest)
		for _, op := range []string{":=", "?=", "="} {
			if v, ok := strings.CutPrefix(rest, op); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	t.Fatalf("Makefile sets no %s", name)
	return ""
}
