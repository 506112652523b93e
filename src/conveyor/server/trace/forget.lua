-- Drop a live log from Redis in one call: its meta and every hot chunk its size reaches.
-- KEYS[1] the log's meta; ARGV[1] chunk size; ARGV[2] its chunks' key prefix (index appended;
-- the same hash tag as the meta). Returns the chunks counted, or -1 when the meta is gone (the
-- caller then looks for strays itself).
local size = redis.call('HGET', KEYS[1], 'size')
if not size then
    return -1
end
local last = math.floor(tonumber(size) / tonumber(ARGV[1]))
redis.call('DEL', KEYS[1])
for index = 0, last do
    redis.call('DEL', ARGV[2] .. index)
end
return last + 1
