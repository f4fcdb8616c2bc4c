package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/registry-bridge/bridge/internal/devidp"
)

// reloadDebounce is how long the watcher waits after the last change event
// before it reads the file: editors write a file in several steps.
const reloadDebounce = 250 * time.Millisecond

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
	stamp   string        // the file content applied last
}

// newUsersWatcher returns a watcher for the provider started from running,
// which was read from path.
func newUsersWatcher(path string, running devidp.Config, idp userSetter, log *slog.Logger) *usersWatcher {
	running.Users = slices.Clone(running.Users)
	return &usersWatcher{Path: path, Issuer: running.Issuer, IdP: idp, Log: log, applied: running, stamp: fileContent(path)}
}

// Watch reloads on every value from hup and on every change of the file
// until ctx ends. It watches the file's directory, not the file, so that
// editors that replace the file (write a copy, rename it over) are seen.
// Without a working file watch it still reloads on hup.
func (w *usersWatcher) Watch(ctx context.Context, hup <-chan os.Signal) {
	var events <-chan fsnotify.Event
	var watchErrs <-chan error
	fw, err := fsnotify.NewWatcher()
	if err == nil {
		defer fw.Close()
		if err = fw.Add(filepath.Dir(w.Path)); err == nil {
			events, watchErrs = fw.Events, fw.Errors
		}
	}
	if err != nil {
		w.Log.Warn("devidp: users file watch unavailable; reload with SIGHUP", "path", w.Path, "err", err)
	}
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			w.Reload("SIGHUP")
		case ev := <-events:
			if filepath.Clean(ev.Name) == filepath.Clean(w.Path) {
				debounce = time.After(reloadDebounce)
			}
		case err := <-watchErrs:
			w.Log.Warn("devidp: users file watch", "err", err)
		case <-debounce:
			debounce = nil
			if fileContent(w.Path) != w.stamp {
				w.Reload("file changed")
			}
		}
	}
}

// Reload reads the users file and applies every user's groups and
// disabled flag that differ from the running ones. A file that does not
// load or validate changes nothing and is logged.
func (w *usersWatcher) Reload(trigger string) {
	stamp := fileContent(w.Path)
	next, err := devidp.LoadConfig(w.Path)
	if err == nil {
		next.Issuer = w.Issuer
		err = next.Validate()
	}
	if err != nil {
		w.Log.Error("devidp: users file reload failed; nothing changed", "trigger", trigger, "path", w.Path, "err", err.Error())
		return
	}
	w.stamp = stamp
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

// fileContent returns the file's content (at most 1 MiB), or "" if it
// cannot be read: reloads happen only when the content really changed,
// since editors fire several events per save.
func fileContent(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	return string(b)
}
