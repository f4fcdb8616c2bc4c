package bench

import (
	"testing"

	"github.com/registry-bridge/bridge/internal/testenv"
)

// TestMain removes the bridge binary that testenv.BuildBridge builds once
// for BenchmarkThroughput.
func TestMain(m *testing.M) { testenv.Main(m) }
