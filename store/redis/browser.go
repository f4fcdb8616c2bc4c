package redis

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/registry-bridge/bridge/store"
)

// unlockTimeout bounds the release of a lock, which runs detached from the
// caller's context (often already cancelled by then).
const unlockTimeout = 5 * time.Second

// Session hash fields: the session as created, as JSON, and its
// LastSeenAt and ExpiresAt in Unix ms, which override the JSON's.
const (
	sessionValue   = "v"
	sessionSeen    = "seen"
	sessionExpires = "exp"
)

// createSessionScript writes a session hash unless a live one (by the
// caller's clock) is there, and sets the key to expire with it.
//
// KEYS[1] session; ARGV[1] JSON; ARGV[2] LastSeenAt ms; ARGV[3] ExpiresAt
// ms; ARGV[4] now ms.
var createSessionScript = goredis.NewScript(`
local exp = redis.call('HGET', KEYS[1], 'exp')
if exp and tonumber(exp) > tonumber(ARGV[4]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'seen', ARGV[2], 'exp', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
`)

// touchSessionScript sets a live session's LastSeenAt and ExpiresAt
// together, and its key's expiry to the new ExpiresAt (a time in the past
// deletes the key), unless the new LastSeenAt is earlier than the stored
// one. It returns 0 when the session is missing or expired by the caller's
// clock, 1 otherwise.
//
// KEYS[1] session; ARGV[1] LastSeenAt ms; ARGV[2] ExpiresAt ms; ARGV[3]
// now ms.
var touchSessionScript = goredis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'seen', 'exp')
if not cur[1] or not cur[2] or tonumber(cur[2]) <= tonumber(ARGV[3]) then return 0 end
if tonumber(ARGV[1]) < tonumber(cur[1]) then return 1 end
redis.call('HSET', KEYS[1], 'seen', ARGV[1], 'exp', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
`)

// unlockScript deletes a lock only if it still holds the caller's token.
//
// KEYS[1] lock; ARGV[1] token.
var unlockScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// CreateSession implements store.Store with one script on the session's
// hash; a record expired by the Store's clock may be replaced.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	now := s.now()
	if err := sess.Validate(now); err != nil {
		return fmt.Errorf("redis store: create session: %w", err)
	}
	val, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("redis store: create session: %w", err)
	}
	created, err := createSessionScript.Run(ctx, s.client, []string{s.keys.session(sess.ID)},
		val, millis(sess.LastSeenAt), millis(sess.ExpiresAt), now.UnixMilli()).Int()
	if err != nil {
		return fmt.Errorf("redis store: create session: %w", err)
	}
	if created == 0 {
		return fmt.Errorf("redis store: create session: %w", store.ErrAlreadyExists)
	}
	return nil
}

// GetSession implements store.Store.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	vals, err := s.client.HMGet(ctx, s.keys.session(id), sessionValue, sessionSeen, sessionExpires).Result()
	if err != nil {
		return store.Session{}, fmt.Errorf("redis store: get session: %w", err)
	}
	if len(vals) != 3 || vals[0] == nil {
		return store.Session{}, fmt.Errorf("redis store: get session: %w", store.ErrNotFound)
	}
	sess, err := decodeSession(vals)
	if err != nil {
		return store.Session{}, fmt.Errorf("redis store: get session: %w", err)
	}
	if !s.now().Before(sess.ExpiresAt) {
		return store.Session{}, fmt.Errorf("redis store: get session: %w", store.ErrNotFound)
	}
	sess.ID = id
	return sess, nil
}

// decodeSession reads an HMGET of the session's value, seen and exp
// fields.
func decodeSession(vals []any) (store.Session, error) {
	raw, ok := vals[0].(string)
	seen, seenErr := parseMillis(vals[1])
	expires, expErr := parseMillis(vals[2])
	if !ok || seenErr != nil || expErr != nil {
		return store.Session{}, errCorrupt
	}
	var sess store.Session
	if err := json.Unmarshal([]byte(raw), &sess); err != nil {
		return store.Session{}, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	sess.LastSeenAt, sess.ExpiresAt = fromMillis(seen), fromMillis(expires)
	return sess, nil
}

// parseMillis reads a hash field holding Unix milliseconds.
func parseMillis(v any) (int64, error) {
	str, ok := v.(string)
	if !ok {
		return 0, errCorrupt
	}
	return strconv.ParseInt(str, 10, 64)
}

// TouchSession implements store.Store with one atomic script on the
// session's hash.
func (s *Store) TouchSession(ctx context.Context, id string, seen, expires time.Time) error {
	found, err := touchSessionScript.Run(ctx, s.client, []string{s.keys.session(id)},
		millis(seen), millis(expires), s.now().UnixMilli()).Int()
	if err != nil {
		return fmt.Errorf("redis store: touch session: %w", err)
	}
	if found == 0 {
		return fmt.Errorf("redis store: touch session: %w", store.ErrNotFound)
	}
	return nil
}

// DeleteSession implements store.Store.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if err := s.client.Del(ctx, s.keys.session(id)).Err(); err != nil {
		return fmt.Errorf("redis store: delete session: %w", err)
	}
	return nil
}

// GetUser implements store.Store.
func (s *Store) GetUser(ctx context.Context, username string) (store.User, error) {
	b, err := s.client.Get(ctx, s.keys.account(username)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return store.User{}, fmt.Errorf("redis store: get user %s: %w", username, store.ErrNotFound)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("redis store: get user %s: %w", username, err)
	}
	var u store.User
	if err := json.Unmarshal(b, &u); err != nil {
		return store.User{}, fmt.Errorf("redis store: get user %s: %w: %v", username, errCorrupt, err)
	}
	if !s.now().Before(u.ExpiresAt) {
		return store.User{}, fmt.Errorf("redis store: get user %s: %w", username, store.ErrNotFound)
	}
	u.Username = username
	return u, nil
}

// PutUser implements store.Store: SET with an absolute expiry, then
// PUBLISH. They are two round trips so that the event never overtakes the
// write (on Cluster a pipeline's commands may go to different nodes).
func (s *Store) PutUser(ctx context.Context, u store.User) error {
	if err := u.Validate(s.now()); err != nil {
		return fmt.Errorf("redis store: put user %s: %w", u.Username, err)
	}
	val, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("redis store: put user %s: %w", u.Username, err)
	}
	if err := s.client.SetArgs(ctx, s.keys.account(u.Username), val, goredis.SetArgs{ExpireAt: u.ExpiresAt}).Err(); err != nil {
		return fmt.Errorf("redis store: put user %s: %w", u.Username, err)
	}
	if err := s.client.Publish(ctx, s.keys.userEvents(), u.Username).Err(); err != nil {
		return fmt.Errorf("redis store: put user %s: stored, then: %w", u.Username, err)
	}
	return nil
}

// DeleteUser implements store.Store: DEL, then PUBLISH. It publishes even
// when there was no record, so that a retry after a lost reply still
// reaches every cache.
func (s *Store) DeleteUser(ctx context.Context, username string) error {
	if err := s.client.Del(ctx, s.keys.account(username)).Err(); err != nil {
		return fmt.Errorf("redis store: delete user %s: %w", username, err)
	}
	if err := s.client.Publish(ctx, s.keys.userEvents(), username).Err(); err != nil {
		return fmt.Errorf("redis store: delete user %s: deleted, then: %w", username, err)
	}
	return nil
}

// TryLock implements store.Store: SET NX PX with a random token; unlock
// deletes the key only while it still holds that token. The ttl runs on
// the Redis server's clock, not the Store's.
func (s *Store) TryLock(ctx context.Context, name string, ttl time.Duration) (unlock func(), ok bool, err error) {
	noop := func() {}
	if ttl < time.Millisecond {
		return noop, false, fmt.Errorf("redis store: lock %s: ttl %v is under a millisecond", name, ttl)
	}
	key := s.keys.lock(name)
	token := rand.Text()
	err = s.client.SetArgs(ctx, key, token, goredis.SetArgs{Mode: "NX", TTL: ttl}).Err()
	if errors.Is(err, goredis.Nil) {
		return noop, false, nil
	}
	if err != nil {
		return noop, false, fmt.Errorf("redis store: lock %s: %w", name, err)
	}
	return sync.OnceFunc(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
		defer cancel()
		if err := unlockScript.Run(ctx, s.client, []string{key}, token).Err(); err != nil {
			s.log.WarnContext(ctx, "redis store: unlock; the lock lapses at its ttl", "lock", name, "error", err)
		}
	}), true, nil
}
