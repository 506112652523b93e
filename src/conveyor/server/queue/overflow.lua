-- A PATCH past a log's head: keep only the last bytes (the tail), count the rest.
-- KEYS[1]: the overflow hash {logical, tail}. ARGV: start, body, tail size, ttl, the logical size
-- at which the head ended (used when the hash does not exist yet: the first overflowing PATCH).
-- Returns {new logical size} or {-1, logical size} when start is not the logical size.
local logical = redis.call('HGET', KEYS[1], 'logical')
local tail = ''
if logical then
  logical = tonumber(logical)
  tail = redis.call('HGET', KEYS[1], 'tail') or ''
else
  logical = tonumber(ARGV[5])
end
if logical ~= tonumber(ARGV[1]) then
  return {-1, logical}
end
tail = tail .. ARGV[2]
local keep = tonumber(ARGV[3])
if string.len(tail) > keep then
  tail = string.sub(tail, string.len(tail) - keep + 1)
end
logical = logical + string.len(ARGV[2])
redis.call('HSET', KEYS[1], 'logical', logical, 'tail', tail)
redis.call('EXPIRE', KEYS[1], ARGV[4])
return {logical, 0}
