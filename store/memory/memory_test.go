package memory_test

import (
	"sync"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/store"
	"github.com/registry-bridge/bridge/store/memory"
	"github.com/registry-bridge/bridge/store/storetest"
)

func TestConformance(t *testing.T) {
	var stores sync.Map // *testing.T → *memory.Store: both handles share one store
	storetest.RunTests(t, func(t *testing.T, now func() time.Time) store.Store {
		st, _ := stores.LoadOrStore(t, memory.New(now))
		return st.(store.Store)
	})
}
