package outbox

import "github.com/redis/go-redis/v9"

// The Lua scripts that make each step atomic. Each builds key names from
// the prefix it is given, so the outbox needs one Redis (or a Sentinel
// group), not a Cluster. Times are Unix milliseconds.

// enqueueScript stores a job once, honouring the opt-out list and the
// messaging-tier budget.
// ARGV: prefix, key, now, to, tierKey, tierLimit (0 = none), tierWindow,
// ttl, then field/value pairs of the job.
var enqueueScript = redis.NewScript(`
local p, key, now, to = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local job = p .. 'job:' .. key
if redis.call('EXISTS', job) == 1 then return 'duplicate' end
if redis.call('HEXISTS', p .. 'optout', to) == 1 then return 'opted_out' end
local tier, limit = ARGV[5], tonumber(ARGV[6])
if limit > 0 then
  redis.call('ZREMRANGEBYSCORE', tier, '-inf', now - tonumber(ARGV[7]))
  if not redis.call('ZSCORE', tier, to) and redis.call('ZCARD', tier) >= limit then
    return 'budget_exhausted'
  end
  redis.call('ZADD', tier, now, to)
  redis.call('PEXPIRE', tier, ARGV[7])
end
local f = {}
for i = 9, #ARGV do f[#f + 1] = ARGV[i] end
redis.call('HSET', job, unpack(f))
redis.call('PEXPIRE', job, ARGV[8])
redis.call('XADD', p .. 'outbox', '*', 'key', key)
return 'queued'
`)

// startScript moves a job to "sending" just before its POST. A job already
// sending, or in doubt, within the grace period is left alone: its outcome
// may still arrive by webhook.
// ARGV: prefix, key, now, consumer, grace.
// Returns {"go", msg, attempts, resend(0|1)} | {"wait", until} | {"done", state}.
var startScript = redis.NewScript(`
local p, key, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local job = p .. 'job:' .. key
local st = redis.call('HGET', job, 'state')
if not st then return {'done', 'missing'} end
if st == 'sent' or st == 'failed' then return {'done', st} end
local resend = 0
if st == 'sending' or st == 'indoubt' then
  local since = tonumber(redis.call('HGET', job, 'sending_ms') or '0')
  local untl = since + tonumber(ARGV[5])
  if now < untl then return {'wait', tostring(untl)} end
  resend = 1
end
redis.call('HSET', job, 'state', 'sending', 'sending_ms', ARGV[3], 'consumer', ARGV[4], 'updated_ms', ARGV[3])
local attempts = redis.call('HINCRBY', job, 'attempts', 1)
return {'go', redis.call('HGET', job, 'msg'), tostring(attempts), tostring(resend)}
`)

// recordScript writes the outcome of an attempt and acknowledges its stream
// entry in one step. An outcome of an attempt that is no longer the latest,
// or one that would undo a "sent" a webhook already recorded, only
// acknowledges.
// ARGV: prefix, key, entryID, group, outcome (sent|retry|indoubt|failed),
// attempt, due (for retry/indoubt), ttl, to, unreachable(0|1), now,
// then field/value pairs.
var recordScript = redis.NewScript(`
local p, key, entry, group, outcome = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local job = p .. 'job:' .. key
local stream = p .. 'outbox'
local function ack()
  if entry ~= '' then
    redis.call('XACK', stream, group, entry)
    redis.call('XDEL', stream, entry)
  end
end
local st = redis.call('HGET', job, 'state')
if not st or redis.call('HGET', job, 'attempts') ~= ARGV[6] or (st == 'sent' and outcome ~= 'sent') then
  ack()
  return 'stale'
end
local f = {'state', outcome, 'updated_ms', ARGV[11]}
for i = 12, #ARGV do f[#f + 1] = ARGV[i] end
redis.call('HSET', job, unpack(f))
if outcome == 'sent' then
  local wamid = redis.call('HGET', job, 'wamid')
  redis.call('SET', p .. 'wamid:' .. wamid, key, 'PX', ARGV[8])
  redis.call('SET', p .. 'last:' .. ARGV[9], key, 'PX', ARGV[8])
  local kind = redis.call('HGET', job, 'kind')
  if kind == 'offer' or kind == 'perform' or kind == 'recover' then
    redis.call('SET', p .. 'lastdfl:' .. ARGV[9], key, 'PX', ARGV[8])
  end
  redis.call('ZREM', p .. 'delayed', key)
elseif outcome == 'retry' or outcome == 'indoubt' then
  redis.call('ZADD', p .. 'delayed', ARGV[7], key)
elseif outcome == 'failed' and ARGV[10] == '1' then
  redis.call('HSET', p .. 'unreachable', ARGV[9], ARGV[11])
end
ack()
return 'ok'
`)

// delayScript puts a job back for later without touching its state (a
// breaker is open, or its outcome is awaited) and acknowledges the entry.
// ARGV: prefix, key, entryID, group, due.
var delayScript = redis.NewScript(`
local p = ARGV[1]
redis.call('ZADD', p .. 'delayed', ARGV[5], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('XACK', p .. 'outbox', ARGV[4], ARGV[3])
  redis.call('XDEL', p .. 'outbox', ARGV[3])
end
return 'ok'
`)

// ackScript acknowledges and deletes a stream entry with nothing to do.
// ARGV: prefix, entryID, group.
var ackScript = redis.NewScript(`
redis.call('XACK', ARGV[1] .. 'outbox', ARGV[3], ARGV[2])
redis.call('XDEL', ARGV[1] .. 'outbox', ARGV[2])
return 'ok'
`)

// promoteScript moves due jobs from the delayed set back to the stream.
// ARGV: prefix, now, max.
var promoteScript = redis.NewScript(`
local p = ARGV[1]
local due = redis.call('ZRANGEBYSCORE', p .. 'delayed', '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, key in ipairs(due) do
  redis.call('ZREM', p .. 'delayed', key)
  redis.call('XADD', p .. 'outbox', '*', 'key', key)
end
return #due
`)

// resumeScript makes the retries listed in the unreached set due now,
// those still delayed, and empties the set. ARGV: prefix, now. Returns how
// many it moved.
var resumeScript = redis.NewScript(`
local p = ARGV[1]
local keys = redis.call('ZRANGE', p .. 'unreached', 0, -1)
local n = 0
for _, key in ipairs(keys) do
  local due = redis.call('ZSCORE', p .. 'delayed', key)
  if due and tonumber(due) > tonumber(ARGV[2]) then
    redis.call('ZADD', p .. 'delayed', 'XX', ARGV[2], key)
    n = n + 1
  end
end
redis.call('DEL', p .. 'unreached')
return n
`)

// rateScript takes a slot of a sliding-window rate limit on Redis' own
// clock, shared by every instance. Returns 0, or the milliseconds to wait.
// KEYS: the window's sorted set. ARGV: limit, window, a unique member.
var rateScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tonumber(oldest[2]) + window - now + 1
`)

// statusScript applies a status webhook to its job. Any status, even
// "failed", proves Meta accepted the POST, so a job still sending or in
// doubt becomes sent and is never resent; then the status
// itself applies only if it ranks above the recorded one (deduplication and
// monotonic order in one rule).
// ARGV: prefix, key, wamid, status, rank, at, ttl, now, errCode, errTitle.
// Returns {result, kind}: result is "unknown" | "applied" | "duplicate" |
// "resolved" (sent now, status not newer); kind is the job's kind.
var statusScript = redis.NewScript(`
local p, key = ARGV[1], ARGV[2]
local job = p .. 'job:' .. key
if redis.call('EXISTS', job) == 0 then return {'unknown', ''} end
local kind = redis.call('HGET', job, 'kind') or ''
local resolved = false
if redis.call('HGET', job, 'state') ~= 'sent' then
  local to = redis.call('HGET', job, 'to')
  redis.call('HSET', job, 'state', 'sent', 'wamid', ARGV[3], 'sent_ms', ARGV[6], 'resolved_by', 'webhook', 'updated_ms', ARGV[8])
  redis.call('SET', p .. 'wamid:' .. ARGV[3], key, 'PX', ARGV[7])
  redis.call('SET', p .. 'last:' .. to, key, 'PX', ARGV[7])
  if kind == 'offer' or kind == 'perform' or kind == 'recover' then
    redis.call('SET', p .. 'lastdfl:' .. to, key, 'PX', ARGV[7])
  end
  redis.call('ZREM', p .. 'delayed', key)
  resolved = true
end
local cur = tonumber(redis.call('HGET', job, 'status_rank') or '0')
if tonumber(ARGV[5]) <= cur then
  if resolved then return {'resolved', kind} end
  return {'duplicate', kind}
end
redis.call('HSET', job, 'status', ARGV[4], 'status_rank', ARGV[5], 'status_ms', ARGV[6], 'updated_ms', ARGV[8])
if ARGV[9] ~= '' then
  redis.call('HSET', job, 'status_error_code', ARGV[9], 'status_error', ARGV[10])
end
return {'applied', kind}
`)

// convertScript marks a sent deflection message (offer, perform or
// recover) converted by a customer's reply or tap, once, within the window.
// The job is found by key (a tap's payload), by the wamid the reply
// answers, or as the last deflection message sent to the sender. Inbox
// messages (agent replies, surveys) are never conversions: the customer is
// already talking to the business.
// ARGV: prefix, key, wamid, from, now, window, via.
// Returns nil or {key, kind, template, sent_ms}.
var convertScript = redis.NewScript(`
local p, key, from, now = ARGV[1], ARGV[2], ARGV[4], tonumber(ARGV[5])
if key == '' and ARGV[3] ~= '' then key = redis.call('GET', p .. 'wamid:' .. ARGV[3]) end
if not key or key == '' then key = redis.call('GET', p .. 'lastdfl:' .. from) end
if not key then return nil end
local job = p .. 'job:' .. key
local f = redis.call('HMGET', job, 'state', 'to', 'sent_ms', 'kind', 'template')
if f[1] ~= 'sent' then return nil end
if f[4] ~= 'offer' and f[4] ~= 'perform' and f[4] ~= 'recover' then return nil end
if from ~= '' and f[2] ~= from then return nil end
local sent = tonumber(f[3] or '0')
if now - sent > tonumber(ARGV[6]) then return nil end
if redis.call('HSETNX', job, 'converted_ms', ARGV[5]) == 0 then return nil end
redis.call('HSET', job, 'converted_via', ARGV[7])
return {key, f[4] or '', f[5] or '', tostring(sent)}
`)
