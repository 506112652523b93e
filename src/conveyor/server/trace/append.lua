-- Offset-checked append of one PATCH to a live log's hot chunks, atomically.
-- KEYS[1]: the log's meta hash; KEYS[2..n]: the chunks the data touches, in order.
-- ARGV: offset, new size, new crc, ttl seconds, length already in the first chunk, 1 when the
-- server made the first chunk durable whole (its head from here and the PATCH's piece: the script
-- drops its key), 1 when a missing meta means a new log (the PATCH is at offset 0: the runner
-- holds no acknowledged byte, so there is nothing to restore), then one piece of data per chunk
-- key (empty for a chunk the server made durable already: the script only moves the size past it).
-- Announced (one more key than chunks, two more arguments): the last key is the job's "being
-- watched" flag; if it exists, the last two arguments (channel, message) are published.
-- Returns {new size, 0, 1 if announced to watchers else 0}; {-1, size} on a wrong offset; {-2, 0} when the meta is gone (Redis lost
-- it: restore from the durable chunks); {-3, size} when the first chunk does not hold what the
-- meta says (lost hot chunk: restore).
local size = redis.call('HGET', KEYS[1], 'size')
if not size then
  if ARGV[7] ~= '1' then
    return {-2, 0}
  end
  size = 0
end
size = tonumber(size)
if size ~= tonumber(ARGV[1]) then
  return {-1, size}
end
if redis.call('STRLEN', KEYS[2]) ~= tonumber(ARGV[5]) then
  return {-3, size}
end
if ARGV[6] == '1' then
  redis.call('DEL', KEYS[2])
end
local announced = #ARGV - 7 > #KEYS - 1
local last = #KEYS
if announced then
  last = #KEYS - 1
end
for i = 2, last do
  if #ARGV[i + 6] > 0 then
    redis.call('APPEND', KEYS[i], ARGV[i + 6])
    redis.call('EXPIRE', KEYS[i], ARGV[4])
  end
end
redis.call('HSET', KEYS[1], 'size', ARGV[2], 'crc', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
local watched = 0
if announced and redis.call('EXISTS', KEYS[#KEYS]) == 1 then
  watched = 1
  redis.call('PUBLISH', ARGV[#ARGV - 1], ARGV[#ARGV])
end
return {tonumber(ARGV[2]), 0, watched}
