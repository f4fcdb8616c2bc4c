package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/registry-bridge/bridge/store"
)

// Device authorization keys. They share the hash tag {dev}, so that the
// scripts below, which span several of them, run on one Cluster slot
// (device logins are few; one slot carries them easily):
//
//	P + "{dev}:a:" + id      hash: the authorization; field v is the request
//	                         as created (JSON), st its state, sub and user
//	                         who decided it, poll the last poll and iv the
//	                         interval (Unix ms / ms), exp its ExpiresAt
//	                         (Unix ms); the key expires at exp
//	P + "{dev}:u:" + digest  string: the id of the user code's authorization
//	P + "{dev}:all"          sorted set: every id in flight, scored by its
//	                         expiry (the global cap)
//	P + "{dev}:ip:" + addr   sorted set: the ids in flight from one address
//	                         (DeviceAuth.CapKey: an IPv6 /64 as a whole)
func (k keys) device(id string) string       { return k.prefix + "{dev}:a:" + id }
func (k keys) deviceCode(code string) string { return k.prefix + "{dev}:u:" + code }
func (k keys) devices() string               { return k.prefix + "{dev}:all" }
func (k keys) devicesFrom(ip string) string  { return k.prefix + "{dev}:ip:" + ip }

// createDeviceScript applies the caps and creates the authorization and
// its user-code entry, or changes nothing. It returns 1 when created, 0
// when the id or code is taken, -1 at the global cap, -2 at the
// per-address cap.
//
// KEYS[1] record, KEYS[2] user code, KEYS[3] all, KEYS[4] per address;
// ARGV[1] JSON, ARGV[2] ExpiresAt ms, ARGV[3] now ms, ARGV[4] MaxPending,
// ARGV[5] MaxPerClient, ARGV[6] id, ARGV[7] interval ms.
var createDeviceScript = goredis.NewScript(`
local now, exp = tonumber(ARGV[3]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
if tonumber(ARGV[4]) > 0 and redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[4]) then return -1 end
if tonumber(ARGV[5]) > 0 and redis.call('ZCARD', KEYS[4]) >= tonumber(ARGV[5]) then return -2 end
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'st', 'pending', 'sub', '', 'user', '', 'poll', '0', 'iv', ARGV[7], 'exp', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], exp)
redis.call('SET', KEYS[2], ARGV[6], 'PXAT', exp)
for i = 3, 4 do
  redis.call('ZADD', KEYS[i], exp, ARGV[6])
  local last = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[i], last[2])
end
return 1
`)

// decideDeviceScript moves a live pending authorization to ARGV[2]. It
// returns 1 when done, 0 when missing or expired, -1 when not pending.
//
// KEYS[1] record; ARGV[1] now ms, ARGV[2] state, ARGV[3] sub, ARGV[4] user.
var decideDeviceScript = goredis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'st', 'exp')
if not cur[1] or not cur[2] or tonumber(cur[2]) <= tonumber(ARGV[1]) then return 0 end
if cur[1] ~= 'pending' then return -1 end
redis.call('HSET', KEYS[1], 'st', ARGV[2], 'sub', ARGV[3], 'user', ARGV[4])
return 1
`)

// pollDeviceScript records a poll: too soon after the previous one it
// raises the interval; else an approved authorization is consumed. It
// returns {outcome} then the hash's fields and values, outcome 0 when
// missing or expired, else a store.PollOutcome.
//
// KEYS[1] record; ARGV[1] now ms, ARGV[2] slow-down step ms, ARGV[3]
// the most interval ms.
var pollDeviceScript = goredis.NewScript(fmt.Sprintf(`
local now = tonumber(ARGV[1])
local cur = redis.call('HMGET', KEYS[1], 'st', 'exp', 'poll', 'iv')
if not cur[1] or not cur[2] or tonumber(cur[2]) <= now then return {0} end
local last, iv = tonumber(cur[3]), tonumber(cur[4])
local outcome = %[1]d
redis.call('HSET', KEYS[1], 'poll', ARGV[1])
if last > 0 and now - last < iv then
  redis.call('HSET', KEYS[1], 'iv', math.min(iv + tonumber(ARGV[2]), tonumber(ARGV[3])))
  outcome = %[2]d
elseif cur[1] == 'approved' then
  redis.call('HSET', KEYS[1], 'st', 'consumed')
  outcome = %[3]d
end
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, outcome)
return out
`, store.PollRecorded, store.PollTooFast, store.PollRedeemed))

// releaseDeviceScript moves a live consumed authorization back to
// approved. It returns 1 when done, 0 when missing or expired, -1 when
// not consumed.
//
// KEYS[1] record; ARGV[1] now ms.
var releaseDeviceScript = goredis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'st', 'exp')
if not cur[1] or not cur[2] or tonumber(cur[2]) <= tonumber(ARGV[1]) then return 0 end
if cur[1] ~= 'consumed' then return -1 end
redis.call('HSET', KEYS[1], 'st', 'approved')
return 1
`)

// deviceFields are the hash fields GetDeviceAuth reads, in order.
var deviceFields = []string{"v", "st", "sub", "user", "poll", "iv", "exp"}

// CreateDeviceAuth implements store.Store with one script over the
// record, its user code and the two cap sets.
func (s *Store) CreateDeviceAuth(ctx context.Context, d store.DeviceAuth, lim store.DeviceLimits) error {
	now := s.now()
	if err := d.Validate(now); err != nil {
		return fmt.Errorf("redis store: create device authorization: %w", err)
	}
	val, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("redis store: create device authorization: %w", err)
	}
	res, err := createDeviceScript.Run(ctx, s.client,
		[]string{s.keys.device(d.ID), s.keys.deviceCode(d.UserCode), s.keys.devices(), s.keys.devicesFrom(d.CapKey())},
		val, millis(d.ExpiresAt), now.UnixMilli(), lim.MaxPending, lim.MaxPerClient, d.ID, d.Interval.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("redis store: create device authorization: %w", err)
	}
	switch res {
	case 1:
		return nil
	case -1:
		return fmt.Errorf("redis store: create device authorization: %w", store.ErrTooManyPending)
	case -2:
		return fmt.Errorf("redis store: create device authorization: %w", store.ErrTooManyFromClient)
	}
	return fmt.Errorf("redis store: create device authorization: %w", store.ErrAlreadyExists)
}

// GetDeviceAuth implements store.Store.
func (s *Store) GetDeviceAuth(ctx context.Context, id string) (store.DeviceAuth, error) {
	vals, err := s.client.HMGet(ctx, s.keys.device(id), deviceFields...).Result()
	if err != nil {
		return store.DeviceAuth{}, fmt.Errorf("redis store: get device authorization: %w", err)
	}
	if len(vals) != len(deviceFields) || vals[0] == nil {
		return store.DeviceAuth{}, fmt.Errorf("redis store: get device authorization: %w", store.ErrNotFound)
	}
	fields := make(map[string]string, len(vals))
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			return store.DeviceAuth{}, fmt.Errorf("redis store: get device authorization: %w", errCorrupt)
		}
		fields[deviceFields[i]] = str
	}
	return s.decodeDevice(id, fields, "get")
}

// GetDeviceAuthByUserCode implements store.Store.
func (s *Store) GetDeviceAuthByUserCode(ctx context.Context, userCode string) (store.DeviceAuth, error) {
	id, err := s.client.Get(ctx, s.keys.deviceCode(userCode)).Result()
	if errors.Is(err, goredis.Nil) {
		return store.DeviceAuth{}, fmt.Errorf("redis store: get device authorization by user code: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.DeviceAuth{}, fmt.Errorf("redis store: get device authorization by user code: %w", err)
	}
	return s.GetDeviceAuth(ctx, id)
}

// DecideDeviceAuth implements store.Store with one script on the record.
func (s *Store) DecideDeviceAuth(ctx context.Context, id string, approve bool, subject, username string) error {
	state := store.DeviceDenied
	if approve {
		state = store.DeviceApproved
	}
	res, err := decideDeviceScript.Run(ctx, s.client, []string{s.keys.device(id)},
		s.now().UnixMilli(), string(state), subject, username).Int()
	switch {
	case err != nil:
		return fmt.Errorf("redis store: decide device authorization: %w", err)
	case res == 0:
		return fmt.Errorf("redis store: decide device authorization: %w", store.ErrNotFound)
	case res < 0:
		return fmt.Errorf("redis store: decide device authorization: %w", store.ErrNotPending)
	}
	return nil
}

// PollDeviceAuth implements store.Store with one script on the record.
func (s *Store) PollDeviceAuth(ctx context.Context, id string) (store.DeviceAuth, store.PollOutcome, error) {
	res, err := pollDeviceScript.Run(ctx, s.client, []string{s.keys.device(id)},
		s.now().UnixMilli(), store.DeviceSlowDownStep.Milliseconds(), store.DeviceMaxInterval.Milliseconds()).Slice()
	if err != nil {
		return store.DeviceAuth{}, 0, fmt.Errorf("redis store: poll device authorization: %w", err)
	}
	if len(res) == 0 {
		return store.DeviceAuth{}, 0, fmt.Errorf("redis store: poll device authorization: %w", errCorrupt)
	}
	outcome, ok := res[0].(int64)
	if !ok || outcome == 0 {
		return store.DeviceAuth{}, 0, fmt.Errorf("redis store: poll device authorization: %w", store.ErrNotFound)
	}
	fields := make(map[string]string, len(deviceFields))
	for i := 1; i+1 < len(res); i += 2 {
		k, _ := res[i].(string)
		v, _ := res[i+1].(string)
		fields[k] = v
	}
	d, err := s.decodeDevice(id, fields, "poll")
	if err != nil {
		return store.DeviceAuth{}, 0, err
	}
	return d, store.PollOutcome(outcome), nil
}

// ReleaseDeviceAuth implements store.Store with one script on the record.
func (s *Store) ReleaseDeviceAuth(ctx context.Context, id string) error {
	res, err := releaseDeviceScript.Run(ctx, s.client, []string{s.keys.device(id)}, s.now().UnixMilli()).Int()
	switch {
	case err != nil:
		return fmt.Errorf("redis store: release device authorization: %w", err)
	case res == 0:
		return fmt.Errorf("redis store: release device authorization: %w", store.ErrNotFound)
	case res < 0:
		return fmt.Errorf("redis store: release device authorization: %w", store.ErrNotConsumed)
	}
	return nil
}

// decodeDevice builds a record from its hash fields; an expired one is
// ErrNotFound.
func (s *Store) decodeDevice(id string, f map[string]string, op string) (store.DeviceAuth, error) {
	var d store.DeviceAuth
	if err := json.Unmarshal([]byte(f["v"]), &d); err != nil {
		return store.DeviceAuth{}, fmt.Errorf("redis store: %s device authorization: %w: %v", op, errCorrupt, err)
	}
	poll, errPoll := strconv.ParseInt(f["poll"], 10, 64)
	iv, errIv := strconv.ParseInt(f["iv"], 10, 64)
	exp, errExp := strconv.ParseInt(f["exp"], 10, 64)
	if errPoll != nil || errIv != nil || errExp != nil || f["st"] == "" {
		return store.DeviceAuth{}, fmt.Errorf("redis store: %s device authorization: %w", op, errCorrupt)
	}
	d.ID, d.State, d.Subject, d.Username = id, store.DeviceState(f["st"]), f["sub"], f["user"]
	d.LastPollAt, d.Interval, d.ExpiresAt = fromMillis(poll), time.Duration(iv)*time.Millisecond, fromMillis(exp)
	if !s.now().Before(d.ExpiresAt) {
		return store.DeviceAuth{}, fmt.Errorf("redis store: %s device authorization: %w", op, store.ErrNotFound)
	}
	return d, nil
}
