// Command refserver is the yardstick of the throughput benchmark: about the
// least a Docker registry token server can do per request when app
// passwords live in Redis as SHA-256 digests. For each GET /token it
//
//  1. parses the Basic credentials,
//  2. does one Redis GET of the user's record, {"sha256": "<hex digest>"},
//  3. compares SHA-256 of the password with the digest in constant time,
//  4. grants exactly the requested scopes (no policy at all),
//  5. signs claims {iss, sub, aud, exp, nbf, iat, jti, access} with ES256
//     using github.com/golang-jwt/jwt/v5, and
//  6. answers {token, access_token, expires_in, issued_at} as JSON.
//
// It is deliberately plain but not crippled: the stock net/http server,
// go-redis with its default pool, one key generated at start.
//
// Usage:
//
//	refserver -listen 127.0.0.1:5002 -redis 127.0.0.1:6379 -service registry.bench
//	redis-cli SET ref:pw:alice '{"sha256":"<hex of sha256(password)>"}'
//	curl -u alice:password 'http://127.0.0.1:5002/token?service=registry.bench&scope=repository:a/b:pull'
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"
)

// KeyPrefix is prepended to the username to form the record's Redis key.
const KeyPrefix = "ref:pw:"

// tokenLifetime is the lifetime of every token, as the bridge's default.
const tokenLifetime = 5 * time.Minute

// record is the value stored in Redis under KeyPrefix + username.
type record struct {
	// SHA256 is the lowercase hex SHA-256 digest of the password.
	SHA256 string `json:"sha256"`
}

// access is one entry of the token's "access" claim.
type access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// claims are the registry token's claims.
type claims struct {
	jwt.RegisteredClaims
	Access []access `json:"access"`
}

// response is the token endpoint's JSON body.
type response struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	IssuedAt    string `json:"issued_at"`
}

// server answers token requests.
type server struct {
	rdb     *redis.Client
	key     *ecdsa.PrivateKey
	kid     string
	issuer  string
	service string
	log     *slog.Logger
	now     func() time.Time
}

func main() {
	listen := flag.String("listen", "127.0.0.1:5002", "address to serve on")
	redisAddr := flag.String("redis", "127.0.0.1:6379", "Redis host:port")
	issuer := flag.String("issuer", "refserver", "the tokens' iss")
	service := flag.String("service", "registry.bench", "the tokens' aud")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen, *redisAddr, *issuer, *service, log); err != nil {
		fmt.Fprintf(os.Stderr, "refserver: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, listen, redisAddr, issuer, service string, log *slog.Logger) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("refserver: generate key: %w", err)
	}
	s, err := newServer(redis.NewClient(&redis.Options{Addr: redisAddr}), key, issuer, service, log, time.Now)
	if err != nil {
		return err
	}
	defer s.rdb.Close()

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("refserver: listen: %w", err)
	}
	srv := &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("refserver: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// newServer returns a server signing with key. Its kid is the base64url
// SHA-256 of the public key's DER form, as long as a JWK thumbprint.
func newServer(rdb *redis.Client, key *ecdsa.PrivateKey, issuer, service string, log *slog.Logger, now func() time.Time) (*server, error) {
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("refserver: marshal public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return &server{
		rdb:     rdb,
		key:     key,
		kid:     base64.RawURLEncoding.EncodeToString(sum[:]),
		issuer:  issuer,
		service: service,
		log:     log,
		now:     now,
	}, nil
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /token", s.handleToken)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

func (s *server) handleToken(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		http.Error(w, "credentials required", http.StatusUnauthorized)
		return
	}
	raw, err := s.rdb.Get(r.Context(), KeyPrefix+user).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		http.Error(w, "invalid credentials", http.StatusUnauthorized)
		return
	case err != nil:
		s.log.ErrorContext(r.Context(), "redis get", "err", err)
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	var rec record
	if err := json.Unmarshal(raw, &rec); err != nil {
		s.log.ErrorContext(r.Context(), "decode record", "user", user, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	want, err := hex.DecodeString(rec.SHA256)
	got := sha256.Sum256([]byte(pass))
	if err != nil || subtle.ConstantTimeCompare(got[:], want) != 1 {
		http.Error(w, "invalid credentials", http.StatusUnauthorized)
		return
	}

	var jti [16]byte
	_, _ = rand.Read(jti[:])
	now := s.now().UTC().Truncate(time.Second)
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.issuer,
			Subject:   user,
			Audience:  jwt.ClaimStrings{s.service},
			ExpiresAt: jwt.NewNumericDate(now.Add(tokenLifetime)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        hex.EncodeToString(jti[:]),
		},
		Access: parseScopes(r.URL.Query()["scope"]),
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"] = s.kid
	signed, err := tok.SignedString(s.key)
	if err != nil {
		s.log.ErrorContext(r.Context(), "sign", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(response{
		Token:       signed,
		AccessToken: signed,
		ExpiresIn:   int(tokenLifetime / time.Second),
		IssuedAt:    now.Format(time.RFC3339),
	})
}

// parseScopes turns scope parameters ("type:name:actions", several per
// parameter when space-separated) into access entries, granting exactly
// what was asked. Entries without a type, name or action are dropped; the
// name keeps any colons (a registry host with a port).
func parseScopes(params []string) []access {
	out := []access{}
	for _, p := range params {
		for s := range strings.FieldsSeq(p) {
			typ, rest, ok := strings.Cut(s, ":")
			i := strings.LastIndexByte(rest, ':')
			if !ok || typ == "" || i <= 0 {
				continue
			}
			var actions []string
			for a := range strings.SplitSeq(rest[i+1:], ",") {
				if a != "" {
					actions = append(actions, a)
				}
			}
			if len(actions) == 0 {
				continue
			}
			out = append(out, access{Type: typ, Name: rest[:i], Actions: actions})
		}
	}
	return out
}
