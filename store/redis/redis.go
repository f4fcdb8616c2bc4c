package redis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/registry-bridge/bridge/store"
)

// scanCount is the COUNT hint for the SCAN behind ListPasswords("").
const scanCount = 512

// watchBuffer is how many events go-redis buffers for a slow Watch fn
// before it starts dropping them (after a minute).
const watchBuffer = 1024

var _ store.Store = (*Store)(nil)

// Store is a store.Store kept in Redis. See the package documentation for
// the key schema.
type Store struct {
	client goredis.UniversalClient
	keys   keys
	now    func() time.Time
	log    *slog.Logger
	// where names the server(s) in errors ("127.0.0.1:6379"); check
	// names the config keys that say where they are.
	where, check string
	// confirmTimeout bounds Watch's wait for Redis to confirm the
	// subscription.
	confirmTimeout time.Duration

	mu     sync.Mutex
	subs   map[*goredis.PubSub]struct{}
	closed bool
}

// New validates cfg and returns a Store that reads the time from now and
// logs to log. It does not contact Redis: call Ping to check the
// connection.
func New(cfg Config, now func() time.Time, log *slog.Logger) (*Store, error) {
	if err := cfg.Validate(KeyPath); err != nil {
		return nil, fmt.Errorf("redis store: %w", err)
	}
	opts, err := cfg.options()
	if err != nil {
		return nil, fmt.Errorf("redis store: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	where, check := cfg.describe(opts.Addrs)
	return &Store{
		client:         goredis.NewUniversalClient(opts),
		keys:           keys{prefix: cmp.Or(cfg.KeyPrefix, DefaultKeyPrefix)},
		now:            now,
		log:            log,
		where:          where,
		check:          check,
		confirmTimeout: opts.DialTimeout + opts.ReadTimeout,
		subs:           make(map[*goredis.PubSub]struct{}),
	}, nil
}

// unreachable wraps err, the failure of op, with where the store looked
// for Redis and the config keys to check, so that a wrong address or a
// Redis that is down is recognisable in the log and on /readyz. Neither
// part carries a password.
func (s *Store) unreachable(op string, err error) error {
	return fmt.Errorf("redis store: %s: %s unreachable: %w; check %s", op, s.where, err, s.check)
}

// keys names the store's Redis keys.
type keys struct{ prefix string }

func (k keys) password(id string) string  { return k.prefix + "pw:" + id }
func (k keys) user(name string) string    { return k.prefix + "user:" + name }
func (k keys) session(id string) string   { return k.prefix + "sess:" + id }
func (k keys) account(name string) string { return k.prefix + "account:" + name }
func (k keys) lock(name string) string    { return k.prefix + "lock:" + name }
func (k keys) events() string             { return k.prefix + "events" }
func (k keys) userEvents() string         { return k.prefix + "events:user" }

// idFromPasswordKey is the inverse of password.
func (k keys) idFromPasswordKey(key string) string {
	return strings.TrimPrefix(key, k.prefix+"pw:")
}

// indexAddScript adds a member to a user index and sets the index's expiry
// to its latest member's (scores are expiry times in Unix ms).
//
// KEYS[1] user index; ARGV[1] expiry ms; ARGV[2] id.
var indexAddScript = goredis.NewScript(`
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return 1
`)

// touchScript raises a record's LastUsedAt in place: it compares the
// stored and the new big-endian bytes one by one (Lua string comparison
// follows the server's locale) and overwrites with SETRANGE, which keeps the
// key's TTL. A missing key stays missing.
//
// KEYS[1] record; ARGV[1] LastUsedAt as lastUsedWidth big-endian bytes.
var touchScript = goredis.NewScript(fmt.Sprintf(`
local head = redis.call('GETRANGE', KEYS[1], 0, %[1]d)
if #head ~= %[2]d or string.byte(head, 1) ~= %[3]d or #ARGV[1] ~= %[5]d then return 0 end
for i = 1, %[5]d do
  local new, old = string.byte(ARGV[1], i), string.byte(head, %[4]d + i)
  if new > old then
    redis.call('SETRANGE', KEYS[1], %[4]d, ARGV[1])
    return 1
  end
  if new < old then return 0 end
end
return 0
`, headerLen-1, headerLen, codecVersion, lastUsedOff, lastUsedWidth))

// CreatePassword implements store.Store. It writes the record (SET NX with
// an absolute expiry) before the index entry; if the index write fails it
// deletes the record again, so no password exists that its owner cannot
// list or revoke.
func (s *Store) CreatePassword(ctx context.Context, p store.Password) error {
	if err := p.Validate(s.now()); err != nil {
		return fmt.Errorf("redis store: create password %s: %w", p.ID, err)
	}
	val, err := encode(p)
	if err != nil {
		return fmt.Errorf("redis store: create password %s: %w", p.ID, err)
	}
	key := s.keys.password(p.ID)
	err = s.client.SetArgs(ctx, key, val, goredis.SetArgs{Mode: "NX", ExpireAt: p.ExpiresAt}).Err()
	if errors.Is(err, goredis.Nil) {
		return fmt.Errorf("redis store: create password %s: %w", p.ID, store.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("redis store: create password %s: %w", p.ID, err)
	}
	err = indexAddScript.Run(ctx, s.client, []string{s.keys.user(p.Username)}, p.ExpiresAt.UnixMilli(), p.ID).Err()
	if err != nil {
		if derr := s.client.Del(context.WithoutCancel(ctx), key).Err(); derr != nil {
			s.log.ErrorContext(ctx, "redis store: record left without index entry; nobody holds its secret",
				"password_id", p.ID, "error", derr)
		}
		return fmt.Errorf("redis store: create password %s: index: %w", p.ID, err)
	}
	return nil
}

// GetPassword implements store.Store.
func (s *Store) GetPassword(ctx context.Context, id string) (store.Password, error) {
	b, err := s.client.Get(ctx, s.keys.password(id)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return store.Password{}, fmt.Errorf("redis store: get password %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Password{}, fmt.Errorf("redis store: get password %s: %w", id, err)
	}
	p, err := decode(b)
	if err != nil {
		return store.Password{}, fmt.Errorf("redis store: get password %s: %w", id, err)
	}
	if !p.Live(s.now()) {
		return store.Password{}, fmt.Errorf("redis store: get password %s: %w", id, store.ErrNotFound)
	}
	p.ID = id
	return p, nil
}

// ListPasswords implements store.Store. For one user it reads the user's
// index, pruning expired and dangling entries; for everyone it SCANs the
// record keys of every node.
func (s *Store) ListPasswords(ctx context.Context, username string) ([]store.Password, error) {
	var (
		out []store.Password
		err error
	)
	if username == "" {
		out, err = s.listAll(ctx)
	} else {
		out, err = s.listUser(ctx, username)
	}
	if err != nil {
		return nil, fmt.Errorf("redis store: list passwords: %w", err)
	}
	slices.SortFunc(out, store.ByAge)
	return out, nil
}

func (s *Store) listUser(ctx context.Context, username string) ([]store.Password, error) {
	now := s.now()
	index := s.keys.user(username)
	pipe := s.client.Pipeline()
	pipe.ZRemRangeByScore(ctx, index, "-inf", strconv.FormatInt(now.UnixMilli(), 10))
	idsCmd := pipe.ZRange(ctx, index, 0, -1)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	ids := idsCmd.Val()
	if len(ids) == 0 {
		return nil, nil
	}
	pipe = s.client.Pipeline()
	gets := make([]*goredis.StringCmd, len(ids))
	for i, id := range ids {
		gets[i] = pipe.Get(ctx, s.keys.password(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, err
	}
	var (
		out      []store.Password
		dangling []any
	)
	for i, get := range gets {
		p, ok := s.decodeReply(ctx, ids[i], get)
		if !ok || p.Username != username {
			dangling = append(dangling, ids[i])
			continue
		}
		if p.Live(now) {
			out = append(out, p)
		}
	}
	if len(dangling) > 0 {
		// Left behind by a delete that failed after removing the record.
		if err := s.client.ZRem(ctx, index, dangling...).Err(); err != nil {
			s.log.WarnContext(ctx, "redis store: prune user index", "error", err)
		}
	}
	return out, nil
}

func (s *Store) listAll(ctx context.Context) ([]store.Password, error) {
	var (
		mu  sync.Mutex
		out []store.Password
	)
	scan := func(ctx context.Context, node goredis.UniversalClient) error {
		ps, err := s.scanNode(ctx, node)
		mu.Lock()
		out = append(out, ps...)
		mu.Unlock()
		return err
	}
	if cluster, ok := s.client.(*goredis.ClusterClient); ok {
		err := cluster.ForEachMaster(ctx, func(ctx context.Context, node *goredis.Client) error {
			return scan(ctx, node)
		})
		return out, err
	}
	return out, scan(ctx, s.client)
}

// scanNode returns the live records held by one node.
func (s *Store) scanNode(ctx context.Context, node goredis.UniversalClient) ([]store.Password, error) {
	now := s.now()
	match := globEscape(s.keys.password("")) + "*"
	var (
		out    []store.Password
		cursor uint64
	)
	for {
		keys, next, err := node.Scan(ctx, cursor, match, scanCount).Result()
		if err != nil {
			return out, err
		}
		if len(keys) > 0 {
			pipe := node.Pipeline()
			gets := make([]*goredis.StringCmd, len(keys))
			for i, k := range keys {
				gets[i] = pipe.Get(ctx, k)
			}
			if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
				return out, err
			}
			for i, get := range gets {
				p, ok := s.decodeReply(ctx, s.keys.idFromPasswordKey(keys[i]), get)
				if ok && p.Live(now) {
					out = append(out, p)
				}
			}
		}
		if next == 0 {
			return out, nil
		}
		cursor = next
	}
}

// decodeReply decodes a pipelined GET of record id; ok is false when the
// record is missing or unreadable (which is logged).
func (s *Store) decodeReply(ctx context.Context, id string, get *goredis.StringCmd) (store.Password, bool) {
	b, err := get.Bytes()
	if err != nil {
		return store.Password{}, false
	}
	p, err := decode(b)
	if err != nil {
		s.log.ErrorContext(ctx, "redis store: unreadable record", "password_id", id, "error", err)
		return store.Password{}, false
	}
	p.ID = id
	return p, true
}

// TouchPassword implements store.Store with one atomic script on the
// record's key, so LastUsedAt never moves backwards and the TTL is kept.
func (s *Store) TouchPassword(ctx context.Context, id string, t time.Time) error {
	if t.IsZero() || t.UnixMilli() <= 0 {
		return nil // not later than "never used"
	}
	stamp, err := lastUsedBytes(t)
	if err != nil {
		return fmt.Errorf("redis store: touch password %s: %w", id, err)
	}
	if err := touchScript.Run(ctx, s.client, []string{s.keys.password(id)}, stamp).Err(); err != nil {
		return fmt.Errorf("redis store: touch password %s: %w", id, err)
	}
	return nil
}

// DeletePassword implements store.Store. The record goes first (GETDEL),
// so the password is unusable even if the index update or the event
// fails; those failures are returned, and the index is pruned later.
func (s *Store) DeletePassword(ctx context.Context, id string) error {
	b, err := s.client.GetDel(ctx, s.keys.password(id)).Bytes()
	if errors.Is(err, goredis.Nil) {
		// A retried GETDEL whose first reply was lost also lands here, so
		// publish anyway: an event for an unknown id costs nothing.
		_ = s.publish(ctx, []string{id})
		return fmt.Errorf("redis store: delete password %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("redis store: delete password %s: %w", id, err)
	}
	perr := s.publish(ctx, []string{id})
	p, decodeErr := decode(b)
	if decodeErr == nil {
		if err := s.client.ZRem(ctx, s.keys.user(p.Username), id).Err(); err != nil {
			return fmt.Errorf("redis store: delete password %s: record deleted, then: %w", id, err)
		}
	}
	if perr != nil {
		return fmt.Errorf("redis store: delete password %s: record deleted, then: %w", id, perr)
	}
	if decodeErr != nil {
		s.log.ErrorContext(ctx, "redis store: deleted an unreadable record", "password_id", id, "error", decodeErr)
		return nil
	}
	if !p.Live(s.now()) {
		return fmt.Errorf("redis store: delete password %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// DeleteUserPasswords implements store.Store. It removes every record in
// username's index and counts those that had not expired.
func (s *Store) DeleteUserPasswords(ctx context.Context, username string) (int, error) {
	index := s.keys.user(username)
	ids, err := s.client.ZRange(ctx, index, 0, -1).Result()
	if err != nil {
		return 0, fmt.Errorf("redis store: delete passwords of %s: %w", username, err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	pipe := s.client.Pipeline()
	dels := make([]*goredis.StringCmd, len(ids))
	for i, id := range ids {
		dels[i] = pipe.GetDel(ctx, s.keys.password(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		// Some records may be gone already: tell every cache anyway.
		s.publish(ctx, ids)
		return 0, fmt.Errorf("redis store: delete passwords of %s: %w", username, err)
	}

	now := s.now()
	n := 0
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = id
		if p, ok := s.decodeReply(ctx, id, dels[i]); ok && p.Live(now) {
			n++
		}
	}
	// Every id read, deleted by us or not: an event costs nothing, a
	// missed one leaves a revoked password in other replicas' caches.
	perr := s.publish(ctx, ids)
	// Only the ids read above: a password created meanwhile keeps its entry.
	if err := s.client.ZRem(ctx, index, members...).Err(); err != nil {
		return n, fmt.Errorf("redis store: delete passwords of %s: records deleted, then: %w", username, err)
	}
	if perr != nil {
		return n, fmt.Errorf("redis store: delete passwords of %s: records deleted, then: %w", username, perr)
	}
	return n, nil
}

// publish announces deleted password ids on the invalidation channel,
// trying twice: a lost event would leave the passwords usable in other
// replicas' caches until their TTL.
func (s *Store) publish(ctx context.Context, ids []string) error {
	var err error
	for range 2 {
		pipe := s.client.Pipeline()
		for _, id := range ids {
			pipe.Publish(ctx, s.keys.events(), id)
		}
		if _, err = pipe.Exec(ctx); err == nil {
			return nil
		}
	}
	s.log.ErrorContext(ctx, "redis store: publish invalidations failed; other replicas may accept these passwords until their cache entries expire",
		"password_ids", ids, "error", err)
	return err
}

// Watch implements store.Store: it SUBSCRIBEs to both event channels and
// returns once Redis has confirmed both, or with an error naming the
// server and the config keys to check if Redis has not confirmed them
// within the dial and read timeouts. Once subscribed, go-redis keeps the
// subscription alive across lost connections; after each re-subscription
// fn receives one Reset, because events published meanwhile were lost.
// fn is called from one goroutine.
func (s *Store) Watch(ctx context.Context, fn func(store.Event)) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("redis store: watch: store closed")
	}
	channels := []string{s.keys.events(), s.keys.userEvents()}
	sub := s.client.Subscribe(ctx, channels...)
	s.subs[sub] = struct{}{}
	s.mu.Unlock()

	stop := func() {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
		_ = sub.Close()
	}
	// Redis confirms each channel with a message of its own.
	confirmCtx, cancel := context.WithTimeout(ctx, s.confirmTimeout)
	defer cancel()
	for range channels {
		msg, err := sub.Receive(confirmCtx)
		if err == nil {
			if _, ok := msg.(*goredis.Subscription); !ok {
				err = fmt.Errorf("unexpected message %T before the subscription", msg)
			}
		}
		if err != nil {
			stop()
			return s.unreachable("watch", err)
		}
	}

	ch := sub.ChannelWithSubscriptions(goredis.WithChannelSize(watchBuffer))
	go func() {
		defer stop()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-ch:
				if !ok {
					return
				}
				switch m := m.(type) {
				case *goredis.Message:
					switch m.Channel {
					case channels[0]:
						fn(store.Event{Kind: store.PasswordChanged, ID: m.Payload})
					case channels[1]:
						fn(store.Event{Kind: store.UserChanged, ID: m.Payload})
					}
				case *goredis.Subscription:
					// A re-subscription confirms every channel again;
					// one Reset is enough.
					if m.Kind == "subscribe" && m.Channel == channels[0] {
						s.log.WarnContext(ctx, "redis store: invalidation subscription re-established; dropping caches")
						fn(store.Event{Kind: store.Reset})
					}
				}
			}
		}
	}()
	return nil
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return s.unreachable("ping", err)
	}
	return nil
}

// Close ends every Watch and closes the connections. It may be called
// more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	subs := s.subs
	s.subs = nil
	s.mu.Unlock()
	for sub := range subs {
		_ = sub.Close()
	}
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("redis store: close: %w", err)
	}
	return nil
}

// globEscape quotes the characters SCAN MATCH treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\*?[]`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// RouteLibraryLog sends go-redis's own log lines, which it writes to
// stderr by default (one per failed dial while Redis is down), to log at
// debug level: the bridge reports outages itself, once per change (see
// store/cache). go-redis has one logger per process, so this changes it
// for every client in the process; call it once, at start-up.
func RouteLibraryLog(log *slog.Logger) {
	goredis.SetLogger(libraryLog{log})
}

// libraryLog adapts slog to go-redis's logger interface.
type libraryLog struct{ log *slog.Logger }

func (l libraryLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}
