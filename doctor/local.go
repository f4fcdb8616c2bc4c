package doctor

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// checkStore is check 4: the shared store answers a ping.
func (d *doctor) checkStore(ctx context.Context, r *Report) {
	const name = "store"
	if d.o.Store == nil {
		r.add(Result{Check: name, Status: StatusOK, Message: "embedded in-memory store (no store.redis): one bridge instance only, passwords are lost on restart"})
		return
	}
	if err := d.o.Store(ctx); err != nil {
		r.add(Result{Check: name, Status: StatusFail, Message: fmt.Sprintf("Redis does not answer: %v", err),
			Fixes: []Fix{{SideBridge, "store.redis.url", "point at a reachable Redis (and its password, TLS and database)"}}})
		return
	}
	r.add(Result{Check: name, Status: StatusOK, Message: "Redis answers PING"})
}

// checkBridge is check 5: the bridge itself answers at public_url. It
// only warns: doctor may run before the bridge is started, or where
// public_url does not reach.
func (d *doctor) checkBridge(ctx context.Context, r *Report) {
	for _, p := range []struct{ name, path string }{
		{"bridge.healthz", "/healthz"},
		{"bridge.readyz", "/readyz"},
		{"bridge.token", "/token?service=" + url.QueryEscape(d.o.Token.Service)},
	} {
		u := d.o.PublicURL + p.path
		resp, body, err := d.get(ctx, u, nil)
		switch {
		case err != nil:
			r.add(Result{Check: p.name, Status: StatusWarn, Message: fmt.Sprintf("the bridge is not reachable at %s: %v (is it running? is public_url right?)", u, err),
				Fixes: []Fix{{SideBridge, "public_url", "set to the URL the bridge is reached at"}}})
			return // the other paths would say the same
		case resp.StatusCode == http.StatusOK, p.name == "bridge.token" && resp.StatusCode == http.StatusUnauthorized:
			r.add(Result{Check: p.name, Status: StatusOK, Message: fmt.Sprintf("%s answered %s", u, resp.Status)})
		default:
			r.add(Result{Check: p.name, Status: StatusWarn, Message: fmt.Sprintf("%s answered %s: %s", u, resp.Status, excerpt(body))})
		}
	}
}
