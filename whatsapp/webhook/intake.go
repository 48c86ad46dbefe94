package webhook

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// StreamSuffix is appended to the key prefix to name the Redis stream of
// webhook bodies ("<prefix>wa:webhooks").
const StreamSuffix = "wa:webhooks"

// DefaultMaxLen is RedisIntakeOptions.MaxLen when unset.
const DefaultMaxLen = 100_000

// bodyField is the stream entry field holding the raw body.
const bodyField = "body"

// RedisIntakeOptions configures a RedisIntake. Client is required.
type RedisIntakeOptions struct {
	Client redis.UniversalClient
	// Prefix is put before every key, as for every store of deflectd.
	Prefix string
	// MaxLen caps the stream (approximately, which is cheap for Redis).
	// Entries are kept after they are processed, for inspection and
	// replay, until the cap trims them; a cap reached while the
	// processors are down trims unprocessed entries too, so it must stay
	// far above the webhooks of the longest outage to ride out. Default
	// 100,000 (a few hundred MB at most).
	MaxLen int64
}

// RedisIntake is an Intake on a Redis stream, read by Processor.
type RedisIntake struct {
	c      redis.UniversalClient
	stream string
	maxLen int64
}

// NewRedisIntake validates opts and returns a RedisIntake.
func NewRedisIntake(opts RedisIntakeOptions) (*RedisIntake, error) {
	if opts.Client == nil {
		return nil, errors.New("webhook: RedisIntakeOptions.Client is required")
	}
	if opts.MaxLen <= 0 {
		opts.MaxLen = DefaultMaxLen
	}
	return &RedisIntake{c: opts.Client, stream: opts.Prefix + StreamSuffix, maxLen: opts.MaxLen}, nil
}

// Append adds body to the stream. XADD is acknowledged once the entry is in
// Redis, which is as durable as Redis is configured to be (AOF with
// fsync for deployments that must not lose a webhook).
func (i *RedisIntake) Append(ctx context.Context, body []byte) error {
	err := i.c.XAdd(ctx, &redis.XAddArgs{
		Stream: i.stream,
		MaxLen: i.maxLen,
		Approx: true,
		Values: []any{bodyField, body},
	}).Err()
	if err != nil {
		return fmt.Errorf("webhook: appending to %s: %w", i.stream, err)
	}
	return nil
}
