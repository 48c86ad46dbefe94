package inboxhttp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// sessions keeps login sessions in Redis under the hash of their token, so
// that a copy of Redis holds no usable cookie, and every instance knows
// every session.
type sessions struct {
	rdb redis.UniversalClient
	p   string
	ttl time.Duration
}

type session struct {
	User    string    `json:"user"`
	CSRF    string    `json:"csrf"`
	Created time.Time `json:"created"`
}

var errNoSession = errors.New("inboxhttp: no such session")

func randomToken() string {
	var b [32]byte
	rand.Read(b[:]) // crypto/rand does not fail
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *sessions) key(token string) string {
	sum := sha256.Sum256([]byte(token))
	return s.p + hex.EncodeToString(sum[:])
}

func (s *sessions) create(ctx context.Context, user string, now time.Time) (string, *session, error) {
	token := randomToken()
	ss := &session{User: user, CSRF: randomToken(), Created: now}
	b, _ := json.Marshal(ss)
	if err := s.rdb.Set(ctx, s.key(token), b, s.ttl).Err(); err != nil {
		return "", nil, fmt.Errorf("storing a session: %w", err)
	}
	return token, ss, nil
}

// get returns a session and extends it: the TTL counts idle time.
func (s *sessions) get(ctx context.Context, token string) (*session, error) {
	raw, err := s.rdb.GetEx(ctx, s.key(token), s.ttl).Result()
	if errors.Is(err, redis.Nil) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	var ss session
	if err := json.Unmarshal([]byte(raw), &ss); err != nil {
		return nil, errNoSession
	}
	return &ss, nil
}

func (s *sessions) delete(ctx context.Context, token string) {
	s.rdb.Del(ctx, s.key(token))
}

func (s *sessions) failKey(user string) string {
	sum := sha256.Sum256([]byte(user))
	return s.p + "fail:" + hex.EncodeToString(sum[:8])
}

func (s *sessions) failures(ctx context.Context, user string) (int, error) {
	return s.rdb.Get(ctx, s.failKey(user)).Int()
}

func (s *sessions) failed(ctx context.Context, user string) {
	pipe := s.rdb.TxPipeline()
	pipe.Incr(ctx, s.failKey(user))
	pipe.Expire(ctx, s.failKey(user), time.Minute)
	pipe.Exec(ctx)
}
