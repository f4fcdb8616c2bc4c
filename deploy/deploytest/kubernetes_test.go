package deploytest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/registry-bridge/bridge/internal/testenv"
)

// exampleClientSecret stands in for the OIDC client secret an operator
// writes to overlays/example/secrets/oidc-client-secret.
const exampleClientSecret = "test-client-secret"

func TestKubernetes(t *testing.T) {
	bin := testenv.BuildBridge(t)
	keysDir := generateKeys(t, bin, filepath.Join(t.TempDir(), "keys"))

	tests := []struct {
		dir string
		// withStack: the overlay brings Redis, the registry and Ingresses.
		withStack bool
		namespace string
	}{
		{dir: "base"},
		{dir: "overlays/example", withStack: true, namespace: "registry"},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			objs := renderKustomize(t, tt.dir, keysDir)
			k := &k8sStack{objs: objs, keysDir: keysDir}
			bridge := k.workload(t, "Deployment", "registry-bridge")
			pod := k.materialize(t, bridge, "bridge")
			cfg := k.bridgeConfig(t, bin, pod)

			t.Run("bridge deployment", func(t *testing.T) {
				if r := bridge.Spec.Replicas; r == nil || *r < 2 {
					t.Errorf("replicas %s: want 2 or more", fmtInt(r))
				}
				checkPodSecurity(t, bridge)
				checkProbes(t, pod.container, listenPort(t, cfg.Listen))
				if _, ok := pod.mounts.find(path.Dir(cfg.OIDC.ClientSecretFile)); !ok || !strings.HasPrefix(pod.origin(t, cfg.OIDC.ClientSecretFile), "secret ") {
					t.Errorf("oidc.client_secret_file %s must come from a Secret", cfg.OIDC.ClientSecretFile)
				}
				for _, f := range []string{cfg.Token.SigningKeyFile, cfg.OIDC.EncryptionKeyFile} {
					if o := pod.origin(t, f); !strings.HasPrefix(o, "secret ") {
						t.Errorf("%s comes from %s, want a Secret", f, o)
					}
				}
				if !strings.HasPrefix(cfg.PublicURL, "https://") {
					t.Errorf("public_url %q: want https behind the Ingress", cfg.PublicURL)
				}
			})
			t.Run("service and disruption budget", func(t *testing.T) {
				svc := k.service(t, "registry-bridge")
				k.checkServiceTargets(t, svc, bridge)
				k.checkPDB(t, "registry-bridge", bridge)
			})
			t.Run("references", func(t *testing.T) {
				for _, w := range k.workloads() {
					k.checkReferences(t, w)
				}
			})
			t.Run("access rules", func(t *testing.T) {
				checkPolicy(t, cfg.Access, []policyCase{
					{"alice", []string{"registry-admins"}, "repository:team-b/app:pull,push,delete", "delete,pull,push"},
					{"bob", []string{"team-a"}, "repository:team-a/app:pull,push", "pull,push"},
					{"bob", []string{"team-a"}, "repository:team-b/app:pull,push", ""},
				})
			})
			if !tt.withStack {
				return
			}
			t.Run("namespace", func(t *testing.T) {
				for _, o := range objs {
					if o.Kind != "Namespace" && o.Metadata.Namespace != tt.namespace {
						t.Errorf("%s/%s: namespace %q, want %q", o.Kind, o.Metadata.Name, o.Metadata.Namespace, tt.namespace)
					}
				}
			})
			t.Run("ingress", func(t *testing.T) {
				host, _ := urlHostPort(t, cfg.PublicURL)
				k.checkIngress(t, "registry-bridge", host, "registry-bridge")
				regHost, _ := hostPort(t, cfg.Token.Service)
				k.checkIngress(t, "registry", regHost, "registry")
			})
			t.Run("redis", func(t *testing.T) { k.checkRedis(t, cfg) })
			t.Run("registry", func(t *testing.T) { k.checkRegistry(t, cfg, pod) })
		})
	}
}

// renderKustomize builds deploy/kubernetes/<dir> with the Kustomize API,
// on an in-memory copy of deploy/kubernetes that also holds the files an
// operator generates into overlays/example/secrets.
func renderKustomize(t *testing.T, dir, keysDir string) []k8sObject {
	t.Helper()
	src := filepath.Join(testenv.RepoRoot(t), "deploy", "kubernetes")
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return mem.WriteFile("/k/"+filepath.ToSlash(rel), data)
	})
	if err != nil {
		t.Fatal(err)
	}
	secrets := "/k/overlays/example/secrets/"
	for _, f := range []string{"signing.key", "signing.crt", "encryption.key"} {
		data, err := os.ReadFile(filepath.Join(keysDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := mem.WriteFile(secrets+f, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := mem.WriteFile(secrets+"oidc-client-secret", []byte(exampleClientSecret)); err != nil {
		t.Fatal(err)
	}

	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, "/k/"+dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	var objs []k8sObject
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		var o k8sObject
		if err := n.Decode(&o); err != nil {
			t.Fatal(err)
		}
		o.node = &n
		objs = append(objs, o)
	}
	return objs
}

// k8sObject is one rendered resource: its header, the data of ConfigMaps
// and Secrets, and the node to decode the rest from.
type k8sObject struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   k8sMeta           `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	node       *yaml.Node
}

type k8sMeta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// The parts of the Kubernetes API these tests read.
type (
	workload struct {
		Kind     string  `yaml:"kind"`
		Metadata k8sMeta `yaml:"metadata"`
		Spec     struct {
			Replicas *int `yaml:"replicas"`
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Template struct {
				Metadata k8sMeta `yaml:"metadata"`
				Spec     podSpec `yaml:"spec"`
			} `yaml:"template"`
			VolumeClaimTemplates []struct {
				Metadata k8sMeta `yaml:"metadata"`
			} `yaml:"volumeClaimTemplates"`
		} `yaml:"spec"`
	}
	podSpec struct {
		AutomountServiceAccountToken *bool           `yaml:"automountServiceAccountToken"`
		SecurityContext              securityContext `yaml:"securityContext"`
		Containers                   []container     `yaml:"containers"`
		Volumes                      []volume        `yaml:"volumes"`
	}
	securityContext struct {
		RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
		RunAsUser                *int64 `yaml:"runAsUser"`
		ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
		SeccompProfile struct {
			Type string `yaml:"type"`
		} `yaml:"seccompProfile"`
	}
	container struct {
		Name    string   `yaml:"name"`
		Image   string   `yaml:"image"`
		Args    []string `yaml:"args"`
		Env     []envVar `yaml:"env"`
		EnvFrom []struct {
			ConfigMapRef *struct {
				Name string `yaml:"name"`
			} `yaml:"configMapRef"`
			SecretRef *struct {
				Name string `yaml:"name"`
			} `yaml:"secretRef"`
		} `yaml:"envFrom"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		StartupProbe   *probe `yaml:"startupProbe"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext securityContext `yaml:"securityContext"`
		VolumeMounts    []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			SubPath   string `yaml:"subPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	}
	envVar struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			ConfigMapKeyRef *keyRef `yaml:"configMapKeyRef"`
			SecretKeyRef    *keyRef `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	}
	keyRef struct {
		Name string `yaml:"name"`
		Key  string `yaml:"key"`
	}
	probe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
		TCPSocket *struct {
			Port string `yaml:"port"`
		} `yaml:"tcpSocket"`
		Exec *struct {
			Command []string `yaml:"command"`
		} `yaml:"exec"`
	}
	volume struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name  string      `yaml:"name"`
			Items []keyToPath `yaml:"items"`
		} `yaml:"configMap"`
		Secret *struct {
			SecretName string      `yaml:"secretName"`
			Items      []keyToPath `yaml:"items"`
		} `yaml:"secret"`
		EmptyDir              *struct{} `yaml:"emptyDir"`
		PersistentVolumeClaim *struct {
			ClaimName string `yaml:"claimName"`
		} `yaml:"persistentVolumeClaim"`
	}
	keyToPath struct {
		Key  string `yaml:"key"`
		Path string `yaml:"path"`
	}
	service struct {
		Metadata k8sMeta `yaml:"metadata"`
		Spec     struct {
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				Name       string `yaml:"name"`
				Port       int    `yaml:"port"`
				TargetPort string `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	ingress struct {
		Spec struct {
			TLS []struct {
				Hosts      []string `yaml:"hosts"`
				SecretName string   `yaml:"secretName"`
			} `yaml:"tls"`
			Rules []struct {
				Host string `yaml:"host"`
				HTTP struct {
					Paths []struct {
						Path    string `yaml:"path"`
						Backend struct {
							Service struct {
								Name string `yaml:"name"`
								Port struct {
									Name   string `yaml:"name"`
									Number int    `yaml:"number"`
								} `yaml:"port"`
							} `yaml:"service"`
						} `yaml:"backend"`
					} `yaml:"paths"`
				} `yaml:"http"`
			} `yaml:"rules"`
		} `yaml:"spec"`
	}
	pdb struct {
		Spec struct {
			MinAvailable   *string `yaml:"minAvailable"`
			MaxUnavailable *string `yaml:"maxUnavailable"`
			Selector       struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
		} `yaml:"spec"`
	}
)

// k8sStack is one rendered kustomization.
type k8sStack struct {
	objs    []k8sObject
	keysDir string
}

// get returns the object of kind named name, decoded into v.
func (k *k8sStack) get(t *testing.T, kind, name string, v any) bool {
	t.Helper()
	for _, o := range k.objs {
		if o.Kind == kind && o.Metadata.Name == name {
			if v != nil {
				if err := o.node.Decode(v); err != nil {
					t.Fatalf("%s/%s: %v", kind, name, err)
				}
			}
			return true
		}
	}
	return false
}

// find returns the ConfigMap or Secret named name.
func (k *k8sStack) find(kind, name string) (k8sObject, bool) {
	for _, o := range k.objs {
		if o.Kind == kind && o.Metadata.Name == name {
			return o, true
		}
	}
	return k8sObject{}, false
}

func (k *k8sStack) workload(t *testing.T, kind, name string) workload {
	t.Helper()
	var w workload
	if !k.get(t, kind, name, &w) {
		t.Fatalf("no %s %s in the rendered manifests", kind, name)
	}
	return w
}

func (k *k8sStack) workloads() []workload {
	var ws []workload
	for _, o := range k.objs {
		if o.Kind == "Deployment" || o.Kind == "StatefulSet" {
			var w workload
			if err := o.node.Decode(&w); err == nil {
				ws = append(ws, w)
			}
		}
	}
	return ws
}

func (k *k8sStack) service(t *testing.T, name string) service {
	t.Helper()
	var s service
	if !k.get(t, "Service", name, &s) {
		t.Fatalf("no Service %s", name)
	}
	return s
}

// podFS is one container's filesystem as far as its mounts go,
// materialized in a temporary directory, and its environment.
type podFS struct {
	container container
	mounts    mounts
	origins   map[string]string // file on this machine → "secret NAME/KEY" etc.
	env       map[string]string
}

// origin returns what provides the container path p.
func (p *podFS) origin(t *testing.T, cpath string) string {
	t.Helper()
	host, ok := p.mounts.hostPath(cpath)
	if !ok {
		return "nothing (not mounted)"
	}
	if o, ok := p.origins[host]; ok {
		return o
	}
	return "nothing (no such key)"
}

// materialize writes out the named container's ConfigMap and Secret
// volumes as the kubelet would, and resolves its environment.
func (k *k8sStack) materialize(t *testing.T, w workload, name string) *podFS {
	t.Helper()
	var c *container
	for i := range w.Spec.Template.Spec.Containers {
		if w.Spec.Template.Spec.Containers[i].Name == name {
			c = &w.Spec.Template.Spec.Containers[i]
		}
	}
	if c == nil {
		t.Fatalf("%s: no container %s", w.Metadata.Name, name)
	}
	p := &podFS{container: *c, origins: map[string]string{}}
	vols := map[string]volume{}
	for _, v := range w.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	for _, vm := range c.VolumeMounts {
		v, ok := vols[vm.Name]
		if !ok {
			t.Fatalf("%s: volumeMount %s has no volume", w.Metadata.Name, vm.Name)
		}
		if vm.SubPath != "" {
			t.Errorf("%s: %s uses subPath; such mounts never see ConfigMap or Secret updates", w.Metadata.Name, vm.MountPath)
		}
		dir := t.TempDir()
		switch {
		case v.ConfigMap != nil:
			o, ok := k.find("ConfigMap", v.ConfigMap.Name)
			if !ok {
				t.Errorf("%s: ConfigMap %s does not exist", w.Metadata.Name, v.ConfigMap.Name)
			}
			p.writeKeys(t, dir, "configmap "+v.ConfigMap.Name, o.Data, v.ConfigMap.Items, false)
		case v.Secret != nil:
			o, ok := k.find("Secret", v.Secret.SecretName)
			data := o.Data
			if !ok {
				// The base leaves Secrets to the operator: stand in for
				// them with the files the bridge config names.
				data = k.standInSecret(t, v.Secret.SecretName)
			}
			p.writeKeys(t, dir, "secret "+v.Secret.SecretName, data, v.Secret.Items, true)
		}
		p.mounts = append(p.mounts, mount{Target: vm.MountPath, Source: dir, Origin: "volume " + vm.Name})
	}
	p.env = k.resolveEnv(t, w, *c)
	return p
}

// writeKeys writes a ConfigMap's or Secret's keys (or only items) as files.
func (p *podFS) writeKeys(t *testing.T, dir, origin string, data map[string]string, items []keyToPath, b64 bool) {
	t.Helper()
	files := map[string]string{} // file name → key
	if len(items) == 0 {
		for key := range data {
			files[key] = key
		}
	}
	for _, it := range items {
		if _, ok := data[it.Key]; !ok {
			t.Errorf("%s has no key %s", origin, it.Key)
		}
		files[it.Path] = it.Key
	}
	for name, key := range files {
		v, ok := data[key]
		if !ok {
			continue
		}
		content := []byte(v)
		if b64 {
			var err error
			if content, err = base64.StdEncoding.DecodeString(v); err != nil {
				t.Fatalf("%s key %s: %v", origin, key, err)
			}
		}
		f := filepath.Join(dir, name)
		writeFile(t, f, content)
		p.origins[f] = origin + "/" + key
	}
}

// standInSecret returns data for a Secret the base expects the operator
// to create, with the keys the base's documentation names.
func (k *k8sStack) standInSecret(t *testing.T, name string) map[string]string {
	t.Helper()
	enc := base64.StdEncoding.EncodeToString
	switch name {
	case "registry-bridge-keys":
		data := map[string]string{}
		for _, f := range []string{"signing.key", "signing.crt", "encryption.key"} {
			b, err := os.ReadFile(filepath.Join(k.keysDir, f))
			if err != nil {
				t.Fatal(err)
			}
			data[f] = enc(b)
		}
		return data
	case "registry-bridge-oidc":
		return map[string]string{"client-secret": enc([]byte(exampleClientSecret))}
	}
	t.Errorf("Secret %s is neither rendered nor one the base documents", name)
	return nil
}

// varRef is a Kubernetes dependent environment variable reference.
var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// resolveEnv computes a container's environment as the kubelet does:
// envFrom first, then env in order, $(NAME) expanded from what is
// defined before.
func (k *k8sStack) resolveEnv(t *testing.T, w workload, c container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			o, ok := k.find("ConfigMap", ef.ConfigMapRef.Name)
			if !ok {
				t.Errorf("%s: envFrom ConfigMap %s does not exist", w.Metadata.Name, ef.ConfigMapRef.Name)
			}
			maps.Copy(env, o.Data)
		case ef.SecretRef != nil:
			t.Errorf("%s: envFrom a Secret puts secrets in the environment; mount them", w.Metadata.Name)
		}
	}
	for _, e := range c.Env {
		v := e.Value
		switch {
		case e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			o, ok := k.find("ConfigMap", ref.Name)
			if _, has := o.Data[ref.Key]; !ok || !has {
				t.Errorf("%s: env %s: ConfigMap %s has no key %s", w.Metadata.Name, e.Name, ref.Name, ref.Key)
			}
			v = o.Data[ref.Key]
		case e.ValueFrom != nil:
			t.Errorf("%s: env %s: only configMapKeyRef is expected", w.Metadata.Name, e.Name)
		default:
			v = varRef.ReplaceAllStringFunc(v, func(ref string) string {
				name := varRef.FindStringSubmatch(ref)[1]
				if val, ok := env[name]; ok {
					return val
				}
				t.Errorf("%s: env %s refers to $(%s), which is not defined before it", w.Metadata.Name, e.Name, name)
				return ref
			})
		}
		env[e.Name] = v
	}
	return env
}

// bridgeConfig checks the bridge container's config with `bridge config
// check` (its mounts mapped here, its environment) and returns it.
func (k *k8sStack) bridgeConfig(t *testing.T, bin string, p *podFS) bridgeConfig {
	t.Helper()
	configPath := flagValue(p.container.Args, "--config")
	if configPath == "" {
		t.Fatalf("bridge container: no --config in args %v", p.container.Args)
	}
	file, ok := p.mounts.hostPath(configPath)
	if !ok {
		t.Fatalf("bridge container: %s is not mounted", configPath)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("bridge container: %s: %v (%s)", configPath, err, p.origin(t, configPath))
	}
	mapped := filepath.Join(t.TempDir(), "bridge.yaml")
	writeFile(t, mapped, rewritePaths(t, data, p.mounts))
	checkBridgeConfig(t, bin, mapped, p.env)
	return parseBridgeConfig(t, data, p.env)
}

// checkPodSecurity checks the pod and every container run unprivileged
// on a read-only root filesystem.
func checkPodSecurity(t *testing.T, w workload) {
	t.Helper()
	ps := w.Spec.Template.Spec
	if a := ps.AutomountServiceAccountToken; a == nil || *a {
		t.Errorf("%s: want automountServiceAccountToken: false", w.Metadata.Name)
	}
	if ps.SecurityContext.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("%s: want seccompProfile RuntimeDefault", w.Metadata.Name)
	}
	for _, c := range ps.Containers {
		sc := c.SecurityContext
		nonRoot := sc.RunAsNonRoot
		if nonRoot == nil {
			nonRoot = ps.SecurityContext.RunAsNonRoot
		}
		if nonRoot == nil || !*nonRoot {
			t.Errorf("%s/%s: want runAsNonRoot: true", w.Metadata.Name, c.Name)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s/%s: want readOnlyRootFilesystem: true", w.Metadata.Name, c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s/%s: want allowPrivilegeEscalation: false", w.Metadata.Name, c.Name)
		}
		if !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s/%s: want capabilities.drop [ALL]", w.Metadata.Name, c.Name)
		}
		if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" {
			t.Errorf("%s/%s: want cpu and memory requests", w.Metadata.Name, c.Name)
		}
		if c.Resources.Limits["memory"] == "" {
			t.Errorf("%s/%s: want a memory limit", w.Metadata.Name, c.Name)
		}
		if c.LivenessProbe == nil || c.ReadinessProbe == nil {
			t.Errorf("%s/%s: want liveness and readiness probes", w.Metadata.Name, c.Name)
		}
	}
}

// containerPort resolves a probe's or Service's port (name or number) to
// the container port number, or 0.
func containerPort(c container, port string) int {
	for _, p := range c.Ports {
		if p.Name == port || strconv.Itoa(p.ContainerPort) == port {
			return p.ContainerPort
		}
	}
	return 0
}

// checkProbes checks the bridge's probes hit /healthz and /readyz on the
// port the config listens on.
func checkProbes(t *testing.T, c container, listen int) {
	t.Helper()
	for _, pr := range []struct {
		name  string
		probe *probe
		path  string
	}{
		{"livenessProbe", c.LivenessProbe, "/healthz"},
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
		{"startupProbe", c.StartupProbe, "/healthz"},
	} {
		if pr.probe == nil {
			if pr.name != "startupProbe" {
				t.Errorf("%s missing", pr.name)
			}
			continue
		}
		if pr.probe.HTTPGet == nil || pr.probe.HTTPGet.Path != pr.path {
			t.Errorf("%s: want httpGet %s", pr.name, pr.path)
			continue
		}
		if got := containerPort(c, pr.probe.HTTPGet.Port); got != listen {
			t.Errorf("%s: port %q is container port %d, the bridge listens on %d", pr.name, pr.probe.HTTPGet.Port, got, listen)
		}
	}
}

// checkServiceTargets checks the Service selects the workload's pods and
// its target ports exist on them.
func (k *k8sStack) checkServiceTargets(t *testing.T, s service, w workload) {
	t.Helper()
	if len(s.Spec.Selector) == 0 || !subset(s.Spec.Selector, w.Spec.Template.Metadata.Labels) {
		t.Errorf("Service %s selector %v does not select %s's pods %v", s.Metadata.Name, s.Spec.Selector, w.Metadata.Name, w.Spec.Template.Metadata.Labels)
	}
	for _, p := range s.Spec.Ports {
		found := false
		for _, c := range w.Spec.Template.Spec.Containers {
			if containerPort(c, p.TargetPort) != 0 {
				found = true
			}
		}
		if !found {
			t.Errorf("Service %s port %s: targetPort %q is no container port of %s", s.Metadata.Name, p.Name, p.TargetPort, w.Metadata.Name)
		}
	}
}

func (k *k8sStack) checkPDB(t *testing.T, name string, w workload) {
	t.Helper()
	var b pdb
	if !k.get(t, "PodDisruptionBudget", name, &b) {
		t.Fatalf("no PodDisruptionBudget %s", name)
	}
	if !subset(b.Spec.Selector.MatchLabels, w.Spec.Template.Metadata.Labels) || len(b.Spec.Selector.MatchLabels) == 0 {
		t.Errorf("PodDisruptionBudget %s does not select %s's pods", name, w.Metadata.Name)
	}
	replicas := 1 // the API's default
	if w.Spec.Replicas != nil {
		replicas = *w.Spec.Replicas
	}
	switch {
	case b.Spec.MaxUnavailable != nil:
		n, err := strconv.Atoi(*b.Spec.MaxUnavailable)
		if err != nil || n < 1 || n >= replicas {
			t.Errorf("PodDisruptionBudget maxUnavailable %s: want 1..%d for %d replicas", *b.Spec.MaxUnavailable, replicas-1, replicas)
		}
	case b.Spec.MinAvailable != nil:
		n, err := strconv.Atoi(*b.Spec.MinAvailable)
		if err != nil || n < 1 || n >= replicas {
			t.Errorf("PodDisruptionBudget minAvailable %s: want 1..%d for %d replicas (or nodes never drain)", *b.Spec.MinAvailable, replicas-1, replicas)
		}
	default:
		t.Error("PodDisruptionBudget sets neither minAvailable nor maxUnavailable")
	}
}

// checkReferences checks that every ConfigMap, Secret and claim a
// workload names exists in the render (Secrets: or is one the operator
// creates for the base).
func (k *k8sStack) checkReferences(t *testing.T, w workload) {
	t.Helper()
	for _, v := range w.Spec.Template.Spec.Volumes {
		switch {
		case v.ConfigMap != nil:
			if _, ok := k.find("ConfigMap", v.ConfigMap.Name); !ok {
				t.Errorf("%s: volume %s: ConfigMap %s missing", w.Metadata.Name, v.Name, v.ConfigMap.Name)
			}
		case v.Secret != nil:
			if _, ok := k.find("Secret", v.Secret.SecretName); !ok && !slices.Contains([]string{"registry-bridge-keys", "registry-bridge-oidc"}, v.Secret.SecretName) {
				t.Errorf("%s: volume %s: Secret %s missing", w.Metadata.Name, v.Name, v.Secret.SecretName)
			}
		case v.PersistentVolumeClaim != nil:
			if !k.get(t, "PersistentVolumeClaim", v.PersistentVolumeClaim.ClaimName, nil) {
				t.Errorf("%s: volume %s: PersistentVolumeClaim %s missing", w.Metadata.Name, v.Name, v.PersistentVolumeClaim.ClaimName)
			}
		}
	}
	// A generated name in the base must be the generated one, not the
	// plain name (which would mean Kustomize missed the reference).
	for _, name := range []string{"registry-bridge-config", "registry-bridge-settings", "registry-config"} {
		for _, v := range w.Spec.Template.Spec.Volumes {
			if v.ConfigMap != nil && v.ConfigMap.Name == name {
				t.Errorf("%s: refers to %s without its hash suffix", w.Metadata.Name, name)
			}
		}
	}
}

func (k *k8sStack) checkIngress(t *testing.T, name, host, serviceName string) {
	t.Helper()
	var ing ingress
	if !k.get(t, "Ingress", name, &ing) {
		t.Fatalf("no Ingress %s", name)
	}
	if len(ing.Spec.Rules) != 1 || ing.Spec.Rules[0].Host != host {
		t.Fatalf("Ingress %s: want one rule for host %q, got %+v", name, host, ing.Spec.Rules)
	}
	if len(ing.Spec.TLS) != 1 || !slices.Equal(ing.Spec.TLS[0].Hosts, []string{host}) {
		t.Errorf("Ingress %s: want TLS for %q, got %+v", name, host, ing.Spec.TLS)
	}
	svc := k.service(t, serviceName)
	for _, p := range ing.Spec.Rules[0].HTTP.Paths {
		b := p.Backend.Service
		if b.Name != serviceName {
			t.Errorf("Ingress %s: backend %s, want Service %s", name, b.Name, serviceName)
		}
		ok := false
		for _, sp := range svc.Spec.Ports {
			if (b.Port.Name != "" && sp.Name == b.Port.Name) || (b.Port.Number != 0 && sp.Port == b.Port.Number) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("Ingress %s: Service %s has no port %+v", name, serviceName, b.Port)
		}
	}
}

func (k *k8sStack) checkRedis(t *testing.T, cfg bridgeConfig) {
	host, port := urlHostPort(t, cfg.Store.Redis.URL)
	svc := k.service(t, host)
	redis := k.workload(t, "StatefulSet", "redis")
	checkPodSecurity(t, redis)
	k.checkServiceTargets(t, svc, redis)
	ok := false
	for _, p := range svc.Spec.Ports {
		if p.Port == port {
			ok = containerPort(redis.Spec.Template.Spec.Containers[0], p.TargetPort) == 6379
		}
	}
	if !ok {
		t.Errorf("store.redis.url %s: Service %s has no port %d reaching Redis's 6379", cfg.Store.Redis.URL, host, port)
	}
	c := redis.Spec.Template.Spec.Containers[0]
	args := strings.Join(c.Args, " ")
	if !strings.Contains(args, "--appendonly yes") {
		t.Errorf("redis: want AOF persistence (--appendonly yes), args %q", args)
	}
	dataDir := flagValue(c.Args, "--dir")
	mounted := false
	for _, vm := range c.VolumeMounts {
		for _, vct := range redis.Spec.VolumeClaimTemplates {
			if vm.Name == vct.Metadata.Name && vm.MountPath == dataDir {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("redis: --dir %q is not a persistent volume claim", dataDir)
	}
}

func (k *k8sStack) checkRegistry(t *testing.T, cfg bridgeConfig, bridge *podFS) {
	reg := k.workload(t, "Deployment", "registry")
	checkPodSecurity(t, reg)
	k.checkServiceTargets(t, k.service(t, "registry"), reg)
	p := k.materialize(t, reg, "registry")
	configPath := registryConfigPath
	if n := len(p.container.Args); n > 0 {
		configPath = p.container.Args[n-1]
	}
	file, ok := p.mounts.hostPath(configPath)
	if !ok {
		t.Fatalf("registry: %s is not mounted", configPath)
	}
	rc := parseRegistryConfig(t, file, p.env)
	token := rc.Auth["token"]
	want := map[string]string{
		"realm":   strings.TrimSuffix(cfg.PublicURL, "/") + "/token",
		"service": cfg.Token.Service,
		"issuer":  cfg.Token.Issuer,
	}
	for _, key := range slices.Sorted(maps.Keys(want)) {
		if got, _ := token[key].(string); got != want[key] {
			t.Errorf("registry auth.token.%s = %q, bridge says %q", key, got, want[key])
		}
	}
	bundle, _ := token["rootcertbundle"].(string)
	if got, want := p.origin(t, bundle), bridge.origin(t, cfg.Token.CertificateFile); got != want || !strings.HasPrefix(got, "secret ") {
		t.Errorf("registry rootcertbundle %s comes from %s, the bridge's certificate_file from %s", bundle, got, want)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(mustHostPath(t, p, bundle)), "signing.key")); err == nil {
		t.Error("registry: the signing key is mounted into the registry; mount only signing.crt")
	}
	if got, want := rc.HTTP.Host, "https://"+cfg.Token.Service; got != want {
		t.Errorf("registry http.host %q, want %q (clients use token.service)", got, want)
	}
	if c := containerPort(p.container, "http"); c != listenPort(t, "0.0.0.0"+rc.HTTP.Addr) {
		t.Errorf("registry: container port http %d, http.addr %s", c, rc.HTTP.Addr)
	}
}

func mustHostPath(t *testing.T, p *podFS, cpath string) string {
	t.Helper()
	h, ok := p.mounts.hostPath(cpath)
	if !ok {
		t.Fatalf("%s is not mounted", cpath)
	}
	return h
}

func fmtInt(p *int) string {
	if p == nil {
		return "unset"
	}
	return strconv.Itoa(*p)
}

// subset reports whether every label of sel is in labels.
func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}
