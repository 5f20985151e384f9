//! The Lua scripts. Every key a script touches is passed in `KEYS` and shares one hash tag,
//! so each script is atomic and legal on Redis Cluster.

use std::sync::LazyLock;

use redis::Script;

/// Creates a session unless its key exists.
///
/// `KEYS`: session, subject index, expiry index. `ARGV`: JSON, expiry in ms, expiry in s,
/// now in s, id. Returns 1 when created, 0 when the key existed (nothing written).
///
/// The subject index drops entries that expired at `now`, gains the new id, and expires
/// itself together with its longest-lived entry.
pub(crate) static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PXAT', ARGV[2]) then
  return 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[5])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
local until_ms = math.max(1, tonumber(last[2]) * 1000)
redis.call('PEXPIREAT', KEYS[2], string.format('%d', until_ms))
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[5])
return 1
",
    )
});

/// Deletes a session if it still holds the value the caller read (compare and delete), with
/// its index entries.
///
/// `KEYS`: session, subject index, expiry index. `ARGV`: expected value, id. Returns 1 when
/// deleted, -1 when the value changed (the caller reads again).
pub(crate) static DELETE_IF_UNCHANGED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 1
",
    )
});

/// Deletes sessions of one subject in one bucket, with their index entries.
///
/// `KEYS`: subject index, expiry index, then one session key per id. `ARGV`: now in s, then
/// the ids (same order as their keys). Returns how many session keys existed.
pub(crate) static DELETE_MANY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = 0
for i = 3, #KEYS do
  n = n + redis.call('DEL', KEYS[i])
end
for i = 2, #ARGV do
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return n
",
    )
});
