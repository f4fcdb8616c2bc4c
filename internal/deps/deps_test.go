package deps

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/registry-bridge/bridge"

// forbidden maps a package to import-path prefixes it must never reach,
// directly or through its dependencies.
var forbidden = map[string][]string{
	"scope":        {module + "/", "net/http"},
	"groups":       {module + "/store", module + "/tokens", module + "/httpapi", module + "/oidc", "net/http", "github.com/redis/"},
	"passwords":    {module + "/store", module + "/httpapi", "net/http", "github.com/redis/"},
	"tokens":       {module + "/store", module + "/groups", module + "/httpapi", module + "/oidc", "net/http", "github.com/redis/"},
	"store":        {module + "/httpapi", "net/http", "github.com/redis/"},
	"store/memory": {"net/http", "github.com/redis/"},
	"httpapi":      {"github.com/redis/"},
	"oidc":         {module + "/store", module + "/httpapi", "github.com/redis/"},
	"workload":     {module + "/httpapi", module + "/store/redis", "github.com/redis/"},
}

func TestImportBoundaries(t *testing.T) {
	for pkg, bad := range forbidden {
		t.Run(pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", module+"/"+pkg).Output()
			if err != nil {
				t.Fatalf("go list %s: %v", pkg, err)
			}
			for dep := range strings.FieldsSeq(string(out)) {
				if dep == module+"/"+pkg {
					continue
				}
				for _, b := range bad {
					// scope may import nothing of ours at all.
					if strings.HasPrefix(dep, b) || dep == strings.TrimSuffix(b, "/") {
						t.Errorf("%s reaches %s (forbidden: %s)", pkg, dep, b)
					}
				}
			}
		})
	}
}
