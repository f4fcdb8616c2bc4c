package deploytest

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/registry-bridge/bridge/internal/testenv"
)

// nonroot is the distroless nonroot user the image runs as.
const nonroot = "65532:65532"

// requiredLabels are the OCI annotations the runtime image carries.
var requiredLabels = []string{
	"org.opencontainers.image.title",
	"org.opencontainers.image.source",
	"org.opencontainers.image.version",
	"org.opencontainers.image.revision",
}

// TestDockerfile checks the Dockerfile against the repository it builds:
// base images, stages, the build command, what the build context keeps,
// and the runtime image's user, entrypoint and port. TestImage checks an
// image actually built from it.
func TestDockerfile(t *testing.T) {
	args, stages := parseDockerfile(t, readFile(t, "Dockerfile"))

	t.Run("base images", func(t *testing.T) {
		goVersion := goDirective(t)
		wantGo := "golang:" + strings.Join(strings.Split(goVersion, ".")[:2], ".")
		for _, c := range []struct{ arg, want string }{
			{"GO_IMAGE", wantGo},
			{"RUNTIME_IMAGE", "gcr.io/distroless/static-debian12:nonroot"},
			{"KEYGEN_IMAGE", "gcr.io/distroless/static-debian12:debug-nonroot"},
		} {
			if got := args[c.arg]; !strings.HasPrefix(got, c.want) {
				t.Errorf("ARG %s=%q, want %s… (go.mod says go %s)", c.arg, got, c.want, goVersion)
			}
		}
		want := map[string]string{"build": "${GO_IMAGE}", "keygen": "${KEYGEN_IMAGE}", "runtime": "${RUNTIME_IMAGE}"}
		for _, s := range stages {
			if w, ok := want[s.Name]; !ok || s.From != w {
				t.Errorf("stage %q FROM %q, want one of %v", s.Name, s.From, want)
			}
		}
		if len(stages) == 0 || stages[len(stages)-1].Name != "runtime" {
			t.Error("the runtime stage must be last: it is what `docker build .` produces")
		}
	})

	t.Run("build", func(t *testing.T) {
		b := stage(t, stages, "build")
		runs := strings.Join(b.all("RUN"), "\n")
		env := strings.Join(b.all("ENV"), " ")
		if !strings.Contains(env, "CGO_ENABLED=0") {
			t.Error("build: want ENV CGO_ENABLED=0 (a static binary for distroless static)")
		}
		for _, want := range []string{"go build", "-trimpath", "./cmd/bridge", "-o /out/bridge"} {
			if !strings.Contains(runs, want) {
				t.Errorf("build: the go build step lacks %q", want)
			}
		}
		// -X only sets variables that exist; a renamed one fails silently.
		vars := packageVars(t, filepath.Join(testenv.RepoRoot(t), "cmd", "bridge"))
		for _, m := range regexp.MustCompile(`-X main\.(\w+)=`).FindAllStringSubmatch(runs, -1) {
			if !vars[m[1]] {
				t.Errorf("build: -X main.%s, but cmd/bridge has no package variable %s", m[1], m[1])
			}
		}
		if !strings.Contains(runs, "main.version") || !strings.Contains(runs, "main.commit") {
			t.Error("build: want -X main.version and -X main.commit")
		}
	})

	t.Run("build context", func(t *testing.T) {
		ignore := readDockerignore(t)
		root := testenv.RepoRoot(t)
		for _, rel := range buildInputs(t, root) {
			if p, ok := ignore.excludes(rel); ok {
				t.Errorf(".dockerignore pattern %q excludes %s, which the build needs", p, rel)
			}
		}
		for _, rel := range []string{".git", ".tools", "bin", "deploy/compose/.env"} {
			if _, ok := ignore.excludes(rel); !ok {
				t.Errorf(".dockerignore keeps %s in the build context", rel)
			}
		}
	})

	t.Run("runtime", func(t *testing.T) {
		r := stage(t, stages, "runtime")
		if u, _ := r.last("USER"); u != nonroot {
			t.Errorf("runtime: USER %q, want %s (numeric, so runAsNonRoot can verify it)", u, nonroot)
		}
		if ep, _ := r.last("ENTRYPOINT"); ep != `["/bridge"]` {
			t.Errorf("runtime: ENTRYPOINT %s, want [\"/bridge\"] (exec form: there is no shell)", ep)
		}
		if cmd, _ := r.last("CMD"); cmd != `["serve"]` {
			t.Errorf("runtime: CMD %s, want [\"serve\"]", cmd)
		}
		if env := strings.Join(r.all("ENV"), " "); !strings.Contains(env, "BRIDGE_CONFIG=/etc/bridge/bridge.yaml") {
			t.Errorf("runtime: want ENV BRIDGE_CONFIG=/etc/bridge/bridge.yaml, got %q", env)
		}
		labels := strings.Join(r.all("LABEL"), " ")
		for _, l := range requiredLabels {
			if !strings.Contains(labels, l+"=") {
				t.Errorf("runtime: LABEL %s missing", l)
			}
		}
		// The port the deployments listen on.
		expose, _ := r.last("EXPOSE")
		for _, f := range []string{"deploy/compose/bridge.yaml", "deploy/kubernetes/base/bridge.yaml", "deploy/examples/bridge.yaml"} {
			c := parseBridgeConfig(t, envRef.ReplaceAll(readFile(t, f), []byte("x")), nil)
			if fmt.Sprint(listenPort(t, c.Listen)) != expose {
				t.Errorf("runtime: EXPOSE %s, but %s listens on %s", expose, f, c.Listen)
			}
		}
		if !slices.ContainsFunc(r.all("COPY"), func(c string) bool {
			return strings.Contains(c, "--chown="+nonroot) && strings.HasSuffix(c, " /keys")
		}) {
			t.Error("runtime: want an empty /keys owned by " + nonroot + " (a fresh volume mounted there inherits it)")
		}
	})

	t.Run("keygen", func(t *testing.T) {
		k := stage(t, stages, "keygen")
		if u, _ := k.last("USER"); u != nonroot {
			t.Errorf("keygen: USER %q, want %s: the bridge must own the keys it reads", u, nonroot)
		}
		ep, _ := k.last("ENTRYPOINT")
		var argv []string
		if err := json.Unmarshal([]byte(ep), &argv); err != nil || len(argv) != 3 || argv[0] != "/busybox/sh" || argv[1] != "-c" {
			t.Fatalf("keygen: ENTRYPOINT %s: want [\"/busybox/sh\", \"-c\", SCRIPT]", ep)
		}
		out := keygenOutDir(t, k)
		if !strings.Contains(argv[2], "[ -e "+path.Join(out, "signing.key")+" ]") {
			t.Errorf("keygen: the script must skip generation when %s exists: %q", path.Join(out, "signing.key"), argv[2])
		}
	})
}

// goDirective returns go.mod's go version.
func goDirective(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+(?:\.\d+)?)$`).FindSubmatch(readFile(t, "go.mod"))
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

// packageVars returns the package-level variable names of the Go package
// in dir (test files excluded).
func packageVars(t *testing.T, dir string) map[string]bool {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]bool{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.VAR {
				for _, s := range g.Specs {
					for _, n := range s.(*ast.ValueSpec).Names {
						vars[n.Name] = true
					}
				}
			}
		}
	}
	return vars
}

// buildInputs lists, relative to root, go.mod, go.sum and every file of
// every package of this module that ./cmd/bridge is built from, embedded
// files included.
func buildInputs(t *testing.T, root string) []string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", "list", "-deps", "-f",
		`{{if not .Standard}}{{if .Module}}{{if .Module.Main}}{{range .GoFiles}}{{$.Dir}}/{{.}}
{{end}}{{range .EmbedFiles}}{{$.Dir}}/{{.}}
{{end}}{{end}}{{end}}{{end}}`, "./cmd/bridge")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	files := []string{"go.mod", "go.sum"}
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		rel, err := filepath.Rel(root, line)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.ToSlash(rel))
	}
	if len(files) < 10 {
		t.Fatalf("go list found only %v", files)
	}
	return files
}

// dockerignore is a parsed .dockerignore.
type dockerignore []string

func readDockerignore(t *testing.T) dockerignore {
	t.Helper()
	var pats dockerignore
	for line := range strings.SplitSeq(string(readFile(t, ".dockerignore")), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore: exceptions (%s) are not supported by this test; extend it", line)
		}
		pats = append(pats, strings.TrimPrefix(line, "/"))
	}
	return pats
}

// excludes reports the pattern that keeps rel out of the build context:
// a pattern matches a path or any of its parent directories; a leading
// "**/" matches at any depth (Docker's rules for the patterns used here).
func (d dockerignore) excludes(rel string) (string, bool) {
	parts := strings.Split(rel, "/")
	for _, p := range d {
		for i := 1; i <= len(parts); i++ {
			prefix := strings.Join(parts[:i], "/")
			if ok, _ := path.Match(p, prefix); ok {
				return p, true
			}
			if sub, found := strings.CutPrefix(p, "**/"); found {
				for j := 0; j < i; j++ {
					if ok, _ := path.Match(sub, strings.Join(parts[j:i], "/")); ok {
						return p, true
					}
				}
			}
		}
	}
	return "", false
}
