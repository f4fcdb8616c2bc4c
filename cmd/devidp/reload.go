package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"

	"github.com/registry-bridge/bridge/internal/devidp"
	"github.com/registry-bridge/bridge/internal/filewatch"
)

// userSetter is the part of *devidp.Provider that a reload changes.
type userSetter interface {
	SetGroups(username string, groups []string) error
	SetDisabled(username string, disabled bool) error
}

var _ userSetter = (*devidp.Provider)(nil)

// usersWatcher applies the users file's groups and disabled flags to a
// running provider whenever the file changes or a value arrives on hup.
// Nothing else in the file can change without a restart; a reload that
// changes something else logs which keys need one.
type usersWatcher struct {
	// Path is the users file.
	Path string
	// Issuer is the running provider's issuer; Validate needs it, and the
	// file may leave it to the --issuer flag.
	Issuer string
	// IdP receives the changes.
	IdP userSetter
	// Log receives one line per applied change and every rejected file.
	Log *slog.Logger

	applied devidp.Config // the configuration the provider runs with now
	loaded  string        // the file content the provider was started from
}

// newUsersWatcher returns a watcher for the provider started from running,
// which was read from path.
func newUsersWatcher(path string, running devidp.Config, idp userSetter, log *slog.Logger) *usersWatcher {
	running.Users = slices.Clone(running.Users)
	return &usersWatcher{Path: path, Issuer: running.Issuer, IdP: idp, Log: log, applied: running, loaded: filewatch.Content(path)}
}

// Start sets up the watch of the users file (internal/filewatch: its
// directory, debounced, by content) and returns the loop that reloads on
// every change and every value from hup until ctx ends. The watch is in
// place when Start returns.
func (w *usersWatcher) Start(hup <-chan os.Signal) func(ctx context.Context) {
	return filewatch.Start(w.Path, w.loaded, hup, w.Log, w.Reload)
}

// Reload reads the users file and applies every user's groups and
// disabled flag that differ from the running ones. A file that does not
// load or validate changes nothing and is logged.
func (w *usersWatcher) Reload(trigger string) {
	next, err := devidp.LoadConfig(w.Path)
	if err == nil {
		next.Issuer = w.Issuer
		err = next.Validate()
	}
	if err != nil {
		w.Log.Error("devidp: users file reload failed; nothing changed", "trigger", trigger, "path", w.Path, "err", err.Error())
		return
	}
	changed, restart := w.apply(next.Users)
	w.Log.Info("devidp: users file reloaded", "trigger", trigger, "changed", changed)
	if restart = append(restart, restartKeys(w.applied, next)...); len(restart) > 0 {
		w.Log.Warn("devidp: these changes take effect only after a restart", "keys", restart)
	}
}

// apply sets the groups and disabled flags of every user in users that
// differ from the applied configuration, records them, and returns how
// many changes were made and the keys of the user changes that need a
// restart (new, removed or otherwise edited users).
func (w *usersWatcher) apply(users []devidp.User) (changed int, restart []string) {
	running := map[string]int{}
	for i, u := range w.applied.Users {
		running[u.Username] = i
	}
	seen := map[string]bool{}
	for i, u := range users {
		seen[u.Username] = true
		j, ok := running[u.Username]
		if !ok {
			restart = append(restart, fmt.Sprintf("users[%d] (new user %q)", i, u.Username))
			continue
		}
		cur := &w.applied.Users[j]
		if !slices.Equal(cur.Groups, u.Groups) {
			if err := w.IdP.SetGroups(u.Username, u.Groups); err != nil {
				w.Log.Error("devidp: apply groups", "user", u.Username, "err", err.Error())
			} else {
				cur.Groups = slices.Clone(u.Groups)
				changed++
			}
		}
		if cur.Disabled != u.Disabled {
			if err := w.IdP.SetDisabled(u.Username, u.Disabled); err != nil {
				w.Log.Error("devidp: apply disabled", "user", u.Username, "err", err.Error())
			} else {
				cur.Disabled = u.Disabled
				changed++
			}
		}
		live := *cur
		live.Groups, live.Disabled = u.Groups, u.Disabled
		if !reflect.DeepEqual(live, u) {
			restart = append(restart, fmt.Sprintf("users[%d] (password, subject, email or name of %q)", i, u.Username))
		}
	}
	for _, u := range w.applied.Users {
		if !seen[u.Username] {
			restart = append(restart, fmt.Sprintf("users (removed user %q)", u.Username))
		}
	}
	return changed, restart
}

// restartKeys names the top-level keys other than users whose values
// differ between the running and the new configuration.
func restartKeys(running, next devidp.Config) []string {
	var keys []string
	if !reflect.DeepEqual(running.Clients, next.Clients) {
		keys = append(keys, "clients")
	}
	if running.GroupsInIDToken != next.GroupsInIDToken {
		keys = append(keys, "groups_in_id_token")
	}
	if running.AccessTokenLifetime != next.AccessTokenLifetime {
		keys = append(keys, "access_token_lifetime")
	}
	if running.IDTokenLifetime != next.IDTokenLifetime {
		keys = append(keys, "id_token_lifetime")
	}
	return keys
}
