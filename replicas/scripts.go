package replicas

import "github.com/eventsource/eventsource/redisbus"

// The scripts check and write in one step what must not interleave with
// another server's step. Each touches one key (a claim), so on a Redis
// Cluster it runs on the node of that key's slot, and each returns an
// integer. The two of every request (claim, finish) go by EVALSHA.

// claimScript takes a free claim, or a tombstone when the request is known
// to be newer than the claim's end (ARGV[3] is "1"); a claim this token
// holds already (an earlier try went through, its answer was lost) is
// this token's.
//
//	KEYS[1] claim; ARGV[1] token; ARGV[2] lease ms; ARGV[3] "1" or "0"
//	returns 1 when the claim is this token's now, 0 when it is another's
var claimScript = redisbus.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] or (ARGV[3] == '1' and string.sub(v, 1, 5) == 'done:') then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`)

// renewScript extends a claim this token holds, and takes it again when
// it is gone (Redis restarted, or the lease ran out while nobody wanted
// the channel).
//
//	KEYS[1] claim; ARGV[1] token; ARGV[2] lease ms
//	returns 1 renewed, 2 taken again, 0 lost (another token or a tombstone)
const renewScript = `
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if v == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0`

// finishScript publishes a stream's last messages and turns the claim into
// a tombstone, only while this token holds it (or nobody does: Redis lost
// its keys in a restart), then announces the end. Sent again after a
// failure, it publishes nothing twice: the first run left a tombstone.
//
//	KEYS[1] claim; ARGV[1] token; ARGV[2] tombstone ms; ARGV[3] channel;
//	ARGV[4] finished channel ("": none); ARGV[5...] payloads
//	returns 1 when published, 0 when the claim was not this token's
var finishScript = redisbus.NewScript(`
local v = redis.call('GET', KEYS[1])
if v ~= ARGV[1] and v ~= false then
  return 0
end
for i = 5, #ARGV do
  redis.call('PUBLISH', ARGV[3], ARGV[i])
end
redis.call('SET', KEYS[1], 'done:' .. ARGV[1], 'PX', ARGV[2])
if ARGV[4] ~= '' then
  redis.call('PUBLISH', ARGV[4], ARGV[3])
end
return 1`)

// reapScript ends a dead server's stream: "error" on its channel, once,
// while the claim still holds a token of that server.
//
//	KEYS[1] claim; ARGV[1] the dead server's id and ':'; ARGV[2] tombstone
//	ms; ARGV[3] channel; ARGV[4] finished channel; ARGV[5] the bare "error";
//	ARGV[6] the error with its reason, for a token that ends in ':r'
//	returns 1 when published, 0 when the claim was no longer the server's
const reapScript = `
local v = redis.call('GET', KEYS[1])
if v == false or string.sub(v, 1, #ARGV[1]) ~= ARGV[1] then
  return 0
end
local payload = ARGV[5]
if string.sub(v, -2) == ':r' then
  payload = ARGV[6]
end
redis.call('PUBLISH', ARGV[3], payload)
redis.call('SET', KEYS[1], 'done:' .. v, 'PX', ARGV[2])
if ARGV[4] ~= '' then
  redis.call('PUBLISH', ARGV[4], ARGV[3])
end
return 1`
