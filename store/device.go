package store

import (
	"context"
	"errors"
	"time"
)

// Device authorization (RFC 8628; docs/device-login.md) sentinels.
var (
	// ErrTooManyPending: the store holds as many device authorizations
	// in flight as DeviceLimits.MaxPending allows.
	ErrTooManyPending = errors.New("too many device authorizations in flight")
	// ErrTooManyFromClient: the requester's address has as many device
	// authorizations in flight as DeviceLimits.MaxPerClient allows.
	ErrTooManyFromClient = errors.New("too many device authorizations in flight from this address")
	// ErrNotPending: the device authorization was approved or denied
	// already.
	ErrNotPending = errors.New("device authorization already decided")
	// ErrNotConsumed: ReleaseDeviceAuth found the authorization not
	// consumed.
	ErrNotConsumed = errors.New("device authorization not consumed")
)

// CreatedByDevice is Password.CreatedBy for a password minted by a device
// login: approved in the browser, delivered to the terminal.
const CreatedByDevice = "device"

// DeviceState is where a device authorization is in its life:
// pending → approved or denied; approved → consumed, once.
type DeviceState string

// The states of a device authorization.
const (
	DevicePending  DeviceState = "pending"
	DeviceApproved DeviceState = "approved"
	DeviceDenied   DeviceState = "denied"
	DeviceConsumed DeviceState = "consumed"
)

// Polling bounds (RFC 8628 §3.5): a poll that comes sooner than Interval
// after the previous one raises Interval by DeviceSlowDownStep, up to
// DeviceMaxInterval.
const (
	DeviceSlowDownStep = 5 * time.Second
	DeviceMaxInterval  = time.Minute
)

// DeviceAuth is a device authorization request (RFC 8628): created
// unauthenticated by a terminal, decided by a signed-in person on the
// /device page, redeemed once by the terminal's poll. It holds digests of
// the device code and the user code, never the codes.
type DeviceAuth struct {
	// ID is the hex SHA-256 of the device code; it names the record.
	ID string `json:"id"`
	// UserCode is the hex SHA-256 of the normalized user code; it is
	// unique among live records.
	UserCode string `json:"uc"`
	// ClientID, ClientName and Host are what the requester said it is;
	// ClientIP is the address it came from. The approval page shows them.
	ClientID   string `json:"cid"`
	ClientName string `json:"cname,omitempty"`
	Host       string `json:"host,omitempty"`
	ClientIP   string `json:"ip"`
	// ClientGroup, when set, is what the per-client cap counts the
	// record under instead of ClientIP (an IPv6 /64, say).
	ClientGroup string `json:"grp,omitempty"`
	// Lifetime is the password lifetime asked for; 0 asks for the
	// default. ReadOnly asks for a read-only password.
	Lifetime  time.Duration `json:"lifetime,omitempty"`
	ReadOnly  bool          `json:"ro,omitempty"`
	CreatedAt time.Time     `json:"created"`
	// ExpiresAt is when the codes stop working and the record goes.
	ExpiresAt time.Time `json:"expires"`
	// Interval is the least time between two polls.
	Interval time.Duration `json:"interval"`
	// LastPollAt is zero until the first poll.
	LastPollAt time.Time `json:"poll,omitzero"`
	// State is DevicePending when created.
	State DeviceState `json:"state"`
	// Subject and Username name the person who approved or denied it.
	Subject  string `json:"sub,omitempty"`
	Username string `json:"user,omitempty"`
}

// CapKey is the key the per-client cap counts d under: ClientGroup, or
// else ClientIP.
func (d DeviceAuth) CapKey() string {
	if d.ClientGroup != "" {
		return d.ClientGroup
	}
	return d.ClientIP
}

// Validate reports why d cannot be created at now.
func (d DeviceAuth) Validate(now time.Time) error {
	var errs []error
	errs = append(errs, required("id", d.ID), required("user code", d.UserCode), checkExpiry(d.ExpiresAt, now))
	if d.State != DevicePending {
		errs = append(errs, errors.New("a new device authorization must be pending"))
	}
	if d.Interval <= 0 {
		errs = append(errs, errors.New("interval must be positive"))
	}
	return errors.Join(errs...)
}

// DeviceLimits cap the device authorizations in flight (created and not
// yet expired, whatever their state), so that unauthenticated requests
// cannot grow the store. 0 means no cap.
type DeviceLimits struct {
	// MaxPending caps them in the whole store.
	MaxPending int
	// MaxPerClient caps them per DeviceAuth.CapKey.
	MaxPerClient int
}

// PollOutcome is what a PollDeviceAuth did.
type PollOutcome int

const (
	// PollRecorded: the poll was recorded; State says where the
	// authorization stands (pending, denied or consumed earlier).
	PollRecorded PollOutcome = iota + 1
	// PollTooFast: the poll came sooner than Interval after the previous
	// one; Interval was raised by DeviceSlowDownStep and nothing else
	// changed.
	PollTooFast
	// PollRedeemed: the authorization was approved and this poll, of any
	// number of concurrent ones, consumed it.
	PollRedeemed
)

// DeviceStore keeps device authorizations. Store includes it.
type DeviceStore interface {
	// CreateDeviceAuth stores d under d.ID and d.UserCode until
	// d.ExpiresAt, unless a cap of lim is reached (ErrTooManyPending,
	// ErrTooManyFromClient) or the id or user code is taken
	// (ErrAlreadyExists); then it changes nothing. It fails with another
	// error if d is not valid (Validate).
	CreateDeviceAuth(ctx context.Context, d DeviceAuth, lim DeviceLimits) error
	// GetDeviceAuth returns the device authorization id, or ErrNotFound
	// if there is none or it has expired.
	GetDeviceAuth(ctx context.Context, id string) (DeviceAuth, error)
	// GetDeviceAuthByUserCode returns the live device authorization
	// whose UserCode is userCode, or ErrNotFound.
	GetDeviceAuthByUserCode(ctx context.Context, userCode string) (DeviceAuth, error)
	// DecideDeviceAuth moves the pending authorization id to approved
	// (approve) or denied, recording who decided, as one atomic step: of
	// concurrent decisions at most one succeeds, the others get
	// ErrNotPending. A missing or expired one is ErrNotFound.
	DecideDeviceAuth(ctx context.Context, id string, approve bool, subject, username string) error
	// PollDeviceAuth records a poll of the authorization id at the
	// store's now and returns it as it stands after the poll, with what
	// the poll did; an approved authorization is consumed by its first
	// timely poll (PollRedeemed), atomically. A missing or expired one is
	// ErrNotFound.
	PollDeviceAuth(ctx context.Context, id string) (DeviceAuth, PollOutcome, error)
	// ReleaseDeviceAuth moves the consumed authorization id back to
	// approved, as one atomic step, when what its redemption was for
	// failed in a way that may pass (a store or identity provider
	// outage): the next timely poll redeems it again. A missing or
	// expired one is ErrNotFound; one not consumed is ErrNotConsumed.
	ReleaseDeviceAuth(ctx context.Context, id string) error
}
