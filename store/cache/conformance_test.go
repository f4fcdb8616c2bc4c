package cache

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/registry-bridge/bridge/internal/testenv"
	"github.com/registry-bridge/bridge/store"
	"github.com/registry-bridge/bridge/store/memory"
	"github.com/registry-bridge/bridge/store/redis"
	"github.com/registry-bridge/bridge/store/storetest"
)

// conformanceTouchInterval is how often the suite's caches write touches;
// touchVisibleWithin is the bound the suite waits for one, with room for
// a slow machine.
const (
	conformanceTouchInterval = 10 * time.Millisecond
	touchVisibleWithin       = 5 * time.Second
)

// TestConformance runs the store suite against caches, each handle a
// started cache of its own (as two bridge processes hold), over one memory
// store and over one real Redis. The cache takes one liberty of the
// contract: touches made through one cache show through another only once
// written (store.Store's TouchPassword).
func TestConformance(t *testing.T) {
	backends := []struct {
		name string
		open func(t *testing.T) func(t *testing.T, now func() time.Time) store.Store
	}{
		{"memory", func(*testing.T) func(t *testing.T, now func() time.Time) store.Store {
			var stores sync.Map // *testing.T → *memory.Store shared by both handles
			return func(t *testing.T, now func() time.Time) store.Store {
				st, _ := stores.LoadOrStore(t, memory.New(now))
				return st.(store.Store)
			}
		}},
		{"redis", func(t *testing.T) func(t *testing.T, now func() time.Time) store.Store {
			addr := testenv.Redis(t)
			var (
				prefixes sync.Map // *testing.T → key prefix shared by both handles
				n        atomic.Int64
			)
			return func(t *testing.T, now func() time.Time) store.Store {
				prefix, _ := prefixes.LoadOrStore(t, fmt.Sprintf("cacheconf%d:", n.Add(1)))
				st, err := redis.New(redis.Config{URL: "redis://" + addr, KeyPrefix: prefix.(string)}, now, nil)
				if err != nil {
					t.Fatal(err)
				}
				return st
			}
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			next := b.open(t)
			storetest.RunTestsWith(t, func(t *testing.T, now func() time.Time) store.Store {
				c := New(next(t, now), Options{Now: now, TouchInterval: conformanceTouchInterval})
				t.Cleanup(func() {
					if err := c.Close(); err != nil {
						t.Error(err)
					}
				})
				if err := c.Start(t.Context()); err != nil {
					t.Fatal(err)
				}
				return c
			}, storetest.Options{TouchVisibleWithin: touchVisibleWithin})
		})
	}
}
