#include "keyspace.hpp"

#include <chrono>

#include <xxhash.h>

namespace runnel {

std::uint64_t key_hash(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

std::int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void Keyspace::attach(ChangeSink* sink) {
  sink_ = sink;
  for (auto& [order, value] : keys_) {
    if (value.stream) value.stream->bind(sink);
  }
}

std::size_t Keyspace::ViewHash::operator()(std::string_view key) const { return XXH3_64bits(key.data(), key.size()); }

Keyspace::Map::iterator Keyspace::locate(std::string_view key) {
  auto at = index_.find(key);
  return at == index_.end() ? keys_.end() : at->second;
}

Keyspace::Map::iterator Keyspace::add(std::string_view key, KeyValue value) {
  auto it = keys_.emplace(KeyOrder{key_hash(key), std::string(key)}, std::move(value)).first;
  index_.emplace(std::string_view(it->first.key), it);
  return it;
}

const KeyValue* Keyspace::stored(std::string_view key) const {
  auto at = index_.find(key);
  return at == index_.end() ? nullptr : &at->second->second;
}

KeyValue* Keyspace::lookup(std::string_view key) {
  auto it = locate(key);
  if (it == keys_.end()) return nullptr;
  if (it->second.expires_at != 0 && !live(it->second, unix_now_ms())) return nullptr;
  return &it->second;
}

Stream* Keyspace::find(std::string_view key) {
  KeyValue* value = lookup(key);
  return value == nullptr ? nullptr : value->stream.get();
}

Result<Stream*> Keyspace::find_or_create(std::string_view key) {
  auto it = locate(key);
  if (it != keys_.end() && !live(it->second, unix_now_ms())) {
    // Past its time and not deleted yet (the command did not expire it first): gone now.
    remove(it);
    it = keys_.end();
  }
  if (it == keys_.end()) {
    std::unique_ptr<storage::EntryStore> store;
    if (sink_ != nullptr) {
      Result<std::unique_ptr<storage::EntryStore>> made = sink_->create_store(key);
      if (!made) return made.take_error();
      store = std::move(*made);
    }
    KeyValue value;
    value.stream = std::make_unique<Stream>(std::move(store));
    it = add(key, std::move(value));
    if (sink_ != nullptr) {
      sink_->stream_created(key, *it->second.stream);
      it->second.stream->bind(sink_);
    }
  }
  return it->second.stream.get();
}

void Keyspace::insert(std::string_view key, std::unique_ptr<Stream> stream) {
  if (sink_ != nullptr) stream->bind(sink_);
  KeyValue value;
  value.stream = std::move(stream);
  if (auto it = locate(key); it != keys_.end()) remove(it);  // callers erase first
  add(key, std::move(value));
}

void Keyspace::forget_deadline(std::string_view key, std::int64_t at) {
  if (at != 0) deadlines_.erase(std::pair<std::int64_t, std::string>(at, std::string(key)));
}

void Keyspace::remove(Map::iterator it) {
  KeyValue& value = it->second;
  const std::string_view key = it->first.key;
  forget_deadline(key, value.expires_at);
  if (sink_ != nullptr) {
    if (value.stream) sink_->stream_removed(key, *value.stream);
    if (!value.stream || value.expires_at != 0) sink_->key_forgotten(key);
  }
  if (!value.stream) {
    count(-string_cost(key, value.string.size()));
    --string_keys_;
  }
  index_.erase(key);
  keys_.erase(it);
}

bool Keyspace::erase(std::string_view key) {
  auto it = locate(key);
  if (it == keys_.end()) return false;
  remove(it);
  return true;
}

std::unique_ptr<Stream> Keyspace::extract(std::string_view key, std::int64_t* expires_at) {
  auto it = locate(key);
  if (it == keys_.end() || !it->second.stream) return nullptr;
  std::unique_ptr<Stream> stream = std::move(it->second.stream);
  const std::int64_t at = it->second.expires_at;
  if (expires_at != nullptr) *expires_at = at;
  forget_deadline(key, at);
  if (sink_ != nullptr && at != 0) sink_->key_forgotten(key);
  index_.erase(std::string_view(it->first.key));
  keys_.erase(it);
  return stream;
}

void Keyspace::clear() {
  if (sink_ != nullptr) {
    for (auto& [order, value] : keys_) {
      if (value.stream) sink_->stream_removed(order.key, *value.stream);
      if (!value.stream || value.expires_at != 0) sink_->key_forgotten(order.key);
    }
  }
  count(-string_bytes_);
  string_keys_ = 0;
  deadlines_.clear();
  index_.clear();
  keys_.clear();
}

std::size_t Keyspace::expired_count(std::int64_t now) const {
  std::size_t n = 0;
  for (auto it = deadlines_.begin(); it != deadlines_.end() && it->first <= now; ++it) ++n;
  return n;
}

void Keyspace::set_string(std::string_view key, std::string value, std::int64_t expires_at, bool keep_ttl) {
  auto it = locate(key);
  if (it != keys_.end() && (it->second.stream || !live(it->second, unix_now_ms()))) {
    // A stream (callers delete a live one first: this one passed its time since the command
    // looked), or a string past its time: gone, with its TTL, before the new value.
    keep_ttl = false;
    remove(it);
    it = keys_.end();
  }
  if (it == keys_.end()) {
    it = add(key, KeyValue{});
    count(string_cost(key, 0));
    ++string_keys_;
  }
  KeyValue& slot = it->second;
  count(static_cast<std::int64_t>(value.size()) - static_cast<std::int64_t>(slot.string.size()));
  slot.string = std::move(value);
  if (!keep_ttl && slot.expires_at != expires_at) {
    forget_deadline(key, slot.expires_at);
    slot.expires_at = expires_at;
    if (expires_at != 0) deadlines_.emplace(expires_at, std::string(key));
  }
  if (sink_ != nullptr) sink_->string_written(key, slot.string, slot.expires_at);
}

void Keyspace::string_changed(std::string_view key, KeyValue& value, std::size_t old_size) {
  count(static_cast<std::int64_t>(value.string.size()) - static_cast<std::int64_t>(old_size));
  if (sink_ != nullptr) sink_->string_written(key, value.string, value.expires_at);
}

void Keyspace::set_expiry(std::string_view key, KeyValue& value, std::int64_t expires_at) {
  if (value.expires_at == expires_at) return;
  forget_deadline(key, value.expires_at);
  value.expires_at = expires_at;
  if (expires_at != 0) deadlines_.emplace(expires_at, std::string(key));
  if (sink_ == nullptr) return;
  if (value.stream) {
    sink_->ttl_written(key, expires_at);
  } else {
    sink_->string_written(key, value.string, expires_at);
  }
}

std::optional<std::string> Keyspace::first_due(std::int64_t now) const {
  if (deadlines_.empty() || deadlines_.begin()->first > now) return std::nullopt;
  return deadlines_.begin()->second;
}

}  // namespace runnel
