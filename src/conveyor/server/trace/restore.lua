-- Recreate a live log's meta from its durable state, unless another process already did.
-- KEYS[1]: meta hash; KEYS[2]: the chunk at the durable end (partial or empty).
-- ARGV: size, crc, ttl, the durable bytes of that chunk (empty when the end is chunk-aligned).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('DEL', KEYS[2])
if string.len(ARGV[4]) > 0 then
  redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[3])
end
redis.call('HSET', KEYS[1], 'size', ARGV[1], 'crc', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
